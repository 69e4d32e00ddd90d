"""The procedure catalogue: every procedure's definition loads, a valid filled example passes and
survives save/load unchanged (SQLite and PostgreSQL), and bad input gives errors by field."""

from __future__ import annotations

from datetime import date

import pytest

from portal.prefiling import catalogue, forms, service
from portal.prefiling.models import PreFiling
from tests.factories import make_account, make_resident

CODES = (
    "moving_in",
    "moving_out",
    "moving_within",
    "child_allowance",
    "seal_registration",
    "certificate_request",
)
BY_NAME = {
    "phone": "03-1234-5678",
    "account_number": "1234567",
    "seal_text": "山田",
}


@pytest.fixture
def request_ctx(app):
    """Error messages are translated: a request context (English unless a test asks)."""
    with app.test_request_context(headers={"Cookie": "lang=en"}):
        yield


def _value(field: dict, i: int = 0):
    if field["name"] in BY_NAME:
        return BY_NAME[field["name"]]
    kind = field["type"]
    if kind == "checkbox":
        return True  # opens every conditional section, so those are checked too
    if kind == "select":
        return field["options"][-1]["value"]
    if kind == "number":
        return str(field.get("min", 1))
    if kind == "date":
        low = field.get("min", "2000-01-01")
        return max(date.fromisoformat(low), date(2010, 4, 1 + i)).isoformat()
    if kind == "kana":
        return "やまだ　たろう"  # hiragana is accepted and stored as katakana
    if kind == "postal":
        return "２６０－０００１"  # full-width, as phones type it
    return "中央区本町1丁目1番1号"[: field.get("max_length", 200)]


def example(defn: dict) -> dict:
    values = {}
    for _section, field in catalogue.fields(defn):
        if field["type"] == "group":
            values[field["name"]] = [
                {sub["name"]: _value(sub, i) for sub in field["fields"]} for i in range(min(2, field["max"]))
            ]
        else:
            values[field["name"]] = _value(field)
    return values


def test_catalogue_has_every_procedure_with_both_languages():
    codes = [d["code"] for d in catalogue.latest()]
    assert codes[: len(CODES)] == list(CODES)
    for defn in catalogue.latest():
        assert defn["name"]["ja"] and defn["name"]["en"]
        for section, field in catalogue.fields(defn):
            assert section["title"]["ja"] and section["title"]["en"]
            assert field["label"]["ja"] and field["label"]["en"]
    assert catalogue.get("moving_in", 1)["version"] == 1
    assert catalogue.get("nothing") is None


def test_moving_in_with_children_suggests_child_allowance():
    defn = catalogue.get("moving_in")
    assert next(r["code"] for r in forms.related(defn, {"has_children": True})) == "child_allowance"
    assert "child_allowance" not in [r["code"] for r in forms.related(defn, {"has_children": False})]


@pytest.mark.parametrize("code", CODES)
def test_valid_example_round_trips(code, request_ctx, db):
    defn = catalogue.get(code)
    clean, errors = forms.validate(defn, example(defn), "en")
    assert errors == {}
    assert forms.missing_attachments(defn, clean, {a["code"] for a in defn["attachments"]}) == []
    for _section, field in catalogue.fields(defn):
        if field["type"] == "kana":
            assert clean[field["name"]] == "ヤマダ　タロウ"
        if field["type"] == "postal":
            assert clean[field["name"]] == "2600001"
    resident = make_resident()
    account = make_account(resident=resident)
    prefiling = service.create_draft(
        resident_id=resident.id, account_id=account.id, code=code, version=defn["version"], data={}
    )
    service.save(prefiling, clean, expected_version=prefiling.version, actor="test")
    db.session.commit()
    prefiling_id = prefiling.id
    db.session.expunge_all()
    loaded = db.session.get(PreFiling, prefiling_id)
    assert loaded.procedure_version == defn["version"]
    assert service.values(loaded) == clean
    assert forms.validate(catalogue.get(code, loaded.procedure_version), service.values(loaded), "en") == (
        clean,
        {},
    )


@pytest.mark.parametrize("code", CODES)
def test_bad_example_gives_field_errors(code, request_ctx):
    defn = catalogue.get(code)
    values = example(defn)
    values["family_name"] = ""
    values["family_name_kana"] = "Yamada"
    values["birth_date"] = "1985-13-40"
    values["phone"] = "12345"
    _clean, errors = forms.validate(defn, values, "en")
    assert errors["family_name"] == "This field is required."
    assert errors["family_name_kana"] == "Use katakana only."
    assert errors["birth_date"] == "Enter a date as YYYY-MM-DD."
    assert "phone" in errors
    assert "given_name" not in errors


def test_field_rules(request_ctx):
    defn = catalogue.get("certificate_request")
    values = example(defn)
    values.update(copies="11", current_postal_code="12-34", certificate_type="passport", purpose="other")
    values["purpose_detail"] = ""
    _clean, errors = forms.validate(defn, values, "en")
    assert errors["copies"] == "Enter 10 or less."
    assert errors["current_postal_code"].startswith("Enter a postal code of 7 digits")
    assert errors["certificate_type"] == "Choose one of the options."
    assert errors["purpose_detail"] == "This field is required."
    # A hidden section is neither checked nor kept.
    values["purpose"] = "employment"
    clean, errors = forms.validate(defn, values, "en")
    assert "purpose_detail" not in errors and "purpose_detail" not in clean


def test_group_rows_are_checked_and_counted(request_ctx):
    defn = catalogue.get("child_allowance")
    values = example(defn)
    values["children"] = []
    assert forms.validate(defn, values, "en")[1]["children"] == "Add at least 1."
    values["children"] = [
        {"family_name": "山田", "given_name": "", "kana": "ヤマダ", "birth_date": "2030-01-01"}
    ]
    errors = forms.validate(defn, values, "en")[1]
    assert errors["children-0-given_name"] == "This field is required."
    assert errors["children-0-birth_date"].startswith("Enter a date on or before")


def test_pattern_message_in_the_chosen_language(request_ctx):
    defn = catalogue.get("child_allowance")
    values = example(defn) | {"account_number": "12"}
    assert (
        forms.validate(defn, values, "ja")[1]["account_number"] == "口座番号は7桁の数字で入力してください。"
    )


def test_a_prefiling_keeps_the_version_it_was_made_with(tmp_path, monkeypatch):
    import json
    import shutil

    for path in catalogue.DIRECTORY.glob("*.json"):
        shutil.copy(path, tmp_path / path.name)
    v2 = json.loads((tmp_path / "seal_registration.v1.json").read_text(encoding="utf-8"))
    v2["version"] = 2
    v2["sections"][0]["fields"].append(
        {"name": "email", "type": "text", "label": {"ja": "メール", "en": "E-mail"}, "required": True}
    )
    (tmp_path / "seal_registration.v2.json").write_text(json.dumps(v2, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr(catalogue, "DIRECTORY", tmp_path)
    catalogue._all.cache_clear()
    try:
        assert catalogue.get("seal_registration")["version"] == 2
        assert "email" in {f["name"] for _s, f in catalogue.fields(catalogue.get("seal_registration"))}
        assert "email" not in {f["name"] for _s, f in catalogue.fields(catalogue.get("seal_registration", 1))}
        (tmp_path / "seal_registration.v3.json").write_text(json.dumps(v2), encoding="utf-8")
        catalogue._all.cache_clear()
        with pytest.raises(catalogue.CatalogueError):
            catalogue.get("seal_registration")  # v3's file says version 2
    finally:
        catalogue._all.cache_clear()
