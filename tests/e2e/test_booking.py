"""Booking in Chromium, end to end: the demo resident books a visit (Japanese, then English pages,
axe-core on each), gets the day-before reminder in the PO box (``flask booking remind``'s function
run on the server), the day comes, they check in at the reception kiosk with the booking
reference (what its QR code holds) and get a number; the calling board is open in another tab
(server-sent events); a counter clerk presses "Call next" and the number appears on the board."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.e2e.live import Tab, blocking, describe

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def _axe_clean(tab: Tab) -> None:
    problems = blocking(tab.axe())
    assert not problems, describe(problems)


def _resident(new_tab, people) -> Tab:
    tab = new_tab()
    tab.goto("/login")
    tab.page.fill("#email", people.resident_email)
    tab.page.fill("#password", people.resident_password)
    tab.page.click("main form button[type=submit]")
    tab.page.wait_for_url("**/me/")
    return tab


def _staff(new_tab, login: str, password: str) -> Tab:
    tab = new_tab()
    tab.goto("/staff/login")
    tab.page.fill("#login_id", login)
    tab.page.fill("#password", password)
    tab.page.click("main form button[type=submit]")
    tab.page.wait_for_url("**/staff/")
    return tab


def _server(live_server, fn):
    with live_server.app.app_context():
        from portal.extensions import db

        try:
            return fn(db)
        finally:
            db.session.remove()


def test_book_remind_check_in_and_see_the_number_called(new_tab, live_server):
    people = live_server.people
    resident = _resident(new_tab, people)
    resident.goto("/me/bookings/")
    _axe_clean(resident)  # ja
    page = resident.page
    page.select_option("#service", "certificate")
    page.click("#find-slots button[type=submit]")
    page.wait_for_selector("#book-form")
    _axe_clean(resident)
    page.locator("#book-form input[name=slot]").first.check()
    page.click("#book-form button[type=submit]")
    page.wait_for_selector("#booking-reference")
    reference = page.inner_text("#booking-reference").strip()
    assert re.fullmatch(r"[A-Z0-9]{5}-[A-Z0-9]{5}", reference), reference
    assert page.locator("img.qr").count() == 1
    _axe_clean(resident)
    resident.set_language("en")
    _axe_clean(resident)  # en
    booking_url = page.url

    def reminder_due(db):
        from sqlalchemy import select

        from portal.booking import notify, service
        from portal.booking.models import Booking

        booking = db.session.scalar(
            select(Booking).where(Booking.reference == service.normalise_reference(reference))
        )
        # 18:00 in Tokyo the evening before the visit, as the scheduler would run it
        day = service.tokyo(booking.slot.starts_at).date()
        return notify.remind(service.day_bounds(day - timedelta(days=1))[0] + timedelta(hours=18))

    assert _server(live_server, reminder_due) == 1
    resident.goto("/me/notices/")
    assert page.get_by_text("Reminder: your appointment tomorrow", exact=False).count() >= 1
    _axe_clean(resident)

    def the_day_comes(db):
        from sqlalchemy import select, update

        from portal.booking import service
        from portal.booking.models import Booking, Office, Slot

        booking = db.session.scalar(
            select(Booking).where(Booking.reference == service.normalise_reference(reference))
        )
        # Move the booked slot to five minutes from now (the test cannot wait for the day).
        soon = service.utcnow() + timedelta(minutes=5)
        db.session.execute(
            update(Slot)
            .where(Slot.id == booking.slot_id)
            .values(starts_at=soon, ends_at=soon + timedelta(minutes=15))
        )
        db.session.commit()
        return db.session.get(Office, db.session.get(Slot, booking.slot_id).office_id).code

    office = _server(live_server, the_day_comes)

    board = new_tab()
    board.goto(f"/board/{office}")
    board.page.wait_for_selector("#board[data-updated]")  # the event stream is connected
    _axe_clean(board)

    kiosk = new_tab()
    kiosk.goto(f"/visit/{office}/kiosk")
    _axe_clean(kiosk)
    kiosk.page.fill("#reference", "nope")
    kiosk.page.click("#checkin-form button[type=submit]")
    kiosk.page.wait_for_selector("#kiosk-error")
    _axe_clean(kiosk)
    kiosk.page.fill("#reference", reference.lower())
    kiosk.page.click("#checkin-form button[type=submit]")
    kiosk.page.wait_for_selector("#ticket-number")
    number = kiosk.page.inner_text("#ticket-number").strip()
    assert number.isdigit()
    _axe_clean(kiosk)
    kiosk.set_language("en")
    _axe_clean(kiosk)

    resident.page.goto(booking_url)
    assert "Checked in" in resident.page.inner_text("#booking-status")

    clerk = _staff(new_tab, people.staff_login, people.staff_password)
    clerk.goto("/staff/booking/")
    _axe_clean(clerk)
    clerk.page.click("ul.counters a >> nth=2")  # counter 3: certificates
    clerk.page.wait_for_selector("#call-next")
    _axe_clean(clerk)
    clerk.page.click("#call-next")
    clerk.page.wait_for_selector("#current-number")
    assert clerk.page.inner_text("#current-number").strip() == number

    board.page.wait_for_selector(f"#board-rows tr.latest td.board-number:text-is('{number}')", timeout=15_000)
    _axe_clean(board)
    clerk.set_language("en")
    _axe_clean(clerk)
