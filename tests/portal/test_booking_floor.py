"""On the day, on SQLite and PostgreSQL: calling order (booked within their window first), two
counters never call one ticket, recall / no-show / done, estimated wait, "your turn is near"
notices once, the kiosk check-in and walk-in pages, the ticket page, the calling board's
server-sent events, and the figures."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.booking import queue, service
from portal.booking.models import Booking, Office, Slot, Ticket
from portal.models_base import utcnow
from portal.notices.models import Delivery, Notice
from tests.factories import csrf_from, make_account, make_resident
from tests.portal.booking_fixtures import make_office, make_service


@pytest.fixture
def app_config():
    return {"BOOKING_SSE_SECONDS": 0, "BOOKING_SSE_POLL": 0.01, "RATELIMIT_ENABLED": False}


@pytest.fixture
def floor(app, db):
    svc = make_service(capacity=2, lead_hours=0)
    office = make_office(services=[svc], counters=2)
    db.session.commit()
    return svc, office


def slot_at(office, svc, starts_at) -> Slot:
    slot = Slot(
        office_id=office.id,
        service_id=svc.id,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=svc.duration_min),
        capacity=svc.capacity,
        booked=0,
    )
    service.db.session.add(slot)
    service.db.session.flush()
    return slot


def booked(office, svc, starts_at, *, given="花子") -> Booking:
    person = make_resident(given=given)
    account = make_account(resident=person)
    slot = slot_at(office, svc, starts_at)
    booking = service.book(
        resident_id=person.id, account_id=account.id, slot_id=slot.id, now=starts_at - timedelta(days=1)
    )
    service.db.session.commit()
    return booking


def test_booked_within_their_window_go_first(floor, db):
    svc, office = floor
    now = utcnow()
    walk1 = queue.walk_in(office, svc, now=now - timedelta(minutes=20))
    on_time = booked(office, svc, now + timedelta(minutes=5), given="予約")
    early = booked(office, svc, now + timedelta(hours=2), given="早い")
    t_on_time = queue.check_in(on_time, office=office, now=now - timedelta(minutes=3))
    t_early = queue.check_in(db.session.get(Booking, early.id), now=now - timedelta(minutes=2))
    walk2 = queue.walk_in(office, svc, now=now - timedelta(minutes=1))
    db.session.commit()
    order = [t.id for t in queue.waiting(office.id, service.today_in_tokyo(now), now)]
    # the booked resident whose time has come, then everybody by the time they took a number
    assert order == [t_on_time.id, walk1.id, t_early.id, walk2.id]
    assert db.session.get(Booking, on_time.id).status == "checked_in"
    assert queue.check_in(db.session.get(Booking, on_time.id), now=now).id == t_on_time.id  # twice: same


def test_a_late_arrival_loses_the_booked_priority(floor, db):
    svc, office = floor
    now = utcnow()
    late = booked(office, svc, now - timedelta(minutes=queue.LATE_MINUTES + 5))
    walk = queue.walk_in(office, svc, now=now - timedelta(minutes=10))
    ticket = queue.check_in(late, now=now)
    db.session.commit()
    assert ticket.window_start is None
    assert [t.id for t in queue.waiting(office.id, service.today_in_tokyo(now), now)] == [walk.id, ticket.id]


def test_check_in_refuses_another_day_another_office_and_cancelled(floor, db):
    svc, office = floor
    other = make_office(code="kita", services=[svc])
    now = utcnow()
    tomorrow = booked(office, svc, now + timedelta(days=1, hours=1))
    with pytest.raises(service.BookingError) as exc:
        queue.check_in(tomorrow, now=now)
    assert exc.value.code == "not_today"
    today = booked(office, svc, now + timedelta(minutes=30), given="別")
    with pytest.raises(service.BookingError) as exc:
        queue.check_in(today, office=other, now=now)
    assert exc.value.code == "other_office"
    service.cancel(today, now=now - timedelta(days=1))
    db.session.commit()
    with pytest.raises(service.BookingError) as exc:
        queue.check_in(db.session.get(Booking, today.id), now=now)
    assert exc.value.code == "not_active"


def test_call_recall_done_no_show_and_figures(floor, db):
    svc, office = floor
    c1, c2 = office.counters
    now = utcnow()
    b = booked(office, svc, now + timedelta(minutes=5))
    tb = queue.check_in(b, now=now - timedelta(minutes=4))
    walks = [queue.walk_in(office, svc, now=now - timedelta(minutes=3 - i)) for i in range(3)]
    db.session.commit()
    first = queue.call_next(c1, now=now)
    second = queue.call_next(c2, now=now)
    assert (first.id, second.id) == (tb.id, walks[0].id)  # two counters, two tickets
    state = queue.board(office, now=now)
    assert {row["number"] for row in state["called"]} == {tb.number, walks[0].number}
    assert state["waiting"] == 2
    queue.recall(second, now=now + timedelta(minutes=1))
    assert queue.board(office, now=now)["called"][0]["number"] == second.number  # a recall goes on top
    third = queue.call_next(c1, now=now + timedelta(minutes=12))  # c1's current one is done first
    assert third.id == walks[1].id
    assert db.session.get(Ticket, tb.id).status == "done"
    assert db.session.get(Booking, b.id).status == "done"
    queue.finish(db.session.get(Ticket, second.id), "no_show", now=now + timedelta(minutes=13))
    with pytest.raises(service.BookingError):
        queue.recall(db.session.get(Ticket, second.id))
    db.session.commit()
    numbers = queue.figures(office.id, service.today_in_tokyo(now), service.today_in_tokyo(now))
    assert numbers["tickets"] == 4 and numbers["booked_tickets"] == 1 and numbers["walk_ins"] == 3
    assert numbers["ticket_no_shows"] == 1
    assert numbers["service"]["n"] == 1 and numbers["service"]["mean"] == 12.0
    assert numbers["wait"]["n"] == 3
    assert numbers["bookings"]["done"] == 1


def test_estimated_wait_and_near_notices(floor, db):
    svc, office = floor
    now = utcnow()
    people = [booked(office, svc, now + timedelta(hours=3, minutes=i), given=f"人{i}") for i in range(6)]
    tickets = [queue.check_in(b, now=now) for b in people]
    db.session.commit()
    where = queue.position(tickets[4], now=now)
    # 4 ahead, 30 minutes each (the slot length, nothing done yet), 2 counters serve it
    assert (where.ahead, where.minutes) == (4, 60)
    near = queue.near_turn(office.id, now=now)
    db.session.commit()
    assert [t.id for t, _ in near] == [t.id for t in tickets[: queue.NEAR_AHEAD + 1]]
    assert queue.near_turn(office.id, now=now) == []  # once each
    from portal.booking import notify

    for ticket, ahead in near:
        notify.notify_near(ticket, ahead)
    titles = db.session.scalars(
        select(Notice.title_en)
        .join(Delivery, Delivery.notice_id == Notice.id)
        .where(Delivery.resident_id == tickets[0].resident_id)
    ).all()
    assert f"Your number {tickets[0].number} will be called soon" in titles


def test_kiosk_check_in_walk_in_ticket_page_and_board_events(client, floor, db):
    svc, office = floor
    now = utcnow()
    booking = booked(office, svc, now + timedelta(minutes=1))
    page = client.get(f"/visit/{office.code}/kiosk")
    assert page.status_code == 200
    token = csrf_from(page.get_data(as_text=True))
    wrong = client.post(
        f"/visit/{office.code}/kiosk/check-in", data={"reference": "NOPE", "csrf_token": token}
    )
    assert wrong.status_code == 404 and "could not find" not in wrong.get_data(as_text=True)  # Japanese page
    assert "予約が見つかりません" in wrong.get_data(as_text=True)
    typed = service.format_reference(booking.reference).lower()  # typed in lower case, with the hyphen
    resp = client.post(f"/visit/{office.code}/kiosk/check-in", data={"reference": typed, "csrf_token": token})
    assert resp.status_code == 200, resp.get_data(as_text=True)[:800]
    ticket = db.session.scalar(select(Ticket).where(Ticket.booking_id == booking.id))
    html = resp.get_data(as_text=True)
    assert f'id="ticket-number">{ticket.number}<' in html
    assert booking.resident_id and "花子" not in html  # no personal data on the kiosk
    walk = client.post(f"/visit/{office.code}/kiosk/walk-in", data={"service": svc.code, "csrf_token": token})
    assert walk.status_code == 200
    walk_ticket = db.session.scalar(select(Ticket).where(Ticket.booking_id.is_(None)))
    state = client.get(f"/t/{walk_ticket.token}.json").get_json()
    assert state["status"] == "waiting" and state["ahead"] == 1
    assert client.get(f"/t/{walk_ticket.token}").status_code == 200
    assert client.get("/t/not-a-token").status_code == 404

    queue.call_next(db.session.get(Office, office.id).counters[0])
    db.session.commit()
    events = client.get(f"/board/{office.code}/events")
    assert events.mimetype == "text/event-stream"
    body = events.get_data(as_text=True)
    data = [line[6:] for line in body.splitlines() if line.startswith("data: ")]
    board = json.loads(data[0])
    assert board["called"][0]["number"] == ticket.number and board["called"][0]["counter"] == 1
    assert board["waiting"] == 1
    assert client.get(f"/board/{office.code}").status_code == 200
    assert client.get("/board/nowhere").status_code == 404
