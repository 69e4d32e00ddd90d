"""Signing a pre-filing with the card's signature certificate (issue 6 item 3), through the real
verifier with a test JPKI and its CRL, virtual cards in memory, and the PC helper's own code
(:mod:`card.filing`) talking to the app through the test client."""

from __future__ import annotations

import base64
import logging
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

import card.filing as filing
from card.login import _error_from
from card.session import open_card
from card.sim.profile import revoke
from card.verify import verify_signature
from portal.cardid.models import CardChallenge
from portal.cardid.service import verifier
from portal.models_base import utcnow
from portal.prefiling import service, signing
from portal.prefiling.models import PreFiling, PreFilingEvent
from tests.factories import (
    CARD_SIGN_PIN,
    card_app_config,
    login_resident,
    make_account,
    make_cards,
    make_resident,
    post_form,
)

SIGN_PIN = CARD_SIGN_PIN
ORIGIN = "https://portal.test"


@pytest.fixture(scope="module")
def cards(tmp_path_factory) -> dict[str, Path]:
    out = make_cards(
        tmp_path_factory.mktemp("signing-cards"),
        {
            "hanako": ("山田　花子", "ヤマダ　ハナコ", "19850401", "2", 1),
            "other": ("鈴木　一郎", "スズキ　イチロウ", "19700102", "1", 2),
            "revoked": ("山田　花子", "ヤマダ　ハナコ", "19850401", "2", 3),
        },
    )
    revoke(out["revoked"], "sign")  # e.g. after a change of address
    return out


@pytest.fixture
def app_config(cards):
    return card_app_config(cards["pki"], ORIGIN)


@pytest.fixture(autouse=True)
def _signing_routes(app):
    signing.init_app(app)


@pytest.fixture
def filed(db):
    """Hanako's submitted moving-in pre-filing."""
    resident = make_resident(birth=date(1985, 4, 1), sex=2)
    account = make_account(resident=resident)
    prefiling = service.create_draft(
        resident_id=resident.id,
        account_id=account.id,
        code="tennyu",
        version=1,
        data={
            "moved_on": "2026-11-20",
            "previous_address": "東京都千代田区霞が関二丁目1番2号",
            "children": 1,
        },
    )
    service.transition(prefiling, "submitted", actor=f"account:{account.id}")
    db.session.commit()
    return prefiling, account


@pytest.fixture
def helper(client, monkeypatch):
    """card.filing's HTTP goes to the test client (same JSON, same error objects)."""

    def http_json(method, url, payload=None, **_kw):
        assert url.startswith(ORIGIN)
        resp = client.open(url[len(ORIGIN) :], method=method, json=payload)
        if resp.status_code >= 400:
            raise _error_from(resp.status_code, resp.data)
        return resp.status_code, resp.get_json()

    monkeypatch.setattr(filing, "http_json", http_json)


def _request(db, prefiling) -> CardChallenge:
    req = signing.create_request(prefiling, origin=ORIGIN)
    db.session.commit()
    return req


def _sign(profile: Path, message: bytes, pin: str = SIGN_PIN) -> dict:
    with open_card("sim", profile=profile) as card:
        return {
            "certificate": base64.b64encode(card.read_sign_certificate(pin)).decode(),
            "signature": base64.b64encode(card.sign_sign(message, pin)).decode(),
        }


def _post(client, code: str, body: dict):
    return client.post(f"/api/prefilings/sign/{code}", json=body)


def _reload(db, prefiling) -> PreFiling:
    db.session.expire_all()
    return db.session.get(PreFiling, prefiling.id)


def test_sign_with_the_helper(db, client, cards, filed, helper, monkeypatch, caplog):
    prefiling, _account = filed
    req = _request(db, prefiling)
    said: list[str] = []
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(SIGN_PIN.lower() + "\n"))
    caplog.set_level(logging.DEBUG)
    with open_card("sim", profile=cards["hanako"]) as card:
        answer = filing.sign_filing(signing.helper_url(req), card, pin_stdin=True, say=said.append)
    assert answer["status"] == "signed"
    text = "\n".join(said)
    # the summary shown before the PIN: procedure, reservation number, values
    assert "tennyu" in text and "previous_address: 東京都千代田区霞が関二丁目1番2号" in text
    assert service.format_reservation_no(prefiling.reservation_no) in text
    assert SIGN_PIN not in text and SIGN_PIN.lower() not in text
    assert SIGN_PIN.lower() not in caplog.text and SIGN_PIN not in caplog.text

    stored = _reload(db, prefiling)
    canonical = service.canonical_form(stored)
    assert stored.signed_digest == service.form_digest(stored)
    assert stored.signature_verified_at is not None and signing.is_signed(stored)
    v = verifier()
    verified = verify_signature(
        stored.signature_certificate, stored.signature, canonical, v.trust, v.revocation, expected_kind="sign"
    )
    assert verified.basic4 is not None and verified.basic4.birth_date == "19850401"
    events = db.session.scalars(select(PreFilingEvent).where(PreFilingEvent.prefiling_id == stored.id))
    assert "signed" in [e.action for e in events]
    # one time: the code is used up
    again = _post(client, req.code, _sign(cards["hanako"], canonical))
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "sign_request_used"
    # saving the form afterwards clears the signature
    service.save(stored, {"moved_on": "2026-11-21"}, expected_version=stored.version, actor="account:1")
    assert not signing.is_signed(stored) and stored.signature is None


def test_form_changed_after_the_request_is_refused(db, client, cards, filed):
    prefiling, _ = filed
    req = _request(db, prefiling)
    old = service.canonical_form(prefiling)
    body = _sign(cards["hanako"], old)  # signed what the resident saw …
    service.save(prefiling, {"moved_on": "2026-12-01"}, expected_version=prefiling.version, actor="x")
    db.session.commit()  # … then the form changed
    got = client.get(f"/api/prefilings/sign/{req.code}")
    assert got.status_code == 409 and got.get_json()["error"]["code"] == "form_changed"
    resp = _post(client, req.code, body)
    assert resp.status_code == 409
    error = resp.get_json()["error"]
    assert error["code"] == "form_changed" and ("changed" in error["message"] or "変更" in error["message"])
    assert _reload(db, prefiling).signature is None


def test_signature_over_other_bytes_is_refused(db, client, cards, filed):
    prefiling, _ = filed
    req = _request(db, prefiling)
    tampered = service.canonical_form(prefiling).replace(b"2026-11-20", b"2026-11-27")
    resp = _post(client, req.code, _sign(cards["hanako"], tampered))
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "bad_signature"
    stored = _reload(db, prefiling)
    assert stored.signature is None and stored.signature_verified_at is None
    # a refusal uses the code up
    assert db.session.get(CardChallenge, req.id).status == "failed"


def test_revoked_signature_certificate_is_refused(db, client, cards, filed):
    prefiling, _ = filed
    req = _request(db, prefiling)
    resp = _post(client, req.code, _sign(cards["revoked"], service.canonical_form(prefiling)))
    assert resp.status_code == 403
    error = resp.get_json()["error"]
    assert error["code"] == "revoked" and ("address" in error["message"] or "住所" in error["message"])
    assert _reload(db, prefiling).signature is None


def test_another_persons_card_is_refused(db, client, cards, filed):
    prefiling, _ = filed
    req = _request(db, prefiling)
    resp = _post(client, req.code, _sign(cards["other"], service.canonical_form(prefiling)))
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "wrong_person"
    assert _reload(db, prefiling).signature is None


def test_auth_certificate_is_not_a_signature_certificate(db, client, cards, filed):
    prefiling, _ = filed
    req = _request(db, prefiling)
    canonical = service.canonical_form(prefiling)
    with open_card("sim", profile=cards["hanako"]) as card:
        body = {
            "certificate": base64.b64encode(card.read_auth_certificate()).decode(),
            "signature": base64.b64encode(card.sign_auth(canonical, "1234")).decode(),
        }
    resp = _post(client, req.code, body)
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "wrong_kind"


def test_expired_and_unknown_codes(db, client, cards, filed, helper):
    prefiling, _ = filed
    req = _request(db, prefiling)
    req.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    got = client.get(f"/api/prefilings/sign/{req.code}")
    assert got.status_code == 410 and got.get_json()["error"]["code"] == "sign_request_expired"
    resp = _post(client, req.code, _sign(cards["hanako"], service.canonical_form(prefiling)))
    assert resp.status_code == 410
    assert client.get("/api/prefilings/sign/ZZZZ-ZZZZ").status_code == 404
    with open_card("sim", profile=cards["hanako"]) as card, pytest.raises(filing.ServerError) as exc:
        filing.sign_filing(f"{ORIGIN}/f/{req.code}", card, pin_stdin=True, say=lambda _s: None)
    assert exc.value.code == "sign_request_expired"


def test_a_draft_cannot_be_signed(db, filed):
    prefiling, account = filed
    draft = service.create_draft(
        resident_id=prefiling.resident_id, account_id=account.id, code="tenkyo", version=1, data={}
    )
    with pytest.raises(signing.SigningError) as exc:
        signing.create_request(draft, origin=ORIGIN)
    assert exc.value.code == "not_signable"


def test_the_residents_page_makes_a_code(db, client, filed):
    prefiling, account = filed
    login_resident(client, account)
    url = f"/me/prefilings/{prefiling.id}/sign"
    resp = post_form(client, url, {}, page=url)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    req = db.session.scalar(
        select(CardChallenge).where(CardChallenge.session_binding == f"prefiling:{prefiling.id}")
    )
    assert req is not None and req.nonce == service.form_digest(prefiling)
    assert f"python -m card sign-filing {ORIGIN}/f/{req.code}" in html
    api = client.post(
        f"/api/prefilings/{prefiling.id}/signing-requests",
        headers={"X-CSRFToken": _csrf(client, url)},
    )
    assert api.status_code == 201 and api.get_json()["helper_url"].startswith(f"{ORIGIN}/f/")


def test_someone_elses_prefiling_is_not_found(db, client, filed):
    prefiling, _ = filed
    stranger = make_account(resident=make_resident(family="鈴木", given="一郎", birth=date(1970, 1, 2)))
    db.session.commit()
    login_resident(client, stranger)
    assert client.get(f"/me/prefilings/{prefiling.id}/sign").status_code == 404


def _csrf(client, url: str) -> str:
    from tests.factories import csrf_from

    return csrf_from(client.get(url).get_data(as_text=True))


def test_the_f_link_in_a_browser_says_how_to_sign(client):
    html = client.get("/f/abcd-efgh").get_data(as_text=True)
    assert f"python -m card sign-filing {ORIGIN}/f/ABCD-EFGH" in html
