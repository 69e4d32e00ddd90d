"""The library link and shelter check-in through the terminal agent (in-memory virtual cards)
against the REAL portal served on 127.0.0.1, on SQLite and PostgreSQL.

Library: staff link a card to a patron number (the resident types the PIN), a card look-up
answers the patron number and nothing else, the link follows a renewed certificate, and the
resident removes it in the portal. Shelter: check-in with a linked card, with a card not linked
(basic 4 information from the text AP, matched to the register or recorded as not registered),
moves, and check-ins queued while the server is unreachable, synced twice: one record each."""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from card import offline
from card.sim.profile import Profile, renew_certificate
from kiosk.agent import signing
from kiosk.agent.client import ServerUnreachableError
from kiosk.agent.outbox import Outbox
from kiosk.agent.shelter import KIND, ShelterDesk
from portal.access.models import AccessRecord
from portal.access.service import Actor
from portal.cardid import service as cardid
from portal.cardid.models import CardCredential
from portal.library.models import Library, LibraryLink
from portal.shelter import service as shelters
from portal.shelter.models import DisasterEvent, Shelter, ShelterStay
from portal.vault import service as vault
from tests.factories import (
    CARD_AUTH_PIN,
    csrf_from,
    fake_number,
    login_resident,
    login_staff,
    make_account,
    make_cards,
    make_resident,
    make_staff,
    post_form,
)

from .conftest import Running, start_agent

PIN = CARD_AUTH_PIN
LIBRARY_TERMINAL = "library-01"
SHELTER_TERMINAL = "shelter-01"
PEOPLE = {
    "hanako": ("山田　花子", "ヤマダ　ハナコ", "19850401", "2", 81),
    "ichiro": ("鈴木　一郎", "スズキ　イチロウ", "19700101", "1", 82),
    "visitor": ("旅人　太郎", "タビビト　タロウ", "19900909", "1", 83),
}


@pytest.fixture(scope="module")
def cards(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return make_cards(tmp_path_factory.mktemp("library-shelter-cards"), PEOPLE)


@pytest.fixture
def app_config(cards: dict) -> dict:
    pki = cards["pki"]
    return {
        "CARD_TRUST_DIR": str(pki),
        "CARD_CRL_FILES": (str(pki / "auth_crl.der"), str(pki / "sign_crl.der")),
        "RATELIMIT_ENABLED": False,
    }


def copy_card(cards: dict, who: str, tmp_path: Path) -> Path:
    target = tmp_path / who
    if not target.exists():
        shutil.copytree(cards[who], target)
    return target


def link_card(card_dir: Path, resident) -> CardCredential:
    """What the counter's identity proofing leaves behind: the auth certificate linked to the
    resident (cardid's own linking, which supersedes the resident's earlier cards)."""
    verified = cardid.verify_certificate_only(Profile.load(card_dir).certificate("auth"))
    actor = Actor(
        kind="terminal", id="counter-01", role="counter", organisation="市民課", terminal_id="counter-01"
    )
    return cardid._link(verified, resident, via="text_ap", actor=actor)


def terminal(db, code: str, kind: str) -> Ed25519PrivateKey:
    key = signing.generate_key()
    cardid.add_terminal(code, kind, code, "みなと市", signing.public_key_pem(key))
    db.session.commit()
    return key


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


# -- library -----------------------------------------------------------------------------------------
@pytest.fixture
def library_desk(app, db, live, cards, tmp_path):
    person = make_resident(birth=date(1985, 4, 1), sex=2)
    vault.store(person.id, fake_number(81))
    db.session.add(Library(code="LIB", name_ja="みなと市立図書館", name_en="Minato City Library"))
    card = copy_card(cards, "hanako", tmp_path)
    link_card(card, person)
    key = terminal(db, LIBRARY_TERMINAL, "library")
    clerk = make_staff(roles=["library"], organisation="中央図書館")
    db.session.commit()
    client = app.test_client()
    login_staff(client, clerk)
    assert (
        post_form(client, "/staff/library/card", {"library": "LIB", "terminal": LIBRARY_TERMINAL}).status_code
        == 302
    )
    return {"person": person, "card": card, "key": key, "client": client}


def library_card(
    desk: dict, live: str, purpose: str, patron: str = "", card: Path | None = None
) -> tuple[int, dict]:
    """What static/js/library.js does: a challenge for this desk, the agent signs it, the page polls."""
    client = desk["client"]
    token = csrf_from(client.get("/staff/library/card").get_data(as_text=True))
    made = client.post(
        "/staff/library/challenges",
        json={"purpose": purpose, "patron_number": patron},
        headers={"X-CSRFToken": token},
    )
    if made.status_code != 201:
        return made.status_code, made.get_json()
    ch = made.get_json()
    run = start_agent(live, desk["key"], card or desk["card"], terminal=LIBRARY_TERMINAL)
    try:
        status, _, answer = run.call(
            "POST",
            "/login",
            {"purpose": purpose, "challenge": ch["id"], "message": ch["message"], "pin": PIN},
            origin=live,
        )
    finally:
        run.httpd.close()
    if status != 200:
        return status, answer
    polled = client.get(ch["status_url"]).get_json()
    if polled["status"] != "done":
        return 409, polled
    page = client.get(polled["redirect"])
    return page.status_code, {"html": page.get_data(as_text=True)}


def _main(html: str) -> str:
    return html[html.index('<main id="main">') : html.index("</main>")]


def test_library_link_then_lookup_gives_only_the_patron_number(app, db, live, library_desk) -> None:
    desk, person = library_desk, library_desk["person"]
    # a patron number that cannot be one: a clear error before the card is used
    status, answer = library_card(desk, live, "library_link", patron="12")
    assert status == 400 and answer["error"]["code"] == "patron_format" and answer["error"]["message"]

    status, page = library_card(desk, live, "library_link", patron="0012-3456")
    assert status == 200, page
    assert "00123456" in page["html"]
    status, page = library_card(desk, live, "library_lookup")
    assert status == 200, page
    main = _main(page["html"])
    assert 'id="patron-number" class="code">00123456<' in main
    # nothing else of the resident: no name, kana, address, birth date, and never the number
    for leak in ("山田", "花子", "ヤマダ", "本町", "1985", "昭和", fake_number(81), "宛名", person.atena_no):
        assert leak not in main, leak
    db.session.expire_all()
    purposes = db.session.scalars(
        select(AccessRecord.purpose).where(
            AccessRecord.resident_id == person.id, AccessRecord.terminal_id == LIBRARY_TERMINAL
        )
    ).all()
    assert purposes == ["library_link", "library_lookup"]


def test_the_link_follows_a_renewed_certificate_and_the_resident_removes_it(
    app, db, live, library_desk
) -> None:
    desk, person = library_desk, library_desk["person"]
    assert library_card(desk, live, "library_link", patron="A1234567")[0] == 200
    first = db.session.scalar(select(LibraryLink)).credential_id
    # the certificate is renewed and the card linked again at a counter (the old one superseded)
    renew_certificate(desk["card"])
    renewed = link_card(desk["card"], person)
    db.session.commit()
    assert db.session.get(CardCredential, first).status == "superseded"
    status, page = library_card(desk, live, "library_lookup")
    assert status == 200 and "A1234567" in _main(page["html"])
    db.session.expire_all()
    link = db.session.scalar(select(LibraryLink))
    assert (link.credential_id, link.relinked_at is not None) == (renewed.id, True)

    # the resident sees the link in the portal and removes it
    account = make_account(resident=person)
    db.session.commit()
    resident = app.test_client()
    login_resident(resident, account)
    mine = resident.get("/me/library").get_data(as_text=True)
    assert "A1234567" in mine and "みなと市立図書館" in mine
    removed = post_form(resident, f"/me/library/{link.id}/remove", {}, page="/me/library")
    assert removed.status_code == 302
    assert "A1234567" not in resident.get("/me/library").get_data(as_text=True)
    status, page = library_card(desk, live, "library_lookup")
    assert status == 404 and "A1234567" not in page["html"]


def test_a_card_not_linked_to_a_resident_finds_nothing(app, db, live, library_desk, cards, tmp_path) -> None:
    stranger = copy_card(cards, "visitor", tmp_path)
    status, answer = library_card(library_desk, live, "library_lookup", card=stranger)
    assert (status, answer["error"]["code"]) == (403, "card_not_linked")


# -- shelter -----------------------------------------------------------------------------------------
@pytest.fixture
def shelter_world(db):
    event = DisasterEvent(code="EV", name_ja="豪雨", name_en="Heavy rain")
    gym = Shelter(code="GYM", name_ja="中央小学校 体育館", name_en="Chuo gym", address_ja="みなと市中央区")
    hall = Shelter(code="HALL", name_ja="港町公民館", name_en="Minatomachi hall", address_ja="みなと市中央区")
    db.session.add_all([event, gym, hall])
    db.session.flush()
    shelters.open_shelter(event, gym, 50, by="test")
    shelters.open_shelter(event, hall, 50, by="test")
    hanako = make_resident(birth=date(1985, 4, 1), sex=2)
    ichiro = make_resident(
        family="鈴木",
        given="一郎",
        family_kana="スズキ",
        given_kana="イチロウ",
        birth=date(1970, 1, 1),
        sex=1,
    )
    key = terminal(db, SHELTER_TERMINAL, "shelter")
    return {"hanako": hanako, "ichiro": ichiro, "key": key}


class Tablet:
    """The shelter's tablet: an agent with the shelter desk, one card at a time, one queue file."""

    def __init__(self, live: str, key: Ed25519PrivateKey, queue: Path) -> None:
        self.live, self.key, self.queue = live, key, queue
        self.run: Running | None = None
        self.desk: ShelterDesk | None = None

    def card(self, card_dir: Path) -> Tablet:
        self.close()
        self.run = start_agent(self.live, self.key, card_dir, terminal=SHELTER_TERMINAL)
        self.desk = ShelterDesk(self.run.agent, Outbox(self.queue), sync_seconds=0)
        self.run.httpd.extra_routes.update(self.desk.routes())
        return self

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        assert self.run is not None
        status, headers, answer = self.run.call(method, path, body, origin=self.live)
        assert headers.get("access-control-allow-origin") == self.live
        return status, answer

    def checkin(self, shelter: str, method: str = "card", pin: str = PIN) -> tuple[int, dict]:
        return self.call("POST", "/shelter/checkin", {"shelter": shelter, "pin": pin, "method": method})

    def offline(self, down: bool = True) -> None:
        assert self.run is not None
        self.run.agent.client.base = dead_url() if down else self.live

    def close(self) -> None:
        if self.run is not None:
            self.run.httpd.close()
            assert self.desk is not None
            self.desk.close()
            self.run = self.desk = None


@pytest.fixture
def tablet(live, shelter_world, tmp_path) -> Iterator[Tablet]:
    t = Tablet(live, shelter_world["key"], tmp_path / "agent-state" / "outbox.sqlite3")
    try:
        yield t
    finally:
        t.close()


def _stays(db) -> list[ShelterStay]:
    db.session.expire_all()
    return list(db.session.scalars(select(ShelterStay).order_by(ShelterStay.id)))


def test_card_check_in_online_and_a_move(db, live, cards, tmp_path, shelter_world, tablet, caplog) -> None:
    card = copy_card(cards, "hanako", tmp_path)
    link_card(card, shelter_world["hanako"])
    db.session.commit()
    tablet.card(card)
    status, answer = tablet.checkin("EV-GYM")
    assert status == 200, answer
    assert (answer["status"], answer["name"], answer["matched"], answer["method"]) == (
        "created",
        "山田 花子",
        True,
        "card",
    )
    # the same card again at the same shelter: still one stay
    status, answer = tablet.checkin("EV-GYM")
    assert (status, answer["status"]) == (200, "already_here")
    # at the other shelter: a move
    status, answer = tablet.checkin("EV-HALL")
    assert (answer["status"], answer["moved_from"]) == ("created", "EV-GYM")
    stays = _stays(db)
    assert [(s.opening.code, s.status) for s in stays] == [("EV-GYM", "moved"), ("EV-HALL", "active")]
    record = db.session.scalar(
        select(AccessRecord)
        .where(AccessRecord.purpose == "shelter_checkin: card")
        .order_by(AccessRecord.id.desc())
    )
    assert (record.resident_id, record.terminal_id) == (shelter_world["hanako"].id, SHELTER_TERMINAL)
    # a wrong PIN stops at the card; nothing is recorded or queued
    status, answer = tablet.checkin("EV-GYM", pin="0000")
    assert (status, answer["error"]["code"], answer["error"]["tries_left"]) == (400, "wrong_pin", 2)
    assert len(_stays(db)) == 2 and tablet.call("GET", "/shelter/queue")[1]["waiting"] == 0
    assert "0000" not in caplog.text and PIN not in caplog.text


def test_a_card_not_linked_uses_the_basic_4_information(
    db, live, cards, tmp_path, shelter_world, tablet
) -> None:
    tablet.card(copy_card(cards, "ichiro", tmp_path))
    status, answer = tablet.checkin("EV-GYM")
    assert (status, answer["error"]["code"]) == (403, "card_not_linked") and answer["error"]["message"]
    status, answer = tablet.checkin("EV-GYM", method="text_ap")
    assert (answer["status"], answer["name"], answer["matched"], answer["method"]) == (
        "created",
        "鈴木 一郎",
        True,
        "text_ap",
    )
    # a visitor from another city: checked in with the name on the card, marked not registered
    tablet.card(copy_card(cards, "visitor", tmp_path))
    status, answer = tablet.checkin("EV-GYM", method="text_ap")
    assert (answer["status"], answer["matched"], answer["name"]) == ("created", False, "旅人　太郎")
    guest = _stays(db)[-1]
    assert guest.resident_id is None and guest.guest_name == "旅人　太郎"
    # an unknown shelter is refused with a message for the page
    status, answer = tablet.checkin("EV-NOWHERE", method="text_ap")
    assert (status, answer["error"]["code"]) == (400, "shelter_unknown")


def test_offline_shelter_check_ins_synced_twice_give_one_record_each(
    db, live, cards, tmp_path, shelter_world, tablet
) -> None:
    hanako = copy_card(cards, "hanako", tmp_path)
    link_card(hanako, shelter_world["hanako"])
    db.session.commit()
    # the network is down: three evacuees check in; the agent queues each entry
    uuids = []
    for who in ("hanako", "ichiro", "visitor"):
        tablet.card(copy_card(cards, who, tmp_path))
        tablet.offline()
        status, answer = tablet.checkin("EV-GYM")
        assert (status, answer["status"]) == (200, "queued"), answer
        uuids.append(answer["uuid"])
    assert tablet.call("GET", "/shelter/queue")[1] == {"waiting": 3, "refused": 0}
    assert _stays(db) == []
    # the queue survives a restart of the agent (a new process opens the same file)
    tablet.card(hanako)
    saved = Outbox(tablet.queue).pending(KIND)
    assert [e["uuid"] for e in saved] == uuids and all(e["offline"] for e in saved)
    assert all("basic4" in e for e in saved) and not any("my_number" in json.dumps(e) for e in saved)

    # back online, but the server's answer is lost on the way back: the entries stay queued
    assert tablet.run is not None
    client = tablet.run.agent.client
    real_post = client.post

    def answer_lost(path, payload):
        real_post(path, payload)
        raise ServerUnreachableError("connection reset")

    client.post = answer_lost  # type: ignore[method-assign]
    status, answer = tablet.call("POST", "/shelter/sync", {})
    assert (status, answer["status"], answer["waiting"]) == (200, "offline", 3)
    assert len(_stays(db)) == 3
    # the second sync: the server already has them, one record each; the queue empties
    client.post = real_post  # type: ignore[method-assign]
    status, answer = tablet.call("POST", "/shelter/sync", {})
    assert (answer["status"], answer["created"], answer["duplicate"], answer["waiting"]) == (
        "synced",
        0,
        3,
        0,
    )
    # and a copy of the old queue sent once more changes nothing either
    again = client.post("/api/shelter/checkins", {"entries": saved})
    assert [r["status"] for r in again["results"]] == ["duplicate"] * 3

    stays = _stays(db)
    assert sorted(s.uuid for s in stays) == sorted(uuids)
    assert db.session.scalar(select(func.count(func.distinct(ShelterStay.uuid)))) == 3
    by_uuid = {s.uuid: s for s in stays}
    assert by_uuid[uuids[0]].resident_id == shelter_world["hanako"].id and by_uuid[uuids[0]].method == "card"
    assert (
        by_uuid[uuids[1]].resident_id == shelter_world["ichiro"].id and by_uuid[uuids[1]].method == "text_ap"
    )
    assert by_uuid[uuids[2]].resident_id is None and by_uuid[uuids[2]].guest_name == "旅人　太郎"
    assert all(s.offline and s.status == "active" for s in stays)
    # the check-in time is when the card was read, not when it was synced
    assert all(s.checked_in_at <= s.recorded_at for s in stays)


def test_a_changed_or_stale_queued_entry_is_refused(db, live, cards, tmp_path, shelter_world, tablet) -> None:
    hanako = copy_card(cards, "hanako", tmp_path)
    link_card(hanako, shelter_world["hanako"])
    db.session.commit()
    tablet.card(hanako)
    tablet.offline()
    assert tablet.checkin("EV-GYM")[1]["status"] == "queued"
    tablet.offline(False)
    entry = Outbox(tablet.queue).pending(KIND)[0]
    assert tablet.run is not None
    client = tablet.run.agent.client
    # someone edits the queue file: another shelter → the terminal's signature no longer holds
    changed = {**entry, "shelter": "EV-HALL"}
    assert (
        client.post("/api/shelter/checkins", {"entries": [changed]})["results"][0]["code"]
        == "entry_signature"
    )
    # re-signed by the terminal, the card's signature (over the shelter and time) still refuses it
    resigned = offline.sign_entry(client.key, {k: v for k, v in changed.items() if k != "basic4"})
    assert (
        client.post("/api/shelter/checkins", {"entries": [resigned]})["results"][0]["code"] == "bad_signature"
    )
    # an entry days old (a terminal left offline too long) is refused: check the person in by hand
    stale = offline.sign_entry(
        client.key,
        {**{k: v for k, v in entry.items() if k != "entry_signature"}, "at": int(time.time()) - 4 * 86400},
    )
    assert client.post("/api/shelter/checkins", {"entries": [stale]})["results"][0]["code"] == "entry_too_old"
    assert _stays(db) == []
    # the genuine entry still syncs
    _status, answer = tablet.call("POST", "/shelter/sync", {})
    assert (answer["created"], answer["waiting"]) == (1, 0)
