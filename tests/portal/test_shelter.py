"""Shelter check-in through the staff pages and the resident's family page, on SQLite and
PostgreSQL: opening a shelter (and its errors), check-in by register search and for a person not
registered, needs, the roster and head count, moving between shelters (one active stay), check-out,
what a family sees and another household does not, and the terminal API's refusals."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from portal.access.models import AccessRecord
from portal.shelter import service
from portal.shelter.models import DisasterEvent, Shelter, ShelterOpening, ShelterStay
from tests.factories import login_resident, login_staff, make_account, make_resident, make_staff, post_form


@pytest.fixture
def world(db):
    event = DisasterEvent(code="EV1", name_ja="台風第9号", name_en="Typhoon No. 9")
    gym = Shelter(
        code="S1", name_ja="中央小学校 体育館", name_en="Chuo gym", address_ja="みなと市中央区本町2丁目"
    )
    hall = Shelter(
        code="S2", name_ja="港町公民館", name_en="Minatomachi hall", address_ja="みなと市中央区港町1丁目"
    )
    db.session.add_all([event, gym, hall])
    db.session.flush()
    head = make_resident(family="山田", given="花子", birth=date(1980, 5, 1))
    child = make_resident(
        family="山田",
        given="蓮",
        given_kana="レン",
        birth=date(2015, 3, 3),
        household=head.household,
        relation="child",
    )
    stranger = make_resident(family="鈴木", given="一郎", family_kana="スズキ", given_kana="イチロウ", sex=1)
    staff = make_staff(roles=["shelter"], organisation="危機管理課")
    db.session.commit()
    return {
        "event": event,
        "gym": gym,
        "hall": hall,
        "head": head,
        "child": child,
        "stranger": stranger,
        "staff": staff,
    }


def _open(client, world, shelter: Shelter, capacity: str = "2"):
    return post_form(
        client,
        "/staff/shelter/open",
        {"event": world["event"].id, "shelter": shelter.id, "capacity": capacity},
        page="/staff/shelter/",
    )


def _roster_table(client, code: str) -> str:
    html = client.get(f"/staff/shelter/{code}/roster").get_data(as_text=True)
    start = html.find('<table id="roster">')
    return html[start : html.find("</table>", start)] if start >= 0 else ""


def _active(db, resident_id: int) -> list[ShelterStay]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(ShelterStay).where(ShelterStay.resident_id == resident_id, ShelterStay.status == "active")
        )
    )


def test_open_check_in_roster_move_and_check_out(client, db, world) -> None:
    login_staff(client, world["staff"])
    # a capacity that is not a number: a clear error, the choices kept
    bad = _open(client, world, world["gym"], capacity="many")
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400 and 'id="capacity-error"' in html and 'aria-invalid="true"' in html
    assert f'value="{world["gym"].id}" selected' in html
    assert _open(client, world, world["gym"]).status_code == 302
    assert _open(client, world, world["hall"], capacity="50").status_code == 302
    # opening the same shelter twice for one event is refused
    again = _open(client, world, world["gym"])
    assert again.status_code == 400 and 'id="shelter-error"' in again.get_data(as_text=True)
    gym = db.session.scalar(select(ShelterOpening).where(ShelterOpening.code == "EV1-S1"))

    # check in by hand: search the register (recorded), then check in
    page = client.get("/staff/shelter/EV1-S1/?q=やまだ").get_data(as_text=True)
    assert "山田 花子" in page and "鈴木" not in page
    searched = db.session.scalar(
        select(func.count()).where(
            AccessRecord.purpose == "shelter_checkin: search", AccessRecord.resident_id == world["head"].id
        )
    )
    assert searched == 1
    done = post_form(
        client,
        "/staff/shelter/EV1-S1/checkin",
        {"resident": world["head"].id, "allergy": "そば"},
        page="/staff/shelter/EV1-S1/?q=やまだ",
    )
    assert done.status_code == 302
    # the same person again at the same shelter: nothing new
    post_form(
        client, "/staff/shelter/EV1-S1/checkin", {"resident": world["head"].id}, page="/staff/shelter/EV1-S1/"
    )
    assert len(_active(db, world["head"].id)) == 1

    # a person not in the register: a name is required, nothing typed is lost
    missing = post_form(
        client,
        "/staff/shelter/EV1-S1/guest",
        {"name": " ", "note": "旅行者", "care": "車いす"},
        page="/staff/shelter/EV1-S1/",
    )
    html = missing.get_data(as_text=True)
    assert missing.status_code == 400 and 'id="name-error"' in html and "旅行者" in html and "車いす" in html
    post_form(
        client,
        "/staff/shelter/EV1-S1/guest",
        {"name": "John Smith", "care": "車いす"},
        page="/staff/shelter/EV1-S1/",
    )

    # the roster: head count against capacity, needs, one access record per registered person
    roster = client.get("/staff/shelter/EV1-S1/roster").get_data(as_text=True)
    assert 'data-count="2" data-capacity="2"' in roster
    assert "そば" in roster and "車いす" in roster and "John Smith" in roster and "山田 花子" in roster
    assert db.session.scalar(
        select(func.count()).where(
            AccessRecord.purpose == "shelter_roster", AccessRecord.resident_id == world["head"].id
        )
    )
    opened = {o.code: service.head_counts([o.id]).get(o.id, 0) for o in service.open_openings()}
    assert opened == {"EV1-S1": 2, "EV1-S2": 0}

    # move to the hall: one active stay, at the hall, with the needs carried along
    stay = _active(db, world["head"].id)[0]
    moved = post_form(
        client,
        f"/staff/shelter/stays/{stay.id}/move",
        {"target": "EV1-S2"},
        page=f"/staff/shelter/stays/{stay.id}",
    )
    assert moved.status_code == 302
    active = _active(db, world["head"].id)
    assert len(active) == 1 and active[0].opening.code == "EV1-S2" and active[0].allergy == "そば"
    old = db.session.get(ShelterStay, stay.id)
    assert (old.status, old.moved_to_id) == ("moved", active[0].id)
    assert "山田 花子" not in _roster_table(client, "EV1-S1")
    assert "山田 花子" in _roster_table(client, "EV1-S2")

    # check out
    post_form(
        client,
        f"/staff/shelter/stays/{active[0].id}/checkout",
        {},
        page=f"/staff/shelter/stays/{active[0].id}",
    )
    assert _active(db, world["head"].id) == []
    assert service.head_counts([gym.id]).get(gym.id, 0) == 1  # the guest is still there


def test_family_sees_the_check_in_and_another_household_does_not(app, db, world) -> None:
    opening = service.open_shelter(world["event"], world["gym"], 100, by="test")
    actor = service.access.Actor(kind="staff", id="s1", role="shelter", organisation="危機管理課")
    service.check_in(opening, resident=world["child"], method="hand", actor=actor)
    parent = make_account(resident=world["head"])
    other = make_account(resident=world["stranger"])
    db.session.commit()

    family = app.test_client()
    login_resident(family, parent)
    page = family.get("/me/shelter").get_data(as_text=True)
    assert "山田 蓮" in page and "中央小学校 体育館" in page
    record = db.session.scalar(
        select(AccessRecord).where(
            AccessRecord.purpose == "shelter_family", AccessRecord.resident_id == world["child"].id
        )
    )
    assert record is not None and record.actor_kind == "resident"
    # the child's access history shows the family's look; the parent's own row is not recorded
    assert not db.session.scalar(
        select(func.count()).where(
            AccessRecord.purpose == "shelter_family", AccessRecord.resident_id == world["head"].id
        )
    )

    outsider = app.test_client()
    login_resident(outsider, other)
    page = outsider.get("/me/shelter").get_data(as_text=True)
    assert "鈴木 一郎" in page
    assert "山田" not in page and "中央小学校" not in page
    # staff pages are closed to residents
    assert outsider.get("/staff/shelter/EV1-S1/roster").status_code in (302, 403)


def test_moving_keeps_one_active_stay_whatever_the_order(db, world) -> None:
    """A check-in synced late from a terminal's queue (older than the current stay) becomes
    history; a newer one moves the person."""
    from datetime import timedelta

    from portal.models_base import utcnow

    gym = service.open_shelter(world["event"], world["gym"], 100, by="test")
    hall = service.open_shelter(world["event"], world["hall"], 100, by="test")
    actor = service.access.Actor(kind="staff", id="s1", role="shelter", organisation="危機管理課")
    now = utcnow()
    service.check_in(hall, resident=world["head"], method="hand", actor=actor, at=now)
    late, moved_from = service.check_in(
        gym, resident=world["head"], method="card", actor=actor, at=now - timedelta(hours=1)
    )
    db.session.commit()
    assert moved_from is None and late.status == "moved"
    active = _active(db, world["head"].id)
    assert [s.opening.code for s in active] == ["EV1-S2"]
    _newer, moved_from = service.check_in(
        gym, resident=world["head"], method="card", actor=actor, at=now + timedelta(minutes=5)
    )
    db.session.commit()
    assert moved_from is not None and moved_from.opening.code == "EV1-S2"
    assert [s.opening.code for s in _active(db, world["head"].id)] == ["EV1-S1"]


def test_the_api_takes_only_signed_shelter_terminals(app, db, world) -> None:
    from kiosk.agent import signing
    from kiosk.agent.signing import sign_request
    from portal.cardid import service as cardid

    anonymous = app.test_client().post("/api/shelter/checkins", json={"entries": []})
    assert anonymous.status_code == 401 and anonymous.get_json()["error"]["code"] == "terminal_required"
    key = signing.generate_key()
    cardid.add_terminal("lib-1", "library", "図書館", "図書館", signing.public_key_pem(key))
    db.session.commit()
    body = b'{"entries":[{"uuid":"x"}]}'
    import time

    headers = sign_request(key, "lib-1", "POST", "/api/shelter/checkins", body, int(time.time()))
    answer = app.test_client().post(
        "/api/shelter/checkins", data=body, headers={**headers, "Content-Type": "application/json"}
    )
    assert answer.status_code == 403 and answer.get_json()["error"]["code"] == "wrong_terminal"
