"""The agent and the PC helper against the REAL portal (``wsgi.create_app``) served by Werkzeug on
127.0.0.1, on SQLite and PostgreSQL: linking a card at a counter, the counter's card scan, logging in
on a PC, and the server's refusals reaching the page. The browser's part is the Flask test client
on the same app and database; the agent and the helper speak HTTP to the live server."""

from __future__ import annotations

import io
import logging
import re
import shutil
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from card import login as card_login
from card.sim import Profile, make_profile
from kiosk.agent import signing
from portal.access.models import AccessRecord
from portal.cardid import service
from portal.cardid.models import CardChallenge, CardCredential
from portal.vault import service as vault
from tests.factories import csrf_from, fake_number, login_staff, make_account, make_resident, make_staff

from .conftest import Running, start_agent

PIN = "6158"
ADDRESS = "千葉県みなと市中央区本町1丁目1番1号"  # the register's line for make_resident's defaults
COUNTER = "counter-07"


@pytest.fixture(scope="module")
def portal_card(tmp_path_factory: pytest.TempPathFactory) -> Profile:
    root = tmp_path_factory.mktemp("portal-cards")
    return make_profile(
        root / "hanako",
        name="山田　花子",
        kana="ヤマダ　ハナコ",
        address=ADDRESS,
        birth="19850401",
        sex="2",
        auth_pin=PIN,
        sign_pin="ABC123",
        my_number=fake_number(71),
        pki_dir=root / "pki",
    )


@pytest.fixture
def app_config(portal_card: Profile) -> dict:
    pki = portal_card.pki_dir
    return {
        "CARD_TRUST_DIR": str(pki),
        "CARD_CRL_FILES": (str(pki / "auth_crl.der"), str(pki / "sign_crl.der")),
        "RATELIMIT_ENABLED": False,
    }


@pytest.fixture
def card_copy(portal_card: Profile, tmp_path: Path) -> Path:
    target = tmp_path / "hanako"
    shutil.copytree(portal_card.directory, target)
    return target


@pytest.fixture
def person(db):
    resident = make_resident(birth=date(1985, 4, 1), sex=2)
    vault.store(resident.id, fake_number(71))
    db.session.commit()
    return resident


@pytest.fixture
def counter_key(db) -> Ed25519PrivateKey:
    key = signing.generate_key()
    service.add_terminal(COUNTER, "counter", "窓口7番", "中央区役所 市民課", signing.public_key_pem(key))
    db.session.commit()
    return key


@pytest.fixture
def agent(live: str, counter_key: Ed25519PrivateKey, card_copy: Path) -> Iterator[Running]:
    """The agent on the counter PC, with the resident's card on its reader."""
    run = start_agent(live, counter_key, card_copy, terminal=COUNTER)
    try:
        yield run
    finally:
        run.httpd.close()


def staff_challenge(app, db, client, purpose: str, terminal: str = COUNTER) -> dict:
    """What static/js/counter.js does first: the clerk's page asks for a challenge for its desk."""
    clerk = make_staff(roles=["counter"])
    db.session.commit()
    login_staff(client, clerk)
    token = csrf_from(client.get("/staff/counter/card").get_data(as_text=True))
    response = client.post(
        "/api/card/challenges",
        json={"purpose": purpose, "terminal": terminal},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def page_call(agent: Running, live: str, path: str, body: dict) -> tuple[int, dict]:
    """The page's fetch to the agent (with the portal's Origin, as a browser sends it)."""
    status, headers, answer = agent.call("POST", path, body, origin=live)
    assert headers.get("access-control-allow-origin") == live
    return status, answer


def link(agent: Running, live: str) -> dict:
    status, answer = page_call(agent, live, "/link", {"pin": PIN})
    assert status == 200, answer
    return answer


# -- linking and the counter scan -------------------------------------------------------------------
def test_link_at_the_counter_then_scan(app, db, client, live, agent, person, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    answer = link(agent, live)
    assert answer["status"] == "linked"
    db.session.expire_all()
    credential = db.session.get(CardCredential, answer["credential"])
    assert (credential.resident_id, credential.linked_via, credential.linked_by) == (
        person.id,
        "text_ap",
        COUNTER,
    )
    record = db.session.scalar(
        select(AccessRecord).where(AccessRecord.actor_id == COUNTER).order_by(AccessRecord.id.desc())
    )
    assert record.resident_id == person.id

    ch = staff_challenge(app, db, client, "counter_scan")
    scan = {"purpose": "counter_scan", "challenge": ch["id"], "message": ch["message"], "pin": PIN}
    assert page_call(agent, live, "/login", {**scan, "allow_last_try": False}) == (
        200,
        {"status": "done", "purpose": "counter_scan"},
    )
    status = client.get(f"/api/card/challenges/{ch['id']}").get_json()
    assert status["status"] == "done"
    summary = client.get(status["redirect"])
    assert summary.status_code == 200 and "山田" in summary.get_data(as_text=True)
    # the same answer again: the challenge is single-use
    code, again = page_call(agent, live, "/login", scan)
    assert (code, again["error"]["code"]) == (409, "challenge_used")
    # agent, client and server logged, at DEBUG; never the PIN or the number
    assert "POST /api/card/links -> 200" in caplog.text
    assert PIN not in caplog.text and fake_number(71) not in caplog.text


def test_link_started_by_the_clerks_page(app, db, client, live, agent, person) -> None:
    ch = staff_challenge(app, db, client, "link")
    body = {"purpose": "link", "challenge": ch["id"], "message": ch["message"], "pin": PIN}
    status, answer = page_call(agent, live, "/link", body)
    assert (status, answer["status"]) == (200, "linked")
    assert client.get(f"/api/card/challenges/{ch['id']}").get_json()["status"] == "done"


def test_refusals_reach_the_page(app, db, client, live, agent, person) -> None:
    # a card that is not linked yet
    ch = staff_challenge(app, db, client, "counter_scan")
    scan = {"purpose": "counter_scan", "challenge": ch["id"], "message": ch["message"], "pin": PIN}
    status, answer = page_call(agent, live, "/login", scan)
    assert (status, answer["error"]["code"]) == (403, "card_not_linked")
    assert answer["error"]["message"]  # the server's words, for the clerk

    # a wrong PIN stops at the card: the server's challenge is still open
    ch = staff_challenge(app, db, client, "counter_scan")
    status, answer = page_call(
        agent,
        live,
        "/login",
        {"purpose": "counter_scan", "challenge": ch["id"], "message": ch["message"], "pin": "0000"},
    )
    assert (status, answer["error"]["code"], answer["error"]["tries_left"]) == (400, "wrong_pin", 2)
    db.session.expire_all()
    assert db.session.get(CardChallenge, ch["id"]).status == "pending"

    # a challenge for another desk's terminal
    service.add_terminal(
        "counter-08",
        "counter",
        "窓口8番",
        "中央区役所 市民課",
        signing.public_key_pem(signing.generate_key()),
    )
    db.session.commit()
    ch = staff_challenge(app, db, client, "counter_scan", terminal="counter-08")
    status, answer = page_call(
        agent,
        live,
        "/login",
        {"purpose": "counter_scan", "challenge": ch["id"], "message": ch["message"], "pin": PIN},
    )
    assert (status, answer["error"]["code"]) == (403, "wrong_terminal")

    # a disabled terminal
    terminal = service.terminal_by_code(COUNTER)
    terminal.active = False
    db.session.commit()
    status, answer = page_call(agent, live, "/link", {"pin": PIN})
    assert (status, answer["error"]["code"]) == (403, "terminal_disabled")


def test_an_unregistered_terminal_key(app, db, live, card_copy, counter_key) -> None:
    run = start_agent(live, signing.generate_key(), card_copy, terminal=COUNTER)
    try:
        status, _, answer = run.call("POST", "/link", {"pin": PIN})
        assert (status, answer["error"]["code"]) == (401, "terminal_signature")
    finally:
        run.httpd.close()


# -- logging in on a PC ------------------------------------------------------------------------------
def open_card_login(browser) -> tuple[str, str]:
    page = browser.get("/card-login").get_data(as_text=True)
    challenge_id = re.search(r"/api/card/challenges/(c_[\w-]+)", page).group(1)
    code = re.search(r'<strong class="code">([A-Z0-9-]+)</strong>', page).group(1)
    return challenge_id, code


def helper(live: str, code: str, card: Path, pin: str, monkeypatch, capsys) -> tuple[int, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(pin + "\n"))
    status = card_login.main(["login", f"{live}/c/{code}", "--sim", str(card), "--pin-stdin"])
    out = capsys.readouterr()
    assert PIN not in out.out + out.err
    return status, out.out + out.err


def test_pc_login_with_the_helper(app, db, live, agent, person, card_copy, monkeypatch, capsys) -> None:
    link(agent, live)
    make_account(resident=person)
    db.session.commit()
    browser = app.test_client()
    challenge_id, code = open_card_login(browser)
    assert browser.get(f"/api/card/challenges/{challenge_id}").get_json()["status"] == "pending"
    status, text = helper(live, code, card_copy, "0000", monkeypatch, capsys)
    assert status == 5 and "2 tries left" in text
    status, text = helper(live, code, card_copy, PIN, monkeypatch, capsys)
    assert status == 0, text
    answer = browser.get(f"/api/card/challenges/{challenge_id}").get_json()
    assert answer["status"] == "done" and answer["redirect"] == "/me/"
    assert "山田" in browser.get("/me/").get_data(as_text=True)
    status, text = helper(live, code, card_copy, PIN, monkeypatch, capsys)  # the code is used up
    assert status == 10 and "Reload the login page" in text


def test_pc_login_with_a_card_not_linked(app, db, live, person, card_copy, monkeypatch, capsys) -> None:
    browser = app.test_client()
    challenge_id, code = open_card_login(browser)
    status, text = helper(live, code, card_copy, PIN, monkeypatch, capsys)
    assert status == 10 and "not linked" in text
    assert browser.get(f"/api/card/challenges/{challenge_id}").get_json()["status"] == "failed"
