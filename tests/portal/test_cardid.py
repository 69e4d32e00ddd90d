"""Card identity through the real card library: virtual cards (in memory), the real verifier with
a test JPKI and its CRL, terminals signing with Ed25519. Protocol: docs/card-identity.md."""

from __future__ import annotations

import base64
import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from card import termsig
from card.session import open_card
from card.sim.profile import make_profile, revoke
from portal.access.models import AccessRecord
from portal.cardid import service
from portal.cardid.models import CardChallenge, CardCredential
from portal.models_base import utcnow
from portal.vault import service as vault
from tests.factories import (
    card_app_config,
    fake_number,
    login_staff,
    make_account,
    make_cards,
    make_resident,
    make_staff,
)

PIN = "1234"


@pytest.fixture(scope="module")
def cards(tmp_path_factory) -> dict[str, Path]:
    """Virtual cards sharing one test PKI; one other PKI for an untrusted card."""
    root = tmp_path_factory.mktemp("cards")
    out = make_cards(
        root,
        {
            "hanako": ("山田　花子", "ヤマダ　ハナコ", "19850401", "2", 1),
            "renewed": ("山田　花子", "ヤマダ　ハナコ", "19850401", "2", 1),
            "moved": ("鈴木　一郎", "スズキ　イチロウ", "19700102", "1", 2),
            "unlinked": ("田中　健", "タナカ　ケン", "19900303", "1", 3),
            "revoked": ("佐藤　蓮", "サトウ　レン", "20000505", "1", 4),
        },
    )
    revoke(out["revoked"], "auth")
    out["foreign"] = root / "foreign"
    make_profile(out["foreign"], auth_pin=PIN, my_number=fake_number(9), pki_dir=root / "other-pki")
    return out


@pytest.fixture
def app_config(cards):
    return card_app_config(cards["pki"], "http://portal.test")


def _resident(name=("山田", "花子", "ヤマダ", "ハナコ"), birth=date(1985, 4, 1), sex=2, seed=1, **kw):
    person = make_resident(
        family=name[0], given=name[1], family_kana=name[2], given_kana=name[3], birth=birth, sex=sex, **kw
    )
    vault.store(person.id, fake_number(seed))
    return person


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def card_answer(profile: Path, message_b64: str, pin: str = PIN) -> dict:
    with open_card("sim", profile=profile) as card:
        return {
            "certificate": _b64(card.read_auth_certificate()),
            "signature": _b64(card.sign_auth(base64.b64decode(message_b64), pin)),
        }


class Terminal:
    def __init__(self, db, code="counter-01", kind="counter", active=True):
        self.key = Ed25519PrivateKey.generate()
        self.code = code
        row = service.add_terminal(code, kind, "窓口1番", "中央区役所 市民課", termsig.public_pem(self.key))
        row.active = active
        db.session.commit()

    def post(self, client, path, payload, *, key=None):
        body = json.dumps(payload).encode()
        headers = termsig.sign_request(key or self.key, self.code, "POST", path, body)
        return client.post(path, data=body, headers=headers, content_type="application/json")


def _link_with_card(client, terminal, profile, *, basic4_overrides=None):
    ch = terminal.post(client, "/api/card/challenges", {"purpose": "link"}).get_json()
    with open_card("sim", profile=profile) as card:
        number, basic4 = card.read_text_ap(PIN)
    payload = {
        "challenge": ch["id"],
        **card_answer(profile, ch["message"]),
        "my_number": number.reveal(),
        "basic4": {**basic4.as_dict(), **(basic4_overrides or {})},
    }
    return terminal.post(client, "/api/card/links", payload)


def _linked(db, client, cards, key="hanako", **resident_kw):
    person = _resident(**resident_kw)
    terminal = Terminal(db)
    resp = _link_with_card(client, terminal, cards[key])
    assert resp.status_code == 200, resp.get_json()
    return person, terminal


def _pc_login(client, helper, profile, *, code=None):
    """The browser opens the card login page; the PC helper answers with the card."""
    page = client.get("/card-login").get_data(as_text=True)
    challenge_id = re.search(r"/api/card/challenges/(c_[\w-]+)", page).group(1)
    shown_code = re.search(r'<strong class="code">([A-Z0-9-]+)</strong>', page).group(1)
    ch = helper.get(f"/api/card/challenges/by-code/{shown_code}").get_json()
    answer = helper.post(
        "/api/card/responses",
        json={"challenge": ch["id"], "code": code or shown_code, **card_answer(profile, ch["message"])},
    )
    return challenge_id, answer


# --- linking --------------------------------------------------------------------------------------


def test_link_at_counter_terminal_from_the_text_ap(app, db, client, cards):
    person, _ = _linked(db, client, cards)
    cred = db.session.scalar(select(CardCredential))
    assert cred.resident_id == person.id and cred.status == "active" and cred.linked_via == "text_ap"
    rec = db.session.scalar(select(AccessRecord))
    assert rec.actor_kind == "terminal" and "individual_number" in rec.data_items


def test_link_refuses_basic4_that_disagrees_with_the_register(app, db, client, cards):
    _resident()
    terminal = Terminal(db)
    resp = _link_with_card(client, terminal, cards["hanako"], basic4_overrides={"birth_date": "19850402"})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "basic4_mismatch"
    assert db.session.scalar(select(func.count()).select_from(CardCredential)) == 0


def test_link_with_a_number_not_on_the_register(app, db, client, cards):
    terminal = Terminal(db)
    resp = _link_with_card(client, terminal, cards["unlinked"])
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "resident_unknown"


def test_renewed_certificate_is_linked_again_and_supersedes(app, db, client, cards):
    _person, terminal = _linked(db, client, cards)
    assert _link_with_card(client, terminal, cards["renewed"]).status_code == 200
    statuses = sorted(c.status for c in db.session.scalars(select(CardCredential)))
    assert statuses == ["active", "superseded"]


def test_link_with_the_signature_certificate(app, db, client, cards):
    person = _resident()
    terminal = Terminal(db)
    ch = terminal.post(client, "/api/card/challenges", {"purpose": "link"}).get_json()
    message = base64.b64decode(ch["message"])
    with open_card("sim", profile=cards["hanako"]) as card:
        sign_cert = card.read_sign_certificate("ABC123")
        sign_sig = card.sign_sign(message, "ABC123")
    resp = terminal.post(
        client,
        "/api/card/links",
        {
            "challenge": ch["id"],
            **card_answer(cards["hanako"], ch["message"]),
            "sign_certificate": _b64(sign_cert),
            "sign_signature": _b64(sign_sig),
        },
    )
    assert resp.status_code == 200, resp.get_json()
    assert db.session.scalar(select(CardCredential)).resident_id == person.id


def test_link_needs_a_terminal(app, db, client, cards):
    resp = client.post("/api/card/links", json={"challenge": "x"})
    assert resp.status_code == 401


# --- logging in on a PC ---------------------------------------------------------------------------


def test_pc_login_with_the_card(app, db, client, cards):
    person, _ = _linked(db, client, cards)
    make_account(resident=person)
    db.session.commit()
    browser, helper = app.test_client(), app.test_client()
    challenge_id, answer = _pc_login(browser, helper, cards["hanako"])
    assert answer.status_code == 200, answer.get_json()
    status = browser.get(f"/api/card/challenges/{challenge_id}").get_json()
    assert status["status"] == "done" and status["redirect"] == "/me/"
    assert "山田" in browser.get("/me/").get_data(as_text=True)
    # the helper's client is not logged in: only the page that asked
    assert helper.get("/me/").status_code == 302
    # another browser cannot collect it
    assert app.test_client().get(f"/api/card/challenges/{challenge_id}").status_code == 404


def test_replayed_answer_is_refused(app, db, client, cards):
    person, _ = _linked(db, client, cards)
    make_account(resident=person)
    db.session.commit()
    browser, helper = app.test_client(), app.test_client()
    page = browser.get("/card-login").get_data(as_text=True)
    code = re.search(r'<strong class="code">([A-Z0-9-]+)</strong>', page).group(1)
    ch = helper.get(f"/api/card/challenges/by-code/{code}").get_json()
    payload = {"challenge": ch["id"], "code": code, **card_answer(cards["hanako"], ch["message"])}
    assert helper.post("/api/card/responses", json=payload).status_code == 200
    again = helper.post("/api/card/responses", json=payload)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "challenge_used"


def test_expired_challenge_is_refused(app, db, client, cards):
    _linked(db, client, cards)
    browser, helper = app.test_client(), app.test_client()
    page = browser.get("/card-login").get_data(as_text=True)
    code = re.search(r'<strong class="code">([A-Z0-9-]+)</strong>', page).group(1)
    ch = helper.get(f"/api/card/challenges/by-code/{code}").get_json()
    row = db.session.get(CardChallenge, ch["id"])
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    resp = helper.post(
        "/api/card/responses",
        json={"challenge": ch["id"], "code": code, **card_answer(cards["hanako"], ch["message"])},
    )
    assert resp.status_code == 410 and resp.get_json()["error"]["code"] == "challenge_expired"


def test_wrong_code_is_refused(app, db, client, cards):
    _linked(db, client, cards)
    _, answer = _pc_login(app.test_client(), app.test_client(), cards["hanako"], code="ZZZZ-ZZZZ")
    assert answer.status_code == 403 and answer.get_json()["error"]["code"] == "code_mismatch"


@pytest.mark.parametrize(
    ("card", "status", "code"),
    [
        ("unlinked", 403, "card_not_linked"),
        ("revoked", 403, "revoked"),
        ("foreign", 403, "untrusted"),
    ],
)
def test_refused_certificates_say_what_to_do(app, db, client, cards, card, status, code):
    _linked(db, client, cards)
    challenge_id, answer = _pc_login(app.test_client(), app.test_client(), cards[card])
    body = answer.get_json()
    assert answer.status_code == status and body["error"]["code"] == code
    assert body["error"]["message"]
    assert db.session.get(CardChallenge, challenge_id).status == "failed"


def test_moved_out_residents_card_is_refused(app, db, client, cards):
    person, _ = _linked(db, client, cards)
    person.status, person.moved_out_on = "moved_out", date.today()
    make_account(resident=person)
    db.session.commit()
    _, answer = _pc_login(app.test_client(), app.test_client(), cards["hanako"])
    assert answer.get_json()["error"]["code"] == "resident_not_active"


def test_wrong_signature_is_refused(app, db, client, cards):
    _linked(db, client, cards)
    browser, helper = app.test_client(), app.test_client()
    page = browser.get("/card-login").get_data(as_text=True)
    code = re.search(r'<strong class="code">([A-Z0-9-]+)</strong>', page).group(1)
    ch = helper.get(f"/api/card/challenges/by-code/{code}").get_json()
    other = base64.b64encode(b"a different message").decode()
    resp = helper.post(
        "/api/card/responses",
        json={"challenge": ch["id"], "code": code, **card_answer(cards["hanako"], other)},
    )
    assert resp.get_json()["error"]["code"] == "bad_signature"


def test_resident_sees_and_revokes_a_linked_card(app, db, client, cards):
    person, _ = _linked(db, client, cards)
    account = make_account(resident=person)
    db.session.commit()
    from tests.factories import login_resident, post_form

    login_resident(client, account)
    page = client.get("/me/cards").get_data(as_text=True)
    cred = db.session.scalar(select(CardCredential))
    assert cred.serial in page
    post_form(client, f"/me/cards/{cred.id}/revoke", {}, page="/me/cards")
    _, answer = _pc_login(app.test_client(), app.test_client(), cards["hanako"])
    assert answer.get_json()["error"]["code"] == "card_not_linked"


def test_card_login_without_a_portal_account(app, db, client, cards):
    _linked(db, client, cards)
    browser, helper = app.test_client(), app.test_client()
    challenge_id, answer = _pc_login(browser, helper, cards["hanako"])
    assert answer.status_code == 200
    status = browser.get(f"/api/card/challenges/{challenge_id}").get_json()
    assert status["status"] == "failed" and status["error"]["code"] == "no_account"


# --- terminals ------------------------------------------------------------------------------------


def test_challenge_from_another_terminal_is_refused(app, db, client, cards):
    _resident()
    a, b = Terminal(db, "counter-a"), Terminal(db, "counter-b")
    ch = a.post(client, "/api/card/challenges", {"purpose": "link"}).get_json()
    with open_card("sim", profile=cards["hanako"]) as card:
        number, basic4 = card.read_text_ap(PIN)
    resp = b.post(
        client,
        "/api/card/links",
        {
            "challenge": ch["id"],
            **card_answer(cards["hanako"], ch["message"]),
            "my_number": number.reveal(),
            "basic4": basic4.as_dict(),
        },
    )
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "wrong_terminal"


def test_unsigned_and_forged_terminal_requests(app, db, client, cards):
    terminal = Terminal(db)
    forged = terminal.post(
        client, "/api/card/challenges", {"purpose": "link"}, key=Ed25519PrivateKey.generate()
    )
    assert forged.status_code == 401 and forged.get_json()["error"]["code"] == "terminal_signature"
    ch = terminal.post(client, "/api/card/challenges", {"purpose": "link"}).get_json()
    unsigned = client.post(
        "/api/card/responses", json={"challenge": ch["id"], **card_answer(cards["hanako"], ch["message"])}
    )
    assert unsigned.status_code in (403, 404)
    # a body changed after signing
    body = json.dumps({"purpose": "link"}).encode()
    headers = termsig.sign_request(terminal.key, terminal.code, "POST", "/api/card/challenges", body)
    tampered = client.post(
        "/api/card/challenges",
        data=body.replace(b"link", b"lonk"),
        headers=headers,
        content_type="application/json",
    )
    assert tampered.status_code == 401


def test_disabled_terminal_is_refused(app, db, client, cards):
    terminal = Terminal(db, active=False)
    resp = terminal.post(client, "/api/card/challenges", {"purpose": "link"})
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "terminal_disabled"


def test_admin_adds_disables_and_rotates_terminals(app, db, client):
    from tests.factories import post_form

    admin = make_staff(roles=["admin"])
    db.session.commit()
    login_staff(client, admin)
    key = Ed25519PrivateKey.generate()
    resp = post_form(
        client,
        "/staff/admin/terminals",
        {
            "code": "kiosk-chuo-01",
            "kind": "kiosk",
            "name": "中央区役所 1階",
            "organisation": "中央区役所",
            "public_key": termsig.public_pem(key),
        },
    )
    assert resp.status_code == 302
    bad = post_form(
        client,
        "/staff/admin/terminals",
        {
            "code": "kiosk-chuo-02",
            "kind": "kiosk",
            "name": "x",
            "organisation": "y",
            "public_key": "not a key",
        },
    )
    assert bad.status_code == 200 and 'aria-invalid="true"' in bad.get_data(as_text=True)
    row = service.terminal_by_code("kiosk-chuo-01")
    new_key = Ed25519PrivateKey.generate()
    post_form(
        client,
        f"/staff/admin/terminals/{row.id}/key",
        {"public_key": termsig.public_pem(new_key)},
        page="/staff/admin/terminals",
    )
    db.session.refresh(row)
    assert row.rotated_at is not None and row.public_key_pem == termsig.public_pem(new_key).strip()
    post_form(client, f"/staff/admin/terminals/{row.id}/active", {}, page="/staff/admin/terminals")
    db.session.refresh(row)
    assert row.active is False


# --- the counter's card scan ------------------------------------------------------------------------


def test_counter_scan_shows_the_summary_and_records_it(app, db, client, cards):
    person, terminal = _linked(db, client, cards)
    clerk = make_staff(roles=["counter"])
    db.session.commit()
    login_staff(client, clerk)
    page = client.get("/staff/counter/card").get_data(as_text=True)
    from tests.factories import csrf_from

    token = csrf_from(page)
    ch = client.post(
        "/api/card/challenges",
        json={"purpose": "counter_scan", "terminal": terminal.code},
        headers={"X-CSRFToken": token},
    ).get_json()
    # the agent on the clerk's PC answers for the desk's terminal
    answer = terminal.post(
        client, "/api/card/responses", {"challenge": ch["id"], **card_answer(cards["hanako"], ch["message"])}
    )
    assert answer.status_code == 200
    before = db.session.scalar(select(func.count()).select_from(AccessRecord))
    status = client.get(f"/api/card/challenges/{ch['id']}").get_json()
    result = client.get(status["redirect"])
    assert result.status_code == 200 and "山田" in result.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(AccessRecord)) == before + 1
    rec = db.session.scalar(select(AccessRecord).order_by(AccessRecord.id.desc()))
    assert rec.resident_id == person.id and rec.actor_id == clerk.login_id
    # another clerk's session cannot open it
    other, other_clerk = app.test_client(), make_staff(roles=["counter"])
    db.session.commit()
    login_staff(other, other_clerk)
    assert other.get(status["redirect"]).status_code == 404


def test_browser_challenges_need_csrf_and_roles(app, db, client, cards):
    terminal = Terminal(db)
    resp = client.post("/api/card/challenges", json={"purpose": "counter_scan", "terminal": terminal.code})
    assert resp.status_code == 400  # no CSRF token
    from tests.factories import csrf_from

    token = csrf_from(client.get("/login").get_data(as_text=True))
    resp = client.post(
        "/api/card/challenges",
        json={"purpose": "counter_scan", "terminal": terminal.code},
        headers={"X-CSRFToken": token},
    )
    assert resp.status_code == 403
