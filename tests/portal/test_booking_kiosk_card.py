"""Check-in by card at a city kiosk: inside the kiosk's card session (portal.kiosk),
/kiosk/booking/check-in lists the card holder's bookings of today, checks one in and
gives the number; the read is recorded against the terminal; without a session the page sends
the browser back to the kiosk's start screen."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.access.models import AccessRecord
from portal.booking.models import Ticket
from portal.cardid.models import CardCredential
from portal.kiosk.models import KioskSession
from portal.kiosk.views import TERMINAL_KEY, VISIT_KEY
from portal.models_base import utcnow
from tests.factories import csrf_from
from tests.portal.booking_fixtures import make_office, make_service
from tests.portal.test_booking_floor import booked


@pytest.fixture
def visit(app, db):
    svc = make_service(capacity=2, lead_hours=0)
    office = make_office(services=[svc])
    now = utcnow()
    booking = booked(office, svc, now + timedelta(minutes=20))
    credential = CardCredential(
        resident_id=booking.resident_id,
        issuer="CN=test",
        serial="1",
        fingerprint_sha256=secrets.token_hex(32),
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=365),
        linked_by="test",
        linked_via="text_ap",
    )
    db.session.add(credential)
    db.session.flush()
    row = KioskSession(
        id=secrets.token_urlsafe(24),
        ticket_hash=secrets.token_hex(32),
        terminal_code="kiosk-01",
        resident_id=booking.resident_id,
        credential_id=credential.id,
        challenge_id="c_test",
        ticket_expires_at=now + timedelta(seconds=30),
        redeemed_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(minutes=15),
    )
    db.session.add(row)
    db.session.commit()
    return booking, row


def test_card_holder_checks_in_from_the_kiosk_menu(client, visit, db):
    booking, row = visit
    with client.session_transaction() as sess:
        sess[VISIT_KEY] = row.id
        sess[TERMINAL_KEY] = row.terminal_code
    page = client.get("/kiosk/booking/check-in")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'name="booking" value="{booking.id}"' in html
    resp = client.post("/kiosk/booking/check-in", data={"booking": booking.id, "csrf_token": csrf_from(html)})
    assert resp.status_code == 200
    ticket = db.session.scalar(select(Ticket).where(Ticket.booking_id == booking.id))
    assert f'id="ticket-number">{ticket.number}<' in resp.get_data(as_text=True)
    assert ticket.issued_by == "kiosk:kiosk-01"
    rec = db.session.scalar(select(AccessRecord).where(AccessRecord.resident_id == booking.resident_id))
    assert (rec.actor_kind, rec.terminal_id, rec.purpose) == ("terminal", "kiosk-01", "booking_checkin")
    # Somebody else's booking id is not found from this session.
    other = client.post(
        "/kiosk/booking/check-in", data={"booking": booking.id + 1000, "csrf_token": csrf_from(html)}
    )
    assert other.status_code == 404


def test_without_a_kiosk_session_it_goes_back_to_the_start(client, visit, db):
    resp = client.get("/kiosk/booking/check-in")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/kiosk/")
    assert db.session.scalar(select(Ticket.id)) is None
