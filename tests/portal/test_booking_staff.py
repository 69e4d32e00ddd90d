"""Staff side of booking: the day view writes access records (coded purpose, shown to the resident),
the counter console calls, recalls and finishes numbers and checks a booking in, the figures page,
admins set closures, services and hours; roles are enforced."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from portal.access.models import AccessRecord
from portal.booking import service
from portal.booking.models import Booking, Closure, OpeningHours, Service, Ticket
from portal.models_base import utcnow
from tests.factories import csrf_from, login_resident, login_staff, make_staff, post_form
from tests.portal.booking_fixtures import make_office, make_service
from tests.portal.test_booking_floor import booked


@pytest.fixture
def app_config():
    return {"RATELIMIT_ENABLED": False}


@pytest.fixture
def office_setup(app, db):
    svc = make_service(capacity=2, lead_hours=0)
    office = make_office(services=[svc])
    clerk = make_staff(roles=["counter"], login_id="counter9")
    admin = make_staff(roles=["admin"], login_id="admin9")
    db.session.commit()
    return svc, office, clerk, admin


def test_day_view_records_the_read_and_the_resident_sees_it(client, office_setup, db, app):
    svc, office, clerk, _ = office_setup
    now = utcnow()
    booking = booked(office, svc, now + timedelta(minutes=40))
    login_staff(client, clerk)
    html = client.get(f"/staff/booking/?office={office.id}").get_data(as_text=True)
    assert service.format_reference(booking.reference) in html and "山田 花子" in html
    rec = db.session.scalar(select(AccessRecord).where(AccessRecord.resident_id == booking.resident_id))
    assert rec.purpose == "booking_day_view" and rec.actor_id == "counter9"
    assert set(rec.data_items.split(",")) == {"basic4", "booking"}
    # The resident's access history shows it with its label.
    from portal.accounts.models import ResidentAccount

    account = db.session.scalar(
        select(ResidentAccount).where(ResidentAccount.resident_id == booking.resident_id)
    )
    resident_client = app.test_client()
    login_resident(resident_client, account)
    history = resident_client.get("/me/access-history").get_data(as_text=True)
    assert "区役所の窓口の当日の予約一覧" in history


def test_counter_console_calls_and_checks_in(client, office_setup, db):
    svc, office, clerk, _ = office_setup
    now = utcnow()
    booking = booked(office, svc, now + timedelta(minutes=2))
    desk = office.counters[0]
    login_staff(client, clerk)
    page = client.get(f"/staff/booking/counter/{desk.id}").get_data(as_text=True)
    resp = client.post(
        f"/staff/booking/counter/{desk.id}/check-in",
        data={"reference": booking.reference, "csrf_token": csrf_from(page)},
    )
    assert resp.status_code == 302
    ticket = db.session.scalar(select(Ticket).where(Ticket.booking_id == booking.id))
    assert ticket.issued_by == "staff:counter9"
    purposes = db.session.scalars(
        select(AccessRecord.purpose).where(AccessRecord.resident_id == booking.resident_id)
    ).all()
    assert "booking_checkin" in purposes
    client.post(f"/staff/booking/counter/{desk.id}/next", data={"csrf_token": csrf_from(page)})
    page = client.get(f"/staff/booking/counter/{desk.id}").get_data(as_text=True)
    assert f'id="current-number">{ticket.number}<' in page
    assert "booking_counter" in db.session.scalars(select(AccessRecord.purpose)).all()
    client.post(
        f"/staff/booking/counter/{desk.id}/recall", data={"ticket": ticket.id, "csrf_token": csrf_from(page)}
    )
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).recalls == 1
    # A stale form (another ticket id) changes nothing and says so.
    resp = client.post(
        f"/staff/booking/counter/{desk.id}/done",
        data={"ticket": ticket.id + 99, "csrf_token": csrf_from(page)},
        follow_redirects=True,
    )
    assert "この窓口で呼び出し中の番号ではありません" in resp.get_data(as_text=True)
    client.post(
        f"/staff/booking/counter/{desk.id}/done", data={"ticket": ticket.id, "csrf_token": csrf_from(page)}
    )
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).status == "done"
    assert db.session.get(Booking, booking.id).status == "done"
    figures = client.get(f"/staff/booking/figures?office={office.id}").get_data(as_text=True)
    assert 'id="figures-counts"' in figures


def test_admin_closure_service_and_hours(client, office_setup, db):
    svc, office, clerk, admin = office_setup
    login_staff(client, clerk)
    assert client.get("/staff/booking/settings").status_code == 403
    admin_client = client.application.test_client()
    login_staff(admin_client, admin)
    day = _next_weekday(service.today_in_tokyo() + timedelta(days=3))
    service.search(svc, on=day, days=1)
    resp = post_form(
        admin_client,
        "/staff/booking/settings/closures",
        {"office": office.id, "day": day.isoformat(), "reason_ja": "選挙事務", "reason_en": "Election work"},
        page="/staff/booking/settings",
    )
    assert resp.status_code == 302
    assert db.session.scalar(select(Closure.reason_en).where(Closure.day == day)) == "Election work"
    assert service.search(svc, on=day, days=1) == []
    resp = post_form(
        admin_client,
        "/staff/booking/settings/closures",
        {"office": office.id, "day": "not-a-day", "reason_ja": "x", "reason_en": "x"},
        page="/staff/booking/settings",
        follow_redirects=True,
    )
    assert "YYYY-MM-DD" in resp.get_data(as_text=True)
    fields = {
        "duration_min": 20,
        "capacity": 3,
        "buffer_min": 10,
        "lead_hours": 1,
        "horizon_days": 30,
        "cutoff_hours": 12,
    }
    resp = post_form(
        admin_client, f"/staff/booking/settings/services/{svc.id}", fields, page="/staff/booking/settings"
    )
    assert resp.status_code == 302
    db.session.expire_all()
    changed = db.session.get(Service, svc.id)
    assert (changed.duration_min, changed.capacity, changed.cutoff_hours) == (20, 3, 12)
    other_day = _next_weekday(day + timedelta(days=1))
    slots = service.search(changed, office_id=office.id, on=other_day, days=1)
    assert slots and (slots[1].starts_at - slots[0].starts_at) == timedelta(minutes=30)  # 20 + 10
    bad = post_form(
        admin_client,
        f"/staff/booking/settings/services/{svc.id}",
        {**fields, "capacity": 0},
        page="/staff/booking/settings",
        follow_redirects=True,
    )
    assert "範囲内の整数" in bad.get_data(as_text=True)
    resp = post_form(
        admin_client,
        f"/staff/booking/settings/offices/{office.id}/hours",
        {"opens-0": "09:00", "closes-0": "12:00"},
        page="/staff/booking/settings",
    )
    assert resp.status_code == 302
    hours = db.session.scalars(select(OpeningHours).where(OpeningHours.office_id == office.id)).all()
    assert [(h.weekday, h.opens.hour, h.closes.hour) for h in hours] == [(0, 9, 12)]
    monday = day + timedelta(days=(7 - day.weekday()) % 7 or 7)
    starts = [
        service.tokyo(s.starts_at).hour
        for s in service.search(changed, office_id=office.id, on=monday, days=5)
    ]
    assert starts and min(starts) >= 9 and max(starts) < 12


def _next_weekday(day: date) -> date:
    while day.weekday() >= 5 or service.closed_reason(0, day) not in (None, "weekday"):
        day += timedelta(days=1)
    return day


def test_roles(client, office_setup, db):
    _, office, _, _ = office_setup
    resident_only = client.get("/staff/booking/")
    assert resident_only.status_code == 302  # to the staff login
    library = make_staff(roles=["library"], login_id="lib9")
    db.session.commit()
    login_staff(client, library)
    assert client.get("/staff/booking/").status_code == 403
    assert client.get(f"/staff/booking/counter/{office.counters[0].id}").status_code == 403
    assert client.get("/staff/booking/settings").status_code == 403
