"""Booking screenshots for scripts/screenshots.py (``--only booking`` makes just these)."""

from __future__ import annotations

import time
from datetime import timedelta


def _today_booking(server) -> tuple[str, str]:
    """Move the demo resident's first booking to ten minutes from now (the day has come); return
    its reference and office code."""
    from sqlalchemy import select, update

    from portal.booking import service
    from portal.booking.models import Booking, Office, Slot
    from portal.extensions import db

    with server.app.app_context():
        booking = db.session.scalar(
            select(Booking).where(
                Booking.resident_id == server.people.resident_id, Booking.status == "booked"
            )
        )
        soon = service.utcnow() + timedelta(minutes=10)
        db.session.execute(
            update(Slot)
            .where(Slot.id == booking.slot_id)
            .values(starts_at=soon, ends_at=soon + timedelta(minutes=15))
        )
        db.session.commit()
        office = db.session.get(Office, db.session.get(Slot, booking.slot_id).office_id)
        out = booking.reference, office.code
        db.session.remove()
    return out


def take_booking(
    browser, server, out, written, *, Tab, shoot, staff_login, resident_login, viewports, browser_options
):
    for lang in ("ja", "en"):
        context = browser.new_context(**browser_options, **viewports["mobile"])
        tab = Tab(context.new_page(), server.url)
        resident_login(tab, server)
        tab.goto("/me/bookings/")
        tab.set_language(lang)
        shoot(tab, out, f"booking-index-{lang}", "mobile", written)
        tab.page.select_option("#service", "moving")
        tab.page.click("#find-slots button[type=submit]")
        tab.page.wait_for_selector("#book-form")
        shoot(tab, out, f"booking-slots-{lang}", "mobile", written)
        tab.goto("/me/bookings/")
        tab.page.click("#my-bookings a >> nth=0")
        tab.page.wait_for_selector("#booking-reference")
        shoot(tab, out, f"booking-show-{lang}", "mobile", written)
        tab.set_language("ja")
        context.close()

    reference, office = _today_booking(server)
    context = browser.new_context(**browser_options, **viewports["desktop"])
    kiosk = Tab(context.new_page(), server.url)
    kiosk.goto(f"/visit/{office}/kiosk")
    kiosk.set_language("ja")
    shoot(kiosk, out, "booking-kiosk-ja", "desktop", written)
    for service_button in range(2):  # two walk-ins before the booked resident
        kiosk.goto(f"/visit/{office}/kiosk")
        kiosk.page.click(f".kiosk-services button >> nth={service_button}")
        kiosk.page.wait_for_selector("#ticket-number")
    kiosk.goto(f"/visit/{office}/kiosk")
    kiosk.page.fill("#reference", reference)
    kiosk.page.click("#checkin-form button[type=submit]")
    kiosk.page.wait_for_selector("#ticket-number")
    shoot(kiosk, out, "booking-ticket-ja", "desktop", written)
    kiosk.set_language("en")
    shoot(kiosk, out, "booking-ticket-en", "desktop", written)

    clerk_context = browser.new_context(**browser_options, **viewports["desktop"])
    clerk = Tab(clerk_context.new_page(), server.url)
    staff_login(clerk, server)
    clerk.set_language("ja")
    clerk.goto("/staff/booking/")
    clerk.page.click("ul.counters a >> nth=0")
    clerk.page.wait_for_selector("#call-next")
    clerk.page.click("#call-next")
    clerk.page.wait_for_selector("#current-number")
    clerk.goto("/staff/booking/")
    clerk.page.click("ul.counters a >> nth=2")
    clerk.page.click("#call-next")
    clerk.page.wait_for_selector("#current-number")
    shoot(clerk, out, "booking-counter-ja", "desktop", written)
    clerk.goto("/staff/booking/")
    shoot(clerk, out, "booking-day-ja", "desktop", written)
    clerk.set_language("en")
    shoot(clerk, out, "booking-day-en", "desktop", written)
    clerk_context.close()

    board = Tab(context.new_page(), server.url)
    board.goto(f"/board/{office}")
    board.page.wait_for_selector("#board[data-updated]")
    shoot(board, out, "booking-board", "desktop", written)
    board.page.goto("about:blank")  # the event stream notices at its next keepalive
    context.close()
    time.sleep(6)
