"""The resident's booking pages: find free times, book (confirmation in the PO box and an e-mail
with the .ics file), the booking page with its QR code, "taken" with the nearest times, cancel,
reschedule, bad input answered in Japanese and English, another resident's booking not found."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import select

from portal import mail
from portal.booking import service
from portal.booking.models import Booking, Slot
from portal.notices.models import Delivery, Notice
from tests.factories import csrf_from, login_resident, make_account, make_resident
from tests.portal.booking_fixtures import make_office, make_service


@pytest.fixture
def setup(app, db):
    svc = make_service(capacity=1, lead_hours=0, cutoff_hours=1, horizon_days=30)
    office = make_office(services=[svc])
    person = make_resident()
    account = make_account(resident=person)
    db.session.commit()
    return svc, office, person, account


def _first_free(client, svc) -> tuple[str, int]:
    day = service.today_in_tokyo() + timedelta(days=7)
    html = client.get(f"/me/bookings/slots?service={svc.code}&date={day.isoformat()}").get_data(as_text=True)
    ids = re.findall(r'name="slot" value="(\d+)"', html)
    assert ids, html[:2000]
    return html, int(ids[0])


def _english(client) -> None:
    html = client.get("/me/bookings/").get_data(as_text=True)
    client.post("/lang", data={"lang": "en", "csrf_token": csrf_from(html)})


def test_book_confirm_show_and_cancel(client, setup, db):
    svc, _, person, account = setup
    login_resident(client, account)
    assert client.get("/me/bookings/").status_code == 200
    html, slot_id = _first_free(client, svc)
    resp = client.post("/me/bookings/", data={"slot": slot_id, "csrf_token": csrf_from(html)})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:1500]
    booking = db.session.scalar(select(Booking).where(Booking.resident_id == person.id))
    assert resp.headers["Location"].endswith(f"/me/bookings/{booking.id}")
    page = client.get(f"/me/bookings/{booking.id}").get_data(as_text=True)
    assert service.format_reference(booking.reference) in page
    assert 'src="data:image/svg+xml' in page  # the QR code
    # PO box notice and e-mail with the calendar file
    titles = db.session.scalars(
        select(Notice.title_ja)
        .join(Delivery, Delivery.notice_id == Notice.id)
        .where(Delivery.resident_id == person.id)
    ).all()
    assert titles == ["ご予約を承りました：住民票の写し"]
    with_ics = [
        part
        for m in mail.outbox
        if m["To"] == account.email and m.is_multipart()
        for part in m.iter_attachments()
        if part.get_content_type() == "text/calendar"
    ]
    (ics,) = with_ics
    event = Calendar.from_ical(ics.get_payload(decode=True)).walk("VEVENT")[0]
    assert event.decoded("dtstart") == db.session.get(Slot, slot_id).starts_at
    download = client.get(f"/me/bookings/{booking.id}/calendar.ics")
    assert download.mimetype == "text/calendar" and b"BEGIN:VEVENT" in download.data

    resp = client.post(f"/me/bookings/{booking.id}/cancel", data={"csrf_token": csrf_from(page)})
    assert resp.status_code == 302
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).status == "cancelled"
    assert db.session.get(Slot, slot_id).booked == 0


def test_taken_answers_with_the_nearest_free_times_in_english(client, setup, db):
    svc, _, _, account = setup
    login_resident(client, account)
    _english(client)
    html, slot_id = _first_free(client, svc)
    rival = make_resident(given="次郎")
    db.session.commit()
    service.book(resident_id=rival.id, slot_id=slot_id)
    db.session.commit()
    resp = client.post(
        "/me/bookings/", data={"slot": slot_id, "service": svc.code, "csrf_token": csrf_from(html)}
    )
    assert resp.status_code == 409
    page = resp.get_data(as_text=True)
    assert "that time has just been taken" in page
    offered = [int(i) for i in re.findall(r'name="slot" value="(\d+)"', page)]
    assert len(offered) == service.NEAREST and slot_id not in offered
    assert db.session.scalar(select(Booking.id).where(Booking.account_id == account.id)) is None


def test_bad_input_is_explained_and_books_nothing(client, setup, db):
    svc, _, _, account = setup
    login_resident(client, account)
    resp = client.get(f"/me/bookings/slots?service={svc.code}&date=2026-13-45")
    assert resp.status_code == 400
    assert "YYYY-MM-DD" in resp.get_data(as_text=True)
    resp = client.get("/me/bookings/slots?service=nope")
    assert resp.status_code == 400
    html = client.get("/me/bookings/").get_data(as_text=True)
    resp = client.post("/me/bookings/", data={"service": svc.code, "csrf_token": csrf_from(html)})
    assert resp.status_code == 400
    assert db.session.scalar(select(Booking.id)) is None


def test_reschedule_moves_the_booking(client, setup, db):
    svc, _, person, account = setup
    login_resident(client, account)
    html, slot_id = _first_free(client, svc)
    client.post("/me/bookings/", data={"slot": slot_id, "csrf_token": csrf_from(html)})
    booking = db.session.scalar(select(Booking).where(Booking.resident_id == person.id))
    day = service.today_in_tokyo() + timedelta(days=15)
    page = client.get(
        f"/me/bookings/slots?service={svc.code}&date={day.isoformat()}&reschedule={booking.id}"
    ).get_data(as_text=True)
    new_id = int(re.findall(r'name="slot" value="(\d+)"', page)[0])
    resp = client.post(
        "/me/bookings/", data={"slot": new_id, "reschedule": booking.id, "csrf_token": csrf_from(page)}
    )
    assert resp.status_code == 302
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).slot_id == new_id
    assert db.session.get(Slot, slot_id).booked == 0 and db.session.get(Slot, new_id).booked == 1


def test_another_residents_booking_is_not_found(client, setup, db):
    svc, _, _, account = setup
    other = make_resident(given="三郎")
    slot = service.search(svc, on=service.today_in_tokyo() + timedelta(days=7), days=7)[0]
    theirs = service.book(resident_id=other.id, slot_id=slot.id)
    db.session.commit()
    login_resident(client, account)
    assert client.get(f"/me/bookings/{theirs.id}").status_code == 404
    assert client.get(f"/me/bookings/{theirs.id}/calendar.ics").status_code == 404
    html = client.get("/me/bookings/").get_data(as_text=True)
    assert (
        client.post(f"/me/bookings/{theirs.id}/cancel", data={"csrf_token": csrf_from(html)}).status_code
        == 404
    )


def test_a_busy_week_is_paged_by_whole_days(client, setup, db):
    svc, _, _, account = setup
    login_resident(client, account)
    day = service.today_in_tokyo() + timedelta(days=7)
    html = client.get(f"/me/bookings/slots?service={svc.code}&date={day.isoformat()}").get_data(as_text=True)
    ids = [int(i) for i in re.findall(r'name="slot" value="(\d+)"', html)]
    assert 0 < len(ids) < 60
    shown = {service.tokyo(db.session.get(Slot, i).starts_at).date() for i in ids}
    for d in shown:  # every day shown is whole: 08:30 to 17:15 in 30-minute slots
        assert len([i for i in ids if service.tokyo(db.session.get(Slot, i).starts_at).date() == d]) == 17
    later = re.search(r'date=(\d{4}-\d{2}-\d{2})[^"]*">(?:後の時間|Later)', html).group(1)
    assert date.fromisoformat(later) > max(shown)
