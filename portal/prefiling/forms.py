"""The form engine: from a catalogue definition, read the posted form, check it, and pre-fill it
from the register. Values are kept as JSON: strings, integers, booleans, and lists of rows for
repeatable groups (``members-0-given_name`` in the posted form).

``validate`` returns the clean values and the errors by field key (``members-0-given_name`` for a
row's field); what the resident typed is never thrown away, so a page with errors shows it all."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Any

from flask_babel import gettext as _

from portal.prefiling.catalogue import label

KANA = re.compile(r"^[\u30a1-\u30f6\u30fc\u30fb\u3000 ]+$")
POSTAL = re.compile(r"^\d{7}$")
MAX_TEXT = 1000  # nothing in a form is longer; stops a draft from being a file store
EMPTY_ROW_SLOTS = 1  # a group shows this many empty rows after the filled ones


def _conditions_met(cond: dict | None, values: dict[str, Any]) -> bool:
    if not cond:
        return True
    value = values.get(cond["field"])
    if "equals" in cond:
        want = cond["equals"]
        if isinstance(want, bool):
            return bool(value) is want
        return value == want
    if "in" in cond:
        return value in cond["in"]
    return bool(value)


def visible(item: dict, values: dict[str, Any]) -> bool:
    """Whether a section, attachment or related procedure applies, given the values (show_if)."""
    return _conditions_met(item.get("show_if"), values)


def _raw_scalar(field: dict, form, key: str) -> Any:
    if field["type"] == "checkbox":
        return form.get(key) in ("on", "1", "true", "y")
    return (form.get(key) or "")[:MAX_TEXT]


def parse(defn: dict, form) -> dict[str, Any]:
    """The posted form as raw values (strings and booleans), rows of groups with nothing typed
    in them dropped. Nothing is checked here: a draft keeps whatever was typed."""
    values: dict[str, Any] = {}
    for section in defn["sections"]:
        for field in section["fields"]:
            name = field["name"]
            if field["type"] != "group":
                values[name] = _raw_scalar(field, form, name)
                continue
            rows = []
            for i in range(field.get("max", 10)):
                row = {
                    sub["name"]: _raw_scalar(sub, form, f"{name}-{i}-{sub['name']}")
                    for sub in field["fields"]
                }
                if any(v for k, v in row.items() if isinstance(v, str) and v.strip()):
                    rows.append(row)
            values[name] = rows
    return values


def _today_or(value: str | None) -> date | None:
    if value is None:
        return None
    return date.today() if value == "today" else date.fromisoformat(value)


def _check_scalar(field: dict, value: Any, lang: str) -> tuple[Any, str | None]:
    """One field: (clean value, error message or None)."""
    kind = field["type"]
    if kind == "checkbox":
        return bool(value), None
    if kind == "number" and isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        text = unicodedata.normalize("NFKC", "" if value is None else str(value)).strip()
    if kind == "kana":
        # Hiragana is accepted and stored as katakana; NFKC turned half-width kana full-width.
        text = "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in text)
        text = "\u3000".join(text.split())  # one full-width space between family and given names
    if text == "":
        return ("" if kind != "number" else None), (
            _("This field is required.") if field.get("required") else None
        )
    if kind == "postal":
        text = text.replace("-", "").replace("〒", "").strip()
        if not POSTAL.match(text):
            return text, _("Enter a postal code of 7 digits, for example 260-0001.")
    elif kind == "kana":
        if not KANA.match(text):
            return text, _("Use katakana only.")
    elif kind == "date":
        try:
            day = date.fromisoformat(text)
        except ValueError:
            return text, _("Enter a date as YYYY-MM-DD.")
        low, high = _today_or(field.get("min")), _today_or(field.get("max"))
        if low and day < low:
            return text, _("Enter a date on or after %(day)s.", day=low.isoformat())
        if high and day > high:
            return text, _("Enter a date on or before %(day)s.", day=high.isoformat())
        text = day.isoformat()
    elif kind == "number":
        if not re.fullmatch(r"-?\d{1,9}", text):
            return text, _("Enter a whole number.")
        number = int(text)
        if "min" in field and number < field["min"]:
            return text, _("Enter %(min)s or more.", min=field["min"])
        if "max" in field and number > field["max"]:
            return text, _("Enter %(max)s or less.", max=field["max"])
        return number, None
    elif kind == "select" and text not in {o["value"] for o in field["options"]}:
        return text, _("Choose one of the options.")
    if "min_length" in field and len(text) < field["min_length"]:
        return text, _("Enter at least %(n)s characters.", n=field["min_length"])
    if "max_length" in field and len(text) > field["max_length"]:
        return text, _("Enter at most %(n)s characters.", n=field["max_length"])
    if "pattern" in field and not re.fullmatch(field["pattern"], text):
        custom = field.get("pattern_message")
        return text, (label(custom, lang) if custom else _("The format is not valid."))
    return text, None


def validate(defn: dict, values: dict[str, Any], lang: str = "ja") -> tuple[dict[str, Any], dict[str, str]]:
    """Check values against the definition: (clean values, errors by field key). Sections hidden
    by ``show_if`` are not checked and their values are dropped from the clean result."""
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for section in defn["sections"]:
        shown = visible(section, values)
        for field in section["fields"]:
            name = field["name"]
            if not shown:
                continue
            if field["type"] != "group":
                clean[name], error = _check_scalar(field, values.get(name), lang)
                if error:
                    errors[name] = error
                continue
            rows = values.get(name) or []
            clean_rows = []
            for i, row in enumerate(rows[: field.get("max", 10)]):
                clean_row = {}
                for sub in field["fields"]:
                    clean_row[sub["name"]], error = _check_scalar(sub, row.get(sub["name"]), lang)
                    if error:
                        errors[f"{name}-{i}-{sub['name']}"] = error
                clean_rows.append(clean_row)
            clean[name] = clean_rows
            if len(clean_rows) < field.get("min", 0):
                errors[name] = _("Add at least %(n)s.", n=field["min"])
    return clean, errors


def missing_attachments(defn: dict, values: dict[str, Any], have: set[str]) -> list[dict]:
    """The required attachments that apply to these values and are not uploaded yet."""
    return [
        a
        for a in defn.get("attachments", [])
        if a.get("required") and visible(a, values) and a["code"] not in have
    ]


def related(defn: dict, values: dict[str, Any]) -> list[dict]:
    """The related procedures to suggest for these values."""
    return [r for r in defn.get("related", []) if visible(r, values)]


# --- pre-filling from the register --------------------------------------------------------------


def _member_row(person) -> dict[str, Any]:
    return {
        "family_name": person.family_name,
        "given_name": person.given_name,
        "kana": f"{person.family_name_kana}　{person.given_name_kana}",
        "birth_date": person.birth_date.isoformat(),
        "relationship": person.relationship_to_head
        if person.relationship_to_head in ("head", "spouse", "child", "parent")
        else "other",
        "lives_with": True,
    }


def register_values(resident, city_name: str) -> dict[str, Any]:
    """What the register knows, under the names a field's ``prefill`` refers to."""
    address = resident.address
    members = []
    children = []
    if resident.household is not None:
        today = date.today()
        for person in resident.household.members:
            if person.id == resident.id or person.status != "active":
                continue
            row = _member_row(person)
            members.append(row)
            if person.age_on(today) < 19:
                children.append(
                    {k: row[k] for k in ("family_name", "given_name", "kana", "birth_date", "lives_with")}
                )
    return {
        "family_name": resident.family_name,
        "given_name": resident.given_name,
        "family_name_kana": resident.family_name_kana,
        "given_name_kana": resident.given_name_kana,
        "birth_date": resident.birth_date.isoformat(),
        "postal_code": f"{address.postal_code[:3]}-{address.postal_code[3:]}" if address else "",
        "address": f"{city_name}{address.ward.name_ja}{address.town}{address.block}" if address else "",
        "building": (address.building or "") if address else "",
        "household": members,
        "household_children": children,
    }


def prefill(defn: dict, resident, city_name: str) -> dict[str, Any]:
    """A new draft's values: the fields that name a ``prefill`` source, from the register."""
    known = register_values(resident, city_name)
    values: dict[str, Any] = {}
    for section in defn["sections"]:
        for field in section["fields"]:
            source = field.get("prefill")
            if field["type"] == "group":
                rows = known.get(source, []) if source else []
                subs = {s["name"] for s in field["fields"]}
                values[field["name"]] = [{k: v for k, v in row.items() if k in subs} for row in rows][
                    : field.get("max", 10)
                ]
            elif source:
                values[field["name"]] = known.get(source, "")
            else:
                values[field["name"]] = False if field["type"] == "checkbox" else ""
    return values


def slots(field: dict, rows: list) -> int:
    """How many rows of a group the form shows: the filled ones and an empty one (or the minimum)."""
    return min(field.get("max", 10), max(len(rows) + EMPTY_ROW_SLOTS, field.get("min", 0)))


def display(field: dict, value: Any, lang: str) -> str:
    """A value as text for the status page and the PDF."""
    if field["type"] == "checkbox":
        return ("はい" if value else "いいえ") if lang == "ja" else ("Yes" if value else "No")
    if field["type"] == "select":
        for option in field["options"]:
            if option["value"] == value:
                return label(option["label"], lang)
    if field["type"] == "postal" and isinstance(value, str) and len(value) == 7 and value.isdigit():
        return f"〒{value[:3]}-{value[3:]}"
    return "" if value is None else str(value)
