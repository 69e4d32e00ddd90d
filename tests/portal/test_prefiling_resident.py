"""The resident's side of pre-filing: start (pre-filled), save, resume, submit → reservation number
and QR, withdraw; field errors keep what was typed; attachments sniffed and limited; another
resident's pre-filing is not found; two tabs cannot overwrite each other; the PDF."""

from __future__ import annotations

import base64
import io
import re
import zlib
from datetime import date

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from portal.prefiling import service
from portal.prefiling.models import Attachment, PreFiling, PreFilingEvent
from tests.factories import csrf_from, login_resident, make_account, make_resident

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def app_config(tmp_path):
    return {"PREFILING_ATTACHMENT_DIR": str(tmp_path / "attachments")}


@pytest.fixture
def prefiling_app(app):
    if "prefiling" not in app.blueprints:
        from portal.prefiling import views

        views.init_app(app)
    return app


@pytest.fixture
def family(prefiling_app, db):
    head = make_resident(family="山田", given="花子", family_kana="ヤマダ", given_kana="ハナコ")
    make_resident(
        given="太郎", given_kana="タロウ", birth=date(2018, 6, 1), household=head.household, relation="child"
    )
    account = make_account(resident=head)
    db.session.commit()
    return head, account


@pytest.fixture
def english(client):
    """A client that chose English (after logging in, the choice is kept in the session)."""
    return client


def login_english(client, account) -> None:
    login_resident(client, account)
    html = client.get("/me/prefilings/").get_data(as_text=True)
    client.post("/lang", data={"lang": "en", "csrf_token": csrf_from(html)})
    assert '<html lang="en">' in client.get("/me/prefilings/").get_data(as_text=True)


def _start(client, code: str) -> int:
    page = client.get("/me/prefilings/").get_data(as_text=True)
    resp = client.post(f"/me/prefilings/start/{code}", data={"csrf_token": csrf_from(page)})
    assert resp.status_code == 302
    return int(re.search(r"/me/prefilings/(\d+)/edit", resp.headers["Location"]).group(1))


def _form(client, prefiling_id: int) -> tuple[str, dict]:
    """The edit page and its form's current values, as a browser would post them."""
    html = client.get(f"/me/prefilings/{prefiling_id}/edit").get_data(as_text=True)
    form = html.split('class="form prefiling-form"', 1)[1].split("</form>", 1)[0]
    data: dict = {}
    for m in re.finditer(r"<input ([^>]*)>", form):
        attrs = m.group(1)
        name = re.search(r'name="([^"]+)"', attrs)
        if not name:
            continue
        if 'type="checkbox"' in attrs:
            if " checked" in attrs:
                data[name.group(1)] = "on"
            continue
        value = re.search(r'value="([^"]*)"', attrs)
        data[name.group(1)] = value.group(1) if value else ""
    for m in re.finditer(r'<select id="[^"]+" name="([^"]+)".*?</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', m.group(0))
        data[m.group(1)] = chosen.group(1) if chosen else ""
    return html, data


CERTIFICATE = {
    "phone": "03-1234-5678",
    "certificate_type": "copy",
    "scope": "household",
    "copies": "2",
    "purpose": "employment",
}


def test_start_prefills_save_resume_submit_withdraw(family, client, db):
    _head, account = family
    login_resident(client, account)
    pid = _start(client, "certificate_request")
    _html, data = _form(client, pid)
    assert data["family_name"] == "山田" and data["given_name_kana"] == "ハナコ"
    assert data["birth_date"] == "1985-04-01" and data["current_postal_code"] == "260-0001"
    assert "本町1丁目" in data["current_address"]
    # Save a draft, then resume it from "another device" (a new client, logged in again).
    resp = client.post(f"/me/prefilings/{pid}/edit", data={**data, "phone": "03-1234-5678", "action": "save"})
    assert resp.status_code == 302
    other = client.application.test_client()
    login_resident(other, account)
    _html, data = _form(other, pid)
    assert data["phone"] == "03-1234-5678"
    resp = other.post(f"/me/prefilings/{pid}/edit", data={**data, **CERTIFICATE, "action": "submit"})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    prefiling = db.session.get(PreFiling, pid)
    db.session.refresh(prefiling)
    assert prefiling.status == "submitted"
    assert service.normalise_reservation_no(prefiling.reservation_no) == prefiling.reservation_no
    page = other.get(f"/me/prefilings/{pid}").get_data(as_text=True)
    assert service.format_reservation_no(prefiling.reservation_no) in page
    assert 'src="data:image/svg+xml' in page
    assert service.values(prefiling)["copies"] == 2
    # Withdraw.
    resp = other.post(f"/me/prefilings/{pid}/withdraw", data={"csrf_token": csrf_from(page)})
    assert resp.status_code == 302
    db.session.refresh(prefiling)
    assert prefiling.status == "withdrawn"
    actions = [e.action for e in db.session.query(PreFilingEvent).filter_by(prefiling_id=pid).order_by("id")]
    assert actions == ["created", "saved", "saved", "submitted", "withdrawn"]


def test_moving_in_prefills_nothing_foreign_and_suggests_child_allowance(family, client, db):
    _head, account = family
    login_resident(client, account)
    pid = _start(client, "child_allowance")
    _html, data = _form(client, pid)
    assert data["children-0-given_name"] == "太郎"  # the child from the household
    pid = _start(client, "moving_in")
    prefiling = db.session.get(PreFiling, pid)
    values = service.values(prefiling) | {"has_children": True}
    service.save(prefiling, values, expected_version=prefiling.version, actor="test")
    db.session.commit()
    page = client.get(f"/me/prefilings/{pid}").get_data(as_text=True)
    assert "児童手当認定請求" in page


def test_field_errors_in_english_keep_what_was_typed(family, english, db):
    _head, account = family
    login_english(english, account)
    pid = _start(english, "certificate_request")
    _html, data = _form(english, pid)
    data.update(CERTIFICATE, family_name_kana="yamada", copies="99", phone="03-9999-0000", action="submit")
    resp = english.post(f"/me/prefilings/{pid}/edit", data=data)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "Use katakana only." in page and "Enter 10 or less." in page
    assert 'value="03-9999-0000"' in page and 'value="yamada"' in page and 'value="99"' in page
    assert db.session.get(PreFiling, pid).status == "draft"


def test_field_errors_in_japanese(family, client):
    _head, account = family
    login_resident(client, account)
    pid = _start(client, "certificate_request")
    _html, data = _form(client, pid)
    data.update(CERTIFICATE, phone="", action="submit")
    page = client.post(f"/me/prefilings/{pid}/edit", data=data).get_data(as_text=True)
    assert "0から始まる電話番号" not in page  # empty: the required message, not the pattern's
    assert 'aria-invalid="true"' in page
    assert "入力してください。" in page and "下の印のある項目を直してください。" in page


def test_two_tabs_cannot_overwrite_each_other(family, english, db):
    _head, account = family
    login_english(english, account)
    pid = _start(english, "certificate_request")
    _html, first = _form(english, pid)
    _html, second = _form(english, pid)
    assert (
        english.post(f"/me/prefilings/{pid}/edit", data={**first, "phone": "03-1111-1111"}).status_code == 302
    )
    resp = english.post(f"/me/prefilings/{pid}/edit", data={**second, "phone": "03-2222-2222"})
    assert resp.status_code == 409
    page = resp.get_data(as_text=True)
    assert "changed in another tab or on another device" in page
    assert 'value="03-2222-2222"' in page  # what this tab typed is still there to copy
    assert service.values(db.session.get(PreFiling, pid))["phone"] == "03-1111-1111"


def test_another_residents_prefiling_is_not_found(family, client, db):
    _head, account = family
    stranger = make_account(resident=make_resident(family="佐藤", given="次郎"))
    db.session.commit()
    login_resident(client, account)
    pid = _start(client, "seal_registration")
    other = client.application.test_client()
    login_resident(other, stranger)
    for url in (f"/me/prefilings/{pid}", f"/me/prefilings/{pid}/edit", f"/me/prefilings/{pid}/pdf"):
        assert other.get(url).status_code == 404
    page = other.get("/me/prefilings/").get_data(as_text=True)
    assert (
        other.post(f"/me/prefilings/{pid}/withdraw", data={"csrf_token": csrf_from(page)}).status_code == 404
    )


def _upload(client, pid: int, code: str, content: bytes, name: str):
    """A multipart POST built in memory (the test client would spool a large one to a temp file)."""
    page = client.get(f"/me/prefilings/{pid}/edit").get_data(as_text=True)
    boundary, body = encode_multipart(
        {"csrf_token": csrf_from(page), "code": code, "file": FileStorage(io.BytesIO(content), name)}
    )
    return client.post(
        f"/me/prefilings/{pid}/attachments",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def test_attachments_sniffed_limited_stored_and_served_to_the_owner(family, english, db, tmp_path):
    _head, account = family
    login_english(english, account)
    pid = _start(english, "child_allowance")
    resp = _upload(english, pid, "bank_book", b"<html><script>alert(1)</script></html>", "book.pdf")
    assert resp.status_code == 400
    assert "not an accepted type" in resp.get_data(as_text=True)
    resp = _upload(english, pid, "bank_book", b"%PDF-" + b"x" * (5 * 1024 * 1024), "big.pdf")
    assert resp.status_code == 413
    assert "too large" in resp.get_data(as_text=True)
    assert db.session.query(Attachment).count() == 0
    # A PNG named .pdf is accepted as what it is.
    assert _upload(english, pid, "bank_book", PNG, "book.pdf").status_code == 302
    attachment = db.session.query(Attachment).one()
    assert attachment.content_type == "image/png" and attachment.filename == "book.pdf"
    stored = tmp_path / "attachments" / attachment.stored_name
    assert stored.read_bytes() == PNG and "book" not in attachment.stored_name
    resp = english.get(f"/me/prefilings/{pid}/attachments/{attachment.id}")
    assert resp.status_code == 200 and resp.data == PNG and resp.mimetype == "image/png"
    stranger = make_account(resident=make_resident(family="佐藤", given="次郎"))
    db.session.commit()
    other = english.application.test_client()
    login_resident(other, stranger)
    assert other.get(f"/me/prefilings/{pid}/attachments/{attachment.id}").status_code == 404


def test_submit_needs_required_attachments(family, english, db):
    _head, account = family
    login_english(english, account)
    pid = _start(english, "seal_registration")
    _html, data = _form(english, pid)
    data.update(phone="03-1234-5678", seal_text="山田", seal_size_mm="15", by_proxy="on", action="submit")
    data.update(proxy_name="山田 一郎", proxy_kana="ヤマダ イチロウ")
    resp = english.post(f"/me/prefilings/{pid}/edit", data=data)
    assert resp.status_code == 400
    assert "attach the documents" in resp.get_data(as_text=True)
    assert english.post(f"/me/prefilings/{pid}/edit", data={**data, "action": "save"}).status_code == 302
    assert _upload(english, pid, "power_of_attorney", PDF, "inin.pdf").status_code == 302
    _html, data = _form(english, pid)
    resp = english.post(f"/me/prefilings/{pid}/edit", data={**data, "action": "submit"})
    assert resp.status_code == 302
    assert db.session.get(PreFiling, pid).status == "submitted"


def _stream(obj: bytes) -> bytes:
    length = re.search(rb"/Length (\d+)", obj)
    start = re.search(rb">>\s*stream\r?\n", obj)
    if not (length and start):
        return b""
    raw, head = obj[start.end() : start.end() + int(length.group(1))], obj[: start.start()]
    if b"ASCII85Decode" in head:
        raw = base64.a85decode(raw.strip(), adobe=True)
    return zlib.decompress(raw) if b"FlateDecode" in head else raw


def _pdf_text(body: bytes) -> str:
    """The text drawn in a reportlab PDF with subset TrueType fonts, decoded through each subset's
    ToUnicode map (no PDF library is installed)."""
    objects = {int(n): o for n, o in re.findall(rb"(?m)^(\d+) 0 obj(.*?)^endobj", body, re.S)}
    maps: dict[bytes, dict[int, str]] = {}
    for obj in objects.values():
        font = re.search(rb"/Name /(\S+)", obj)
        ref = re.search(rb"/ToUnicode (\d+) 0 R", obj)
        if font and ref:
            cmap = _stream(objects[int(ref.group(1))])
            maps[font.group(1)] = {
                int(a, 16): bytes.fromhex(b.decode()).decode("utf-16-be")
                for a, b in re.findall(rb"<([0-9A-Fa-f]{2})> <([0-9A-Fa-f]{4,})>", cmap)
            }
    text, current = [], {}
    for obj in objects.values():
        if b"/Length" not in obj or b"/Length1" in obj or b"begincmap" in _stream(obj):
            continue
        content = _stream(obj)
        for m in re.finditer(rb"/(\S+) [\d.]+ Tf|\(((?:\\.|[^\\)])*)\) Tj", content, re.S):
            if m.group(1) is not None:
                current = maps.get(m.group(1), {})
                continue
            raw = re.sub(rb"\\([0-7]{1,3})", lambda g: bytes([int(g.group(1), 8)]), m.group(2))
            raw = re.sub(rb"\\(.)", rb"\1", raw, flags=re.S)
            text.append("".join(current.get(b, chr(b)) for b in raw))
    return "\n".join(text)


def test_pdf_summary_with_embedded_japanese_font(family, client, db):
    _head, account = family
    login_resident(client, account)
    pid = _start(client, "certificate_request")
    resp = client.get(f"/me/prefilings/{pid}/pdf")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    body = resp.data
    assert body.startswith(b"%PDF-")
    assert b"/FontFile2" in body and b"IPAexGothic" in body  # the font is embedded
    text = _pdf_text(body)
    assert "山田" in text and "花子" in text
    assert "住民票の写し等交付請求" in text
    assert "令和" in text  # generated-at in 和暦


def test_a_huge_upload_is_refused_before_it_is_read(family, english):
    _head, account = family
    login_english(english, account)
    pid = _start(english, "child_allowance")
    resp = _upload(english, pid, "bank_book", b"%PDF-" + b"x" * (7 * 1024 * 1024), "huge.pdf")
    assert resp.status_code == 413


def test_correction_requested_then_resubmitted(family, english, db):
    _head, account = family
    login_english(english, account)
    pid = _start(english, "certificate_request")
    _html, data = _form(english, pid)
    assert (
        english.post(
            f"/me/prefilings/{pid}/edit", data={**data, **CERTIFICATE, "action": "submit"}
        ).status_code
        == 302
    )
    prefiling = db.session.get(PreFiling, pid)
    number = prefiling.reservation_no
    service.transition(
        prefiling, "correction_requested", actor="staff:1", note="Purpose: please be specific."
    )
    db.session.commit()
    html, data = _form(english, pid)
    assert "Purpose: please be specific." in html
    data.update(purpose="other", purpose_detail="Bank account", action="submit")
    assert english.post(f"/me/prefilings/{pid}/edit", data=data).status_code == 302
    db.session.refresh(prefiling)
    assert prefiling.status == "submitted" and prefiling.reservation_no == number
    assert service.values(prefiling)["purpose_detail"] == "Bank account"
    # Once submitted (or withdrawn), the form is not offered: the edit page leads to the status page.
    resp = english.get(f"/me/prefilings/{pid}/edit")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/me/prefilings/{pid}")
    english.post(f"/me/prefilings/{pid}/withdraw", data={"csrf_token": csrf_from(html)})
    db.session.refresh(prefiling)
    assert prefiling.status == "withdrawn"
