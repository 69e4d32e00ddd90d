"""Resident A never sees resident B; staff see a resident only through a recorded route."""

import re

from sqlalchemy import func, select

from portal.access.models import AccessRecord
from portal.vault import service as vault
from tests.factories import (
    fake_number,
    login_resident,
    login_staff,
    make_account,
    make_resident,
    make_staff,
    post_form,
)


def _count(db):
    return db.session.scalar(select(func.count()).select_from(AccessRecord))


def test_resident_pages_show_only_their_own_household(app, db, client):
    a = make_resident(family="青木", family_kana="アオキ")
    b = make_resident(family="別府", family_kana="ベップ")
    account = make_account(resident=a)
    db.session.commit()
    login_resident(client, account)
    for path in ("/me/", "/me/access-history"):
        page = client.get(path).get_data(as_text=True)
        assert "別府" not in page
    assert "青木" in client.get("/me/").get_data(as_text=True)
    # there is no resident-id route a resident can guess
    assert client.get(f"/staff/residents/{b.id}?purpose=identity_check").status_code == 403


def test_staff_view_writes_access_record_and_resident_sees_it(app, db, client):
    resident = make_resident()
    account = make_account(resident=resident)
    clerk = make_staff(roles=["counter"], organisation="北区役所 市民課")
    db.session.commit()
    login_staff(client, clerk)
    before = _count(db)
    assert client.get(f"/staff/residents/{resident.id}?purpose=certificate").status_code == 200
    assert _count(db) == before + 1
    rec = db.session.scalar(select(AccessRecord).order_by(AccessRecord.id.desc()))
    assert rec.actor_id == clerk.login_id and rec.purpose == "certificate"
    assert "household" in rec.data_items
    other = app.test_client()
    login_resident(other, account)
    assert "北区役所 市民課" in other.get("/me/access-history").get_data(as_text=True)


def test_staff_view_without_purpose_is_refused_and_unrecorded(app, db, client):
    resident = make_resident()
    clerk = make_staff(roles=["counter"])
    db.session.commit()
    login_staff(client, clerk)
    assert client.get(f"/staff/residents/{resident.id}").status_code == 400
    assert client.get(f"/staff/residents/{resident.id}?purpose=curiosity").status_code == 400
    assert _count(db) == 0


def test_wrong_id_is_a_plain_404(app, db, client):
    clerk = make_staff(roles=["counter"])
    db.session.commit()
    login_staff(client, clerk)
    resp = client.get("/staff/residents/999999?purpose=identity_check")
    assert resp.status_code == 404
    main = resp.get_data(as_text=True).split('<main id="main">')[1]
    assert "999999" not in main
    assert _count(db) == 0


def test_search_records_each_resident_shown(app, db, client):
    make_resident(family="山田", given="一郎")
    make_resident(family="山田", given="二郎")
    make_resident(family="鈴木", given="三郎", family_kana="スズキ")
    clerk = make_staff(roles=["processing"])
    db.session.commit()
    login_staff(client, clerk)
    page = client.get("/staff/residents?q=やまだ").get_data(as_text=True)
    assert 'aria-invalid="true"' in page and _count(db) == 0  # purpose missing: nothing shown
    page = client.get("/staff/residents?q=やまだ&purpose=moving").get_data(as_text=True)
    assert "一郎" in page and "二郎" in page and "三郎" not in page
    assert _count(db) == 2


def test_roles_limit_staff(app, db, client):
    resident = make_resident()
    librarian = make_staff(roles=["library"])
    db.session.commit()
    login_staff(client, librarian)
    assert client.get(f"/staff/residents/{resident.id}?purpose=identity_check").status_code == 403
    assert client.get("/staff/admin/staff").status_code == 403
    assert client.get("/staff/").status_code == 200


def test_individual_number_masked_then_revealed_with_record(app, db, client):
    resident = make_resident()
    vault.store(resident.id, fake_number(42))
    clerk = make_staff(roles=["counter"])
    db.session.commit()
    login_staff(client, clerk)
    page = client.get(f"/staff/residents/{resident.id}?purpose=identity_check").get_data(as_text=True)
    assert fake_number(42) not in page and vault.MASK in page
    assert "individual-number" not in page  # identity check is not a number purpose
    page = client.get(f"/staff/residents/{resident.id}?purpose=child_allowance").get_data(as_text=True)
    assert "individual-number" in page
    resp = post_form(
        client,
        f"/staff/residents/{resident.id}/individual-number",
        {"purpose": "child_allowance"},
        page=f"/staff/residents/{resident.id}?purpose=child_allowance",
    )
    assert fake_number(42) in resp.get_data(as_text=True)
    assert "/individual-number" in resp.request.path and fake_number(42) not in resp.request.full_path
    rec = db.session.scalar(select(AccessRecord).order_by(AccessRecord.id.desc()))
    assert rec.data_items == "individual_number"


def test_security_headers_and_cookies(app, db, client):
    resp = client.get("/login")
    csp = resp.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert client.get("/login").headers["Content-Security-Policy"] != csp or nonce == ""  # fresh per request
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_production_cookies_are_secure(monkeypatch, tmp_path):
    from wsgi import create_app

    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/p.sqlite3")
    monkeypatch.setenv("VAULT_KEY", "dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=")
    monkeypatch.setenv("PUBLIC_ORIGIN", "https://portal.example")
    app = create_app("production")
    resp = app.test_client().get("/login", base_url="https://portal.example")
    assert "Secure" in resp.headers["Set-Cookie"]
    assert "Strict-Transport-Security" in resp.headers


def test_logs_never_carry_an_individual_number(app, db, caplog):
    """The redaction filter is the last line: a number logged by mistake is masked."""
    number = fake_number(77)
    app.logger.warning("oops %s", number)
    assert number not in caplog.text
