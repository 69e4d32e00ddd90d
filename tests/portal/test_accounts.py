import re
from datetime import date

import pyotp

from portal import mail
from portal.accounts import service
from portal.accounts.models import ResidentAccount
from tests.factories import (
    PASSWORD,
    csrf_from,
    login_resident,
    login_staff,
    make_account,
    make_resident,
    make_staff,
    post_form,
)


def _link_in_last_mail() -> str:
    body = mail.outbox[-1].get_body(("plain",)).get_content()
    return re.search(r"https?://\S+", body).group(0).replace("http://portal.test", "")


def test_register_verify_and_login(app, db, client):
    resp = post_form(
        client,
        "/register",
        {"email": "New@Example.jp", "password": "a-long-password", "confirm": "a-long-password"},
    )
    assert resp.status_code == 302
    account = db.session.scalar(db.select(ResidentAccount))
    assert account.email == "new@example.jp" and account.email_verified_at is None
    assert account.password_hash.startswith("$argon2id$")
    assert client.get(_link_in_last_mail()).status_code == 302
    db.session.refresh(account)
    assert account.email_verified_at is not None
    # logged in but not linked: home page offers linking, access history is refused
    assert "/account/link" in client.get("/me/").get_data(as_text=True)
    assert client.get("/me/access-history").status_code == 403


def test_register_refuses_bad_input_with_field_errors(app, db, client):
    resp = post_form(client, "/register", {"email": "not-an-email", "password": "short", "confirm": "other"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert page.count('aria-invalid="true"') == 3
    assert 'value="not-an-email"' in page  # what was typed is kept


def test_wrong_password_and_unknown_user_look_the_same(app, db, client):
    account = make_account()
    db.session.commit()
    a = post_form(client, "/login", {"email": account.email, "password": "wrong-password"}).get_data(
        as_text=True
    )
    b = post_form(client, "/login", {"email": "nobody@example.jp", "password": "wrong-password"}).get_data(
        as_text=True
    )
    err = re.compile(r'<p class="error"[^>]*>([^<]*)</p>')
    assert err.findall(a) == err.findall(b) != []


def test_login_is_rate_limited(app, db, client):
    html = client.get("/login").get_data(as_text=True)
    token = csrf_from(html)
    codes = [
        client.post(
            "/login", data={"csrf_token": token, "email": "x@example.jp", "password": "nope"}
        ).status_code
        for _ in range(11)
    ]
    assert codes[:10] == [200] * 10 and codes[10] == 429


def test_csrf_is_required(app, db, client):
    account = make_account()
    db.session.commit()
    resp = client.post("/login", data={"email": account.email, "password": PASSWORD})
    assert resp.status_code == 400


def test_password_reset_works_once(app, db, client):
    account = make_account()
    db.session.commit()
    post_form(client, "/forgot", {"email": account.email})
    link = _link_in_last_mail()
    resp = post_form(client, link, {"password": "brand-new-password", "confirm": "brand-new-password"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login")
    again = post_form(client, link, {"password": "another-password1", "confirm": "another-password1"})
    assert again.headers["Location"].endswith("/forgot")
    login_resident(client, account, password="brand-new-password")


def test_forgot_says_the_same_for_unknown_addresses(app, db, client):
    resp = post_form(client, "/forgot", {"email": "nobody@example.jp"})
    assert resp.status_code == 302 and mail.outbox == []


def test_password_change_ends_other_sessions(app, db, client):
    account = make_account(resident=make_resident())
    db.session.commit()
    other = app.test_client()
    login_resident(client, account)
    login_resident(other, account)
    resp = post_form(
        client,
        "/account/password",
        {"current": PASSWORD, "password": "changed-password", "confirm": "changed-password"},
    )
    assert resp.status_code == 302
    assert client.get("/me/").status_code == 200
    assert other.get("/me/").status_code == 302  # logged out


def test_totp_setup_needs_fresh_login_then_guards_login(app, db, client):
    account = make_account(resident=make_resident())
    db.session.commit()
    login_resident(client, account)
    with client.session_transaction() as s:
        s["auth_at"] = 0  # no longer fresh
    assert client.get("/account/totp").headers["Location"].startswith("/reauth")
    post_form(client, "/reauth?next=/account/totp", {"password": PASSWORD}, page="/reauth")
    page = client.get("/account/totp").get_data(as_text=True)
    secret = re.search(r"<code>([A-Z2-7]+)</code>", page).group(1)
    bad = post_form(client, "/account/totp", {"code": "000000"})
    assert bad.status_code == 200 and 'aria-invalid="true"' in bad.get_data(as_text=True)
    ok = post_form(client, "/account/totp", {"code": pyotp.TOTP(secret).now()})
    assert ok.status_code == 302
    fresh = app.test_client()
    no_code = post_form(fresh, "/login", {"email": account.email, "password": PASSWORD})
    assert no_code.status_code == 200
    # the code used to turn it on cannot be replayed; the next step's code is accepted
    import time

    later = pyotp.TOTP(secret).at(int(time.time()) + 30)
    assert (
        post_form(fresh, "/login", {"email": account.email, "password": PASSWORD, "totp": later}).status_code
        == 302
    )


def test_activation_code_links_the_register_record(app, db, client):
    resident = make_resident(birth=date(1990, 1, 2))
    clerk = make_staff(roles=["counter"])
    db.session.commit()
    code = service.issue_activation_code(resident.id, clerk.login_id)
    db.session.commit()
    account = make_account()
    db.session.commit()
    login_resident(client, account)
    wrong = post_form(client, "/account/link", {"code": code, "birth_date": "1990-01-03"})
    assert wrong.status_code == 200 and 'aria-invalid="true"' in wrong.get_data(as_text=True)
    ok = post_form(client, "/account/link", {"code": code.lower(), "birth_date": "1990-01-02"})
    assert ok.status_code == 302
    db.session.refresh(account)
    assert account.resident_id == resident.id
    assert resident.family_name in client.get("/me/").get_data(as_text=True)
    # the code works once
    other = make_account()
    db.session.commit()
    c2 = app.test_client()
    login_resident(c2, other)
    again = post_form(c2, "/account/link", {"code": code, "birth_date": "1990-01-02"})
    assert again.status_code == 200 and 'aria-invalid="true"' in again.get_data(as_text=True)


def test_counter_issues_activation_code_with_access_record(app, db, client):
    from portal.access.models import AccessRecord

    resident = make_resident()
    clerk = make_staff(roles=["counter"])
    db.session.commit()
    login_staff(client, clerk)
    page = post_form(
        client,
        f"/staff/residents/{resident.id}/activation-code",
        {},
        page=f"/staff/residents/{resident.id}?purpose=portal_support",
    ).get_data(as_text=True)
    assert re.search(r'<p class="code">[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}</p>', page)
    assert db.session.scalar(db.select(db.func.count()).select_from(AccessRecord)) == 2


def test_staff_idle_timeout_is_enforced_on_the_server(app, db, client):
    clerk = make_staff(roles=["counter"])
    db.session.commit()
    login_staff(client, clerk)
    assert client.get("/staff/").status_code == 200
    with client.session_transaction() as s:
        s["last_seen"] -= app.config["STAFF_IDLE_SECONDS"] + 1
    resp = client.get("/staff/")
    assert resp.status_code == 302 and "/staff/login" in resp.headers["Location"]


def test_disabled_staff_is_logged_out(app, db, client):
    clerk = make_staff(roles=["counter"])
    admin = make_staff(roles=["admin"])
    db.session.commit()
    login_staff(client, clerk)
    admin_client = app.test_client()
    login_staff(admin_client, admin)
    post_form(admin_client, f"/staff/admin/staff/{clerk.id}/active", {}, page="/staff/admin/staff")
    assert client.get("/staff/").status_code == 302


def test_admin_adds_staff_with_validation(app, db, client):
    admin = make_staff(roles=["admin"])
    db.session.commit()
    login_staff(client, admin)
    bad = post_form(
        client, "/staff/admin/staff", {"login_id": "Bad ID!", "display_name": "", "organisation": "x"}
    )
    assert bad.status_code == 200 and bad.get_data(as_text=True).count('class="error"') >= 3
    ok = post_form(
        client,
        "/staff/admin/staff",
        {
            "login_id": "lib2",
            "display_name": "図書 花子",
            "organisation": "北図書館",
            "roles": ["library"],
            "password": "initial-password",
        },
    )
    assert ok.status_code == 302
    assert service.authenticate_staff("lib2", "initial-password").role_list == ["library"]


def test_safe_next_ignores_other_sites(app, db, client):
    account = make_account()
    db.session.commit()
    html = client.get("/login?next=//evil.example/x").get_data(as_text=True)
    resp = client.post(
        "/login?next=//evil.example/x",
        data={"csrf_token": csrf_from(html), "email": account.email, "password": PASSWORD},
    )
    assert resp.headers["Location"] == "/me/"
