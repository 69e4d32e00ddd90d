"""Check-in by card at a city kiosk: the kiosk's card login (portal.kiosk, a short session for the
card holder on that terminal): the card holder's bookings of today, one touch to check in.
Registered only when the kiosk pages are (``portal.kiosk``)."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.access import service as access
from portal.authz import allow
from portal.booking import floor_views, queue, service
from portal.booking.models import Booking, Office, Slot
from portal.booking.views import _helpers
from portal.extensions import db
from portal.kiosk import views as kiosk_views

bp = Blueprint("booking_kiosk", __name__, template_folder="templates")

NONE_TODAY = _l("You have no booking today. To take a number without a booking, use the reception machine.")


def _today_bookings(resident_id: int) -> list[Booking]:
    start, end = service.day_bounds(service.today_in_tokyo())
    return list(
        db.session.scalars(
            select(Booking)
            .join(Slot, Slot.id == Booking.slot_id)
            .where(Booking.resident_id == resident_id, Booking.status.in_(("booked", "checked_in")))
            .where(Slot.starts_at >= start, Slot.starts_at < end)
            .order_by(Slot.starts_at)
        )
    )


@bp.route("/kiosk/booking/check-in", methods=["GET", "POST"])
@allow("public")
@kiosk_views.visit_required
def checkin():
    visit = kiosk_views.visit()
    bookings = _today_bookings(visit.resident_id)
    error = None
    if request.method == "POST":
        chosen = next((b for b in bookings if b.id == request.form.get("booking", type=int)), None)
        if chosen is None:
            abort(404)
        try:
            ticket = queue.check_in(chosen, by=f"kiosk:{visit.terminal_code}")
            access.record(
                access.Actor(kind="terminal", id=visit.terminal_code, role="kiosk", organisation="",
                             terminal_id=visit.terminal_code),
                resident_id=visit.resident_id,
                data_items=["booking"],
                purpose="booking_checkin",
            )  # fmt: skip
            db.session.commit()
        except service.BookingError as exc:
            db.session.rollback()
            error = str(floor_views.KIOSK_ERRORS.get(exc.code, exc.code))
        else:
            return floor_views._ticket_page(
                ticket, db.session.get(Office, ticket.office_id), kiosk=True, back=url_for("kiosk.menu")
            )
    return render_template(
        "booking/kiosk_card.html", bookings=bookings, error=error, none_today=NONE_TODAY, **_helpers()
    )


def init_app(app) -> None:
    app.register_blueprint(bp)
