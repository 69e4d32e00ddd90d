"""Booking rules on SQLite and PostgreSQL: closed days (national holidays, 29 Dec–3 Jan, weekends,
ad-hoc closures), lead time and horizon, no overbooking by the database, one booking per resident
and slot, the nearest free slots when taken, cut-off for cancel and reschedule, the .ics file
parsed back, the reminder once per booking."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError

from portal.booking import notify, service
from portal.booking.models import Booking, Slot
from portal.notices.models import Delivery, Notice
from tests.factories import make_account, make_resident
from tests.portal.booking_fixtures import MONDAY_9, make_office, make_service


@pytest.fixture
def city(db):
    svc = make_service(capacity=2)
    office = make_office(services=[svc])
    person = make_resident()
    account = make_account(resident=person)
    db.session.commit()
    return svc, office, person, account


def _slots_on(office, svc, day: date) -> list[Slot]:
    start, end = service.day_bounds(day)
    return list(
        service.db.session.scalars(
            select(Slot)
            .where(
                Slot.office_id == office.id,
                Slot.service_id == svc.id,
                Slot.starts_at >= start,
                Slot.starts_at < end,
            )
            .order_by(Slot.starts_at)
        )
    )


def test_closed_days_follow_holidays_year_end_weekends_and_closures(city, db):
    svc, office, _, _ = city
    assert service.closed_reason(office.id, date(2026, 11, 23)) == "holiday:勤労感謝の日"
    assert service.closed_reason(office.id, date(2027, 1, 11)) == "holiday:成人の日"
    for day in (date(2026, 12, 29), date(2026, 12, 31), date(2027, 1, 1), date(2027, 1, 3)):
        assert service.closed_reason(office.id, day) in ("year_end", "holiday:元日"), day
    assert service.closed_reason(office.id, date(2026, 12, 28)) is None  # Monday, open
    assert service.closed_reason(office.id, date(2027, 1, 4)) is None  # Monday, open again
    assert service.closed_reason(office.id, date(2026, 11, 21)) == "weekday"  # Saturday

    service.ensure_slots(date(2027, 1, 12), now=MONDAY_9)
    assert _slots_on(office, svc, date(2026, 11, 23)) == []
    assert _slots_on(office, svc, date(2026, 12, 30)) == []
    assert _slots_on(office, svc, date(2027, 1, 11)) == []
    assert _slots_on(office, svc, date(2026, 11, 21)) == []
    monday = _slots_on(office, svc, date(2026, 11, 30))
    # 08:30 to 17:15 in 30-minute slots: 17 slots, the first at 08:30 Tokyo.
    assert len(monday) == 17
    assert service.tokyo(monday[0].starts_at).strftime("%H:%M") == "08:30"
    assert service.tokyo(monday[-1].ends_at).strftime("%H:%M") == "17:00"


def test_an_adhoc_closure_closes_slots_lists_bookings_and_reopens(city, db):
    svc, office, person, account = city
    day = date(2026, 11, 26)
    slot = _free(svc, office, day)
    booking = service.book(resident_id=person.id, account_id=account.id, slot_id=slot.id, now=MONDAY_9)
    db.session.commit()
    affected = service.add_closure(office.id, day, "停電", "Power cut", by="admin1")
    db.session.commit()
    assert [b.id for b in affected] == [booking.id]
    assert service.closed_reason(office.id, day) == "closure:停電"
    assert service.search(svc, on=day, days=1, now=MONDAY_9) == []
    other = make_resident(given="次郎")
    db.session.commit()
    with pytest.raises(service.SlotTaken):
        service.book(resident_id=other.id, slot_id=_slots_on(office, svc, day)[3].id, now=MONDAY_9)
    with pytest.raises(service.BookingError) as exc:
        service.add_closure(office.id, day, "停電", "Power cut", by="admin1")
    assert exc.value.code == "closure_exists"
    db.session.rollback()
    closure = db.session.scalar(select(service.Closure).where(service.Closure.day == day))
    service.remove_closure(closure)
    db.session.commit()
    assert len(service.search(svc, on=day, days=1, now=MONDAY_9)) == 17


def _free(svc, office, day: date) -> Slot:
    found = service.search(svc, office_id=office.id, on=day, days=1, now=MONDAY_9)
    assert found, f"no free slot on {day}"
    return found[0]


def test_lead_time_and_horizon(city, db):
    svc, office, person, _ = city
    service.ensure_slots(date(2027, 2, 1), now=MONDAY_9)
    today = _slots_on(office, svc, date(2026, 11, 16))
    # 09:00 now, 2 hours' lead: 09:00–10:30 slots are too soon, 11:00 is the first bookable one.
    found = service.search(svc, on=date(2026, 11, 16), days=1, now=MONDAY_9)
    assert service.tokyo(found[0].starts_at).strftime("%H:%M") == "11:00"
    with pytest.raises(service.BookingError) as exc:
        service.book(resident_id=person.id, slot_id=today[3].id, now=MONDAY_9)  # 10:00
    assert exc.value.code == "too_soon"
    # The horizon is 60 days: up to Friday 15 January 2027, not Monday 18 January.
    assert service.search(svc, on=date(2027, 1, 15), days=1, now=MONDAY_9)
    assert service.search(svc, on=date(2027, 1, 18), days=1, now=MONDAY_9) == []
    service.materialise(office, date(2027, 1, 20), start=date(2027, 1, 18))  # made ahead by hand
    db.session.commit()
    beyond = _slots_on(office, svc, date(2027, 1, 18))
    assert beyond
    with pytest.raises(service.BookingError) as exc:
        service.book(resident_id=person.id, slot_id=beyond[0].id, now=MONDAY_9)
    assert exc.value.code == "too_far"


def test_the_database_refuses_overbooking_even_without_the_service(city, db):
    svc, office, _, _ = city
    slot = _free(svc, office, date(2026, 11, 17))
    with pytest.raises(IntegrityError):
        db.session.execute(update(Slot).where(Slot.id == slot.id).values(booked=Slot.capacity + 1))
        db.session.flush()
    db.session.rollback()


def test_full_slot_is_taken_with_the_nearest_free_slots(city, db):
    svc, office, _, _ = city
    slot = _free(svc, office, date(2026, 11, 18))
    others = [make_resident(given=f"人{i}") for i in range(3)]
    db.session.commit()
    for who in others[:2]:
        service.book(resident_id=who.id, slot_id=slot.id, now=MONDAY_9)
        db.session.commit()
    with pytest.raises(service.SlotTaken) as exc:
        service.book(resident_id=others[2].id, slot_id=slot.id, now=MONDAY_9)
    nearest = exc.value.nearest
    assert len(nearest) == service.NEAREST
    assert slot.id not in [s.id for s in nearest]
    assert all(s.booked < s.capacity and s.office_id == office.id for s in nearest)
    gaps = sorted(abs((s.starts_at - slot.starts_at).total_seconds()) for s in nearest)
    assert gaps[0] == 30 * 60  # the very next (or previous) half hour
    db.session.rollback()
    assert db.session.get(Slot, slot.id).booked == 2
    assert db.session.scalar(select(func.count()).select_from(Booking)) == 2


def test_one_resident_cannot_hold_a_slot_twice_but_may_rebook_after_cancelling(city, db):
    svc, office, person, _ = city
    slot = _free(svc, office, date(2026, 11, 19))
    first = service.book(resident_id=person.id, slot_id=slot.id, now=MONDAY_9)
    db.session.commit()
    with pytest.raises(service.BookingError) as exc:
        service.book(resident_id=person.id, slot_id=slot.id, now=MONDAY_9)
    assert exc.value.code == "already_booked"
    assert db.session.get(Slot, slot.id).booked == 1  # the failed attempt took no seat
    service.cancel(db.session.get(Booking, first.id), now=MONDAY_9)
    db.session.commit()
    assert db.session.get(Slot, slot.id).booked == 0
    again = service.book(resident_id=person.id, slot_id=slot.id, now=MONDAY_9)
    db.session.commit()
    assert again.id != first.id and db.session.get(Slot, slot.id).booked == 1


def test_cutoff_for_cancel_and_reschedule(city, db):
    svc, office, person, _ = city
    slot = _free(svc, office, date(2026, 11, 20))  # Friday 08:30 Tokyo = Thursday 23:30 UTC
    booking = service.book(resident_id=person.id, slot_id=slot.id, now=MONDAY_9)
    db.session.commit()
    before = slot.starts_at - timedelta(hours=24, minutes=1)
    after = slot.starts_at - timedelta(hours=23, minutes=59)
    assert service.can_change(booking, before) and not service.can_change(booking, after)
    later = _free(svc, office, date(2026, 11, 24))
    with pytest.raises(service.BookingError) as exc:
        service.reschedule(booking, later.id, now=after)
    assert exc.value.code == "cutoff"
    with pytest.raises(service.BookingError) as exc:
        service.cancel(booking, now=after)
    assert exc.value.code == "cutoff"
    db.session.rollback()
    booking = db.session.get(Booking, booking.id)
    moved = service.reschedule(booking, later.id, now=before)
    db.session.commit()
    assert moved.slot_id == later.id and moved.sequence == 1
    assert db.session.get(Slot, slot.id).booked == 0 and db.session.get(Slot, later.id).booked == 1
    # Staff may still cancel after the cut-off (the resident phoned).
    service.cancel(moved, now=later.starts_at - timedelta(hours=1), by_staff=True)
    db.session.commit()
    assert db.session.get(Slot, later.id).booked == 0


def test_ics_parses_back_with_icalendar(city, db, app):
    svc, office, person, _ = city
    slot = _free(svc, office, date(2026, 11, 25))
    booking = service.book(resident_id=person.id, slot_id=slot.id, now=MONDAY_9)
    db.session.commit()
    cal = Calendar.from_ical(notify.ics(booking))
    assert str(cal["method"]) == "PUBLISH"
    (event,) = cal.walk("VEVENT")
    assert event.decoded("dtstart") == slot.starts_at
    assert event.decoded("dtend") == slot.ends_at
    assert str(event["uid"]).startswith(f"booking-{booking.reference}@")
    assert "住民票の写し" in str(event["summary"]) and "Resident record" in str(event["summary"])
    assert service.format_reference(booking.reference) in str(event["description"])
    assert int(event["sequence"]) == 0 and str(event["status"]) == "CONFIRMED"
    service.cancel(booking, now=MONDAY_9)
    db.session.commit()
    cal = Calendar.from_ical(notify.ics(booking))
    (event,) = cal.walk("VEVENT")
    assert str(cal["method"]) == "CANCEL" and str(event["status"]) == "CANCELLED"
    assert int(event["sequence"]) == 1


def test_reminder_goes_once_per_booking(city, db, app):
    svc, office, person, account = city
    tomorrow = _free(svc, office, date(2026, 11, 17))
    later = _free(svc, office, date(2026, 11, 18))
    b1 = service.book(resident_id=person.id, account_id=account.id, slot_id=tomorrow.id, now=MONDAY_9)
    service.book(resident_id=person.id, account_id=account.id, slot_id=later.id, now=MONDAY_9)
    db.session.commit()
    assert notify.remind(MONDAY_9) == 1
    assert notify.remind(MONDAY_9) == 0
    assert notify.remind(MONDAY_9 + timedelta(hours=3)) == 0
    titles = db.session.scalars(
        select(Notice.title_ja)
        .join(Delivery, Delivery.notice_id == Notice.id)
        .where(Delivery.resident_id == person.id)
    ).all()
    assert titles == ["明日のご予約のお知らせ：住民票の写し"]
    assert db.session.get(Booking, b1.id).reminded_at is not None


def test_prefiling_link_must_be_the_residents_own(city, db):
    svc, office, person, account = city
    from portal.prefiling import service as prefiling_service

    other = make_resident(given="三郎")
    other_account = make_account(resident=other)
    foreign = prefiling_service.create_draft(
        resident_id=other.id, account_id=other_account.id, code="moving_in", version=1, data={}
    )
    prefiling_service.transition(foreign, "submitted", actor="test")
    own = prefiling_service.create_draft(
        resident_id=person.id, account_id=account.id, code="moving_in", version=1, data={}
    )
    prefiling_service.transition(own, "submitted", actor="test")
    db.session.commit()
    slot = _free(svc, office, date(2026, 11, 26))
    with pytest.raises(service.BookingError) as exc:
        service.book(resident_id=person.id, slot_id=slot.id, prefiling_id=foreign.id, now=MONDAY_9)
    assert exc.value.code == "bad_prefiling"
    db.session.rollback()
    booking = service.book(resident_id=person.id, slot_id=slot.id, prefiling_id=own.id, now=MONDAY_9)
    db.session.commit()
    assert booking.prefiling_id == own.id


def test_slot_search_uses_the_index_on_postgresql(city, db):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL plan")
    svc, _, _, _ = city
    service.ensure_slots(date(2027, 1, 14), now=MONDAY_9)
    db.session.execute(text("ANALYZE booking_slots"))
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(
        db.session.execute(
            text(
                "EXPLAIN SELECT * FROM booking_slots WHERE service_id = :s AND starts_at >= now() "
                "AND starts_at < now() + interval '7 days' AND NOT closed AND booked < capacity "
                "ORDER BY starts_at LIMIT 50"
            ),
            {"s": svc.id},
        ).scalars()
    )
    assert "ix_booking_slots_search" in plan, plan
