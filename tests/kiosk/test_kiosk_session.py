"""The kiosk session against the REAL portal on SQLite and PostgreSQL: the terminal agent (virtual
card, in memory) logs the card holder in with a ``kiosk_login`` challenge, the server answers with
a one-time ticket, and the kiosk page (the Flask test client) redeems it for a session bound to
that terminal. Single use, terminal binding, expiry, idle timeout, card removal, and that another
resident's data is never reachable."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from kiosk.agent import signing
from portal.access.models import AccessRecord
from portal.cardid import service as cardid
from portal.cardid.models import CardCredential
from portal.kiosk.models import KioskSession
from portal.models_base import utcnow
from tests.factories import CARD_AUTH_PIN, csrf_from, make_cards, make_resident

from .conftest import Running, start_agent

KIOSK = "kiosk-07"
OTHER_KIOSK = "kiosk-08"
PEOPLE = {
    "hanako": ("山田　花子", "ヤマダ　ハナコ", "19850401", "2", 81),
    "taro": ("鈴木　太郎", "スズキ　タロウ", "19700115", "1", 82),
}


@pytest.fixture(scope="module")
def cards(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return make_cards(tmp_path_factory.mktemp("kiosk-cards"), PEOPLE)


@pytest.fixture
def app_config(cards: dict) -> dict:
    pki = cards["pki"]
    return {
        "CARD_TRUST_DIR": str(pki),
        "CARD_CRL_FILES": (str(pki / "auth_crl.der"), str(pki / "sign_crl.der")),
        "RATELIMIT_ENABLED": False,
    }


def _link(db, card_dir: Path, resident) -> CardCredential:
    """The card was linked at a counter earlier (identity proofing is portal/cardid's test)."""
    verified = cardid.verify_certificate_only((card_dir / "auth_cert.der").read_bytes())
    cred = CardCredential.from_verified(verified, resident_id=resident.id, linked_by="test", via="text_ap")
    db.session.add(cred)
    db.session.commit()
    return cred


@pytest.fixture
def people(db, cards: dict) -> dict:
    out = {}
    for key, (name, _kana, birth, sex, _seed) in PEOPLE.items():
        family, given = name.split("\u3000")
        out[key] = make_resident(
            family=family,
            given=given,
            birth=date(int(birth[:4]), int(birth[4:6]), int(birth[6:])),
            sex=int(sex),
        )
    db.session.commit()
    return out


@pytest.fixture
def keys(db) -> dict[str, Ed25519PrivateKey]:
    out = {}
    for code in (KIOSK, OTHER_KIOSK):
        out[code] = signing.generate_key()
        cardid.add_terminal(code, "kiosk", "キオスク", "中央区役所", signing.public_key_pem(out[code]))
    db.session.commit()
    return out


@pytest.fixture
def card_copies(cards: dict, tmp_path: Path) -> dict[str, Path]:
    out = {}
    for key in PEOPLE:
        out[key] = tmp_path / key
        shutil.copytree(cards[key], out[key])
    return out


@pytest.fixture
def agents(live, keys, card_copies) -> Iterator[dict]:
    """An agent per kiosk: kiosk-07 has Hanako's card on its reader, kiosk-08 Taro's."""
    runs = {
        KIOSK: start_agent(live, keys[KIOSK], card_copies["hanako"], terminal=KIOSK),
        OTHER_KIOSK: start_agent(live, keys[OTHER_KIOSK], card_copies["taro"], terminal=OTHER_KIOSK),
    }
    try:
        yield runs
    finally:
        for run in runs.values():
            run.httpd.close()


def card_login(agent: Running, live: str, pin: str = CARD_AUTH_PIN, **extra) -> tuple[int, dict]:
    """What static/js/kiosk.js sends to the agent when the resident presses OK."""
    status, _, answer = agent.call(
        "POST", "/login", {"purpose": "kiosk_login", "pin": pin, **extra}, origin=live
    )
    return status, answer


def kiosk_page(app, terminal: str):
    """A kiosk's Chromium: opens /kiosk/?terminal=CODE at boot, then the start screen."""
    page = app.test_client()
    assert page.get(f"/kiosk/?terminal={terminal}").status_code == 302
    start = page.get("/kiosk/")
    assert start.status_code == 200
    page.csrf = csrf_from(start.get_data(as_text=True))  # type: ignore[attr-defined]
    return page


def redeem(page, ticket: str):
    response = page.post("/kiosk/session", json={"ticket": ticket}, headers={"X-CSRFToken": page.csrf})
    if response.status_code == 200:  # the visit starts with a fresh session (and CSRF token)
        page.csrf = csrf_from(page.get("/kiosk/menu").get_data(as_text=True))
    return response


def test_card_login_ticket_opens_one_session_on_that_terminal(app, db, live, people, agents, card_copies):
    _link(db, card_copies["hanako"], people["hanako"])
    status, answer = card_login(agents[KIOSK], live)
    assert (status, answer["status"], answer["purpose"]) == (200, "done", "kiosk_login")
    ticket = answer["ticket"]
    assert CARD_AUTH_PIN not in str(answer)

    # another kiosk's page cannot use it
    other = kiosk_page(app, OTHER_KIOSK)
    refused = redeem(other, ticket)
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (403, "wrong_terminal")
    assert other.get("/kiosk/menu").status_code == 302

    page = kiosk_page(app, KIOSK)
    opened = redeem(page, ticket)
    assert opened.status_code == 200 and opened.get_json() == {"redirect": "/kiosk/menu"}
    menu = page.get("/kiosk/menu")
    html = menu.get_data(as_text=True)
    assert menu.status_code == 200 and "山田" in html and "鈴木" not in html
    assert "no-store" in menu.headers["Cache-Control"]

    # single use: neither this page nor another browser on the same kiosk gets a second session
    again = redeem(kiosk_page(app, KIOSK), ticket)
    assert (again.status_code, again.get_json()["error"]["code"]) == (409, "ticket_used")
    row = db.session.scalar(select(KioskSession).where(KioskSession.terminal_code == KIOSK))
    assert (row.resident_id, row.ended_at) == (people["hanako"].id, None)
    record = db.session.scalar(
        select(AccessRecord).where(AccessRecord.purpose == "kiosk_session").order_by(AccessRecord.id.desc())
    )
    assert (record.resident_id, record.terminal_id) == (people["hanako"].id, KIOSK)


def test_ticket_expires_and_garbage_is_refused(app, db, live, people, agents, card_copies):
    _link(db, card_copies["hanako"], people["hanako"])
    ticket = card_login(agents[KIOSK], live)[1]["ticket"]
    row = db.session.scalar(select(KioskSession).where(KioskSession.terminal_code == KIOSK))
    row.ticket_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    page = kiosk_page(app, KIOSK)
    expired = redeem(page, ticket)
    assert (expired.status_code, expired.get_json()["error"]["code"]) == (410, "ticket_expired")
    assert expired.get_json()["error"]["next"]  # says what to do next
    for bad in ("", "kt_" + "A" * 32, "c_something"):
        response = redeem(page, bad)
        assert (response.status_code, response.get_json()["error"]["code"]) == (404, "ticket_unknown")
    assert page.get("/kiosk/menu").status_code == 302


def test_removing_the_card_ends_the_session_at_once(app, db, live, people, agents, card_copies):
    _link(db, card_copies["hanako"], people["hanako"])
    page = kiosk_page(app, KIOSK)
    assert redeem(page, card_login(agents[KIOSK], live)[1]["ticket"]).status_code == 200
    assert page.get("/kiosk/menu").status_code == 200
    # the agent's event stream says card-removed; the page posts this and clears itself
    ended = page.post(
        "/kiosk/session/end", json={"reason": "card_removed"}, headers={"X-CSRFToken": page.csrf}
    )
    assert ended.get_json() == {"redirect": "/kiosk/?ended=card_removed"}
    row = db.session.scalar(select(KioskSession).where(KioskSession.terminal_code == KIOSK))
    db.session.refresh(row)
    assert row.end_reason == "card_removed" and row.ended_at is not None
    # the back button: the menu is gone, and the start screen says why
    back = page.get("/kiosk/menu")
    assert back.status_code == 302 and back.headers["Location"] == "/kiosk/"
    start = page.get("/kiosk/?ended=card_removed").get_data(as_text=True)
    assert "山田" not in start


def test_idle_timeout_and_absolute_limit_end_it_on_the_server(app, db, live, people, agents, card_copies):
    _link(db, card_copies["hanako"], people["hanako"])
    page = kiosk_page(app, KIOSK)
    assert redeem(page, card_login(agents[KIOSK], live)[1]["ticket"]).status_code == 200
    row = db.session.scalar(select(KioskSession).where(KioskSession.terminal_code == KIOSK))
    row.last_seen_at = utcnow() - timedelta(seconds=app.config["KIOSK_IDLE_SECONDS"] + 1)
    db.session.commit()
    idle = page.get("/kiosk/menu")
    assert idle.status_code == 302 and idle.headers["Location"] == "/kiosk/?ended=idle"
    db.session.refresh(row)
    assert row.end_reason == "idle"

    # a fresh login, then past the visit's absolute limit although never idle
    page = kiosk_page(app, KIOSK)
    assert redeem(page, card_login(agents[KIOSK], live)[1]["ticket"]).status_code == 200
    row = db.session.scalar(
        select(KioskSession).where(KioskSession.terminal_code == KIOSK, KioskSession.ended_at.is_(None))
    )
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert page.get("/kiosk/menu").headers["Location"] == "/kiosk/?ended=expired"


def test_another_residents_data_is_never_reachable(app, db, live, people, agents, card_copies):
    _link(db, card_copies["hanako"], people["hanako"])
    _link(db, card_copies["taro"], people["taro"])
    hanako_page = kiosk_page(app, KIOSK)
    assert redeem(hanako_page, card_login(agents[KIOSK], live)[1]["ticket"]).status_code == 200
    taro_page = kiosk_page(app, OTHER_KIOSK)
    assert redeem(taro_page, card_login(agents[OTHER_KIOSK], live)[1]["ticket"]).status_code == 200
    assert "鈴木" in taro_page.get("/kiosk/menu").get_data(as_text=True)

    # a page that names another terminal's open session gets nothing: sessions are bound to it
    hanako_id = db.session.scalar(
        select(KioskSession.id).where(KioskSession.terminal_code == KIOSK, KioskSession.ended_at.is_(None))
    )
    with taro_page.session_transaction() as cookie:
        cookie["kiosk_session"] = hanako_id
    assert taro_page.get("/kiosk/menu").status_code == 302

    # the next card login on a terminal ends the session still open there
    second = kiosk_page(app, KIOSK)
    assert redeem(second, card_login(agents[KIOSK], live)[1]["ticket"]).status_code == 200
    assert hanako_page.get("/kiosk/menu").headers["Location"] == "/kiosk/?ended=replaced"


def test_kiosk_login_only_from_a_kiosk_terminal(app, db, client, live, people, card_copies):
    _link(db, card_copies["hanako"], people["hanako"])
    key = signing.generate_key()
    cardid.add_terminal("counter-09", "counter", "窓口9番", "中央区役所", signing.public_key_pem(key))
    db.session.commit()
    run = start_agent(live, key, card_copies["hanako"], terminal="counter-09")
    try:
        status, answer = card_login(run, live)
        assert (status, answer["error"]["code"]) == (403, "wrong_terminal")
    finally:
        run.httpd.close()
    # and never from a browser
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/api/card/challenges", json={"purpose": "kiosk_login"}, headers={"X-CSRFToken": token}
    )
    assert (response.status_code, response.get_json()["error"]["code"]) == (403, "terminal_required")


def test_refusals_say_what_to_do_next(app, db, live, people, agents, card_copies):
    # not linked yet → link at the counter
    status, answer = card_login(agents[KIOSK], live)
    assert (status, answer["error"]["code"]) == (403, "card_not_linked")
    _link(db, card_copies["hanako"], people["hanako"])
    # wrong PINs count down; with one try left the agent refuses until the resident confirms
    assert card_login(agents[KIOSK], live, "0000")[1]["error"] == {
        "code": "wrong_pin",
        "message": "wrong PIN",
        "tries_left": 2,
        "pin": "auth",
    }
    assert card_login(agents[KIOSK], live, "0000")[1]["error"]["tries_left"] == 1
    assert card_login(agents[KIOSK], live)[1]["error"]["code"] == "last_try"
    status, answer = card_login(agents[KIOSK], live, allow_last_try=True)
    assert status == 200 and answer["ticket"]
    # the page's words for each failure, in Japanese by default
    page = kiosk_page(app, KIOSK)
    html = page.get("/kiosk/").get_data(as_text=True)
    for words in ("窓口", "ロック"):
        assert words in html


def test_an_expired_certificate_says_renew_at_the_counter(app, db, live, keys, cards, tmp_path):
    import datetime as dt

    from card.sim.profile import make_profile
    from portal.kiosk import messages

    old = make_profile(
        tmp_path / "old",
        name="山田　花子",
        birth="19850401",
        sex="2",
        auth_pin=CARD_AUTH_PIN,
        pki_dir=cards["pki"],
        not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=400),
        valid_days=30,
    )
    run = start_agent(live, keys[KIOSK], old.directory, terminal=KIOSK)
    try:
        status, answer = card_login(run, live)
    finally:
        run.httpd.close()
    assert (status, answer["error"]["code"]) == (403, "expired")
    with app.test_request_context():  # what the kiosk page shows for it, in Japanese
        title, step = (str(t) for t in messages.failure(answer["error"]["code"]))
    assert "有効期限" in title and "窓口で更新" in step


def test_a_sweep_ends_what_nobody_came_back_for(app, db, live, people, agents, card_copies):
    _link(db, card_copies["hanako"], people["hanako"])
    _link(db, card_copies["taro"], people["taro"])
    assert card_login(agents[KIOSK], live)[1]["ticket"]  # a ticket nobody redeems
    other = kiosk_page(app, OTHER_KIOSK)
    assert redeem(other, card_login(agents[OTHER_KIOSK], live)[1]["ticket"]).status_code == 200
    result = app.test_cli_runner().invoke(args=["kiosk", "sweep"])
    assert result.exit_code == 0 and result.output.startswith("0 ")  # nothing is stale yet
    from portal.kiosk import service

    later = utcnow() + timedelta(seconds=app.config["KIOSK_IDLE_SECONDS"] + 60)
    assert service.end_stale(later) == 2  # the unused ticket and the visit gone idle
    db.session.commit()
    assert all(r.ended_at is not None for r in db.session.scalars(select(KioskSession)))
    assert other.get("/kiosk/menu").status_code == 302


def test_the_agent_ends_the_session_when_the_card_goes_even_without_the_page(
    app, db, live, people, keys, card_copies, client
):
    import time

    from kiosk.agent.api import AgentServer
    from kiosk.agent.client import ServerClient
    from kiosk.agent.reader import SimBackend
    from kiosk.agent.service import Agent

    _link(db, card_copies["hanako"], people["hanako"])
    backend = SimBackend(card_copies["hanako"])
    agent = Agent(backend, ServerClient(live, KIOSK, keys[KIOSK]), poll_ms=20, report_removal=True).start()
    httpd = AgentServer(agent, 0).start()
    try:
        run = Running(agent, httpd, backend)
        page = kiosk_page(app, KIOSK)
        assert redeem(page, card_login(run, live)[1]["ticket"]).status_code == 200
        backend.remove()  # the page does nothing (it could be hung): the agent tells the server
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            db.session.expire_all()
            row = db.session.scalar(select(KioskSession).where(KioskSession.terminal_code == KIOSK))
            if row.ended_at is not None:
                break
            time.sleep(0.05)
        assert row.end_reason == "card_removed"
        assert page.get("/kiosk/menu").status_code == 302
    finally:
        httpd.close()
    # and nobody else can say so for a terminal
    unsigned = client.post("/api/kiosk/card-removed", json={}, headers={"X-Terminal-Id": KIOSK})
    assert unsigned.status_code == 401
    assert client.post("/api/kiosk/card-removed", json={}).status_code == 401


def test_appointment_check_in_from_the_menu_ends_the_card_session(app, db, live, people, agents, card_copies):
    from portal.booking.models import Office

    db.session.add_all(
        [
            Office(code="KITA", name_ja="北区役所", name_en="Kita Ward Office"),
            Office(code="CHUO", name_ja="中央区役所", name_en="Chuo Ward Office"),  # the kiosks' organisation
        ]
    )
    db.session.commit()
    _link(db, card_copies["hanako"], people["hanako"])
    page = kiosk_page(app, KIOSK)
    assert redeem(page, card_login(agents[KIOSK], live)[1]["ticket"]).status_code == 200
    menu = page.get("/kiosk/menu").get_data(as_text=True)
    assert 'id="menu-checkin"' in menu
    onward = page.post(
        "/kiosk/session/end", data={"csrf_token": page.csrf, "reason": "finished", "next": "checkin"}
    )
    assert onward.status_code == 302 and onward.headers["Location"] == "/visit/CHUO/kiosk"
    row = db.session.scalar(select(KioskSession).where(KioskSession.terminal_code == KIOSK))
    db.session.refresh(row)
    assert row.end_reason == "finished"
    assert page.get("/kiosk/menu").status_code == 302
    assert page.get("/visit/CHUO/kiosk").status_code == 200
