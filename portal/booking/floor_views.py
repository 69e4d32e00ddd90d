"""On the office floor, no login: the reception kiosk (check in with the booking's QR code or
reference, or take a number without a booking), the resident's ticket page on their phone (place
in the queue, estimated wait), and the calling board (server-sent events, Japanese and English,
large type). None of these pages shows a name or any other personal data: a ticket is a number."""

from __future__ import annotations

import json
import time

import segno
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
    url_for,
)
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.authz import allow
from portal.booking import notify, queue, service
from portal.booking.models import Office, Service, Ticket
from portal.booking.views import _helpers, pick
from portal.extensions import db, limiter

bp = Blueprint("booking_floor", __name__, template_folder="templates")
KEEPALIVE_SECONDS = 5

KIOSK_ERRORS = {
    "unknown": _l("We could not find that booking. Check the reference, or ask at the information desk."),
    "other_office": _l("This booking is for another office. Please check the place on your confirmation."),
    "not_today": _l("This booking is not for today. Please come on the day of your booking."),
    "not_active": _l("This booking has been cancelled or used already. Please ask at the information desk."),
    "office_closed": _l("The office is closed today."),
    "not_found": _l("That service is not available at this office."),
    "busy": _l("Please try again."),
}
TICKET_STATUS = {
    "waiting": _l("Waiting"),
    "called": _l("Called: please go to the counter"),
    "done": _l("Done"),
    "no_show": _l("Missed: please ask at the information desk"),
}


def _office(code: str) -> Office:
    office = db.session.scalar(select(Office).where(Office.code == code, Office.active.is_(True)))
    if office is None:
        abort(404)
    return office


def _qr(url: str) -> str:
    return segno.make(url, error="m", micro=False).svg_data_uri(scale=4, border=2)


def _kiosk_page(office: Office, *, error: str | None = None, typed: str = "", status: int = 200):
    return (
        render_template(
            "booking/kiosk.html",
            office=office,
            services=[s for s in office.services if s.active],
            error=error,
            typed=typed,
            **_helpers(),
        ),
        status,
    )


@bp.route("/visit/<code>/kiosk")
@allow("public")
def kiosk(code: str):
    return _kiosk_page(_office(code))


def _ticket_page(ticket: Ticket, office: Office, *, kiosk: bool, back: str | None = None):
    link = url_for("booking_floor.ticket", token=ticket.token, _external=True)
    return render_template(
        "booking/ticket.html",
        ticket=ticket,
        office=office,
        svc=db.session.get(Service, ticket.service_id),
        where=queue.position(ticket),
        ticket_labels=TICKET_STATUS,
        kiosk=kiosk,
        link=link,
        qr=_qr(link) if kiosk else None,
        back=back or url_for("booking_floor.kiosk", code=office.code),
        **_helpers(),
    )


@bp.route("/visit/<code>/kiosk/check-in", methods=["POST"])
@allow("public")
@limiter.limit("30 per minute")
def check_in(code: str):
    office = _office(code)
    typed = request.form.get("reference", "")[:40]
    booking = service.by_reference(typed)
    try:
        if booking is None:
            raise service.BookingError("unknown", 404)
        ticket = queue.check_in(booking, office=office, by="kiosk")
        db.session.commit()
    except service.BookingError as exc:
        db.session.rollback()
        return _kiosk_page(
            office, error=str(KIOSK_ERRORS.get(exc.code, exc.code)), typed=typed, status=exc.status
        )
    return _ticket_page(ticket, office, kiosk=True)


@bp.route("/visit/<code>/kiosk/walk-in", methods=["POST"])
@allow("public")
@limiter.limit("30 per minute")
def walk_in(code: str):
    office = _office(code)
    svc = db.session.scalar(select(Service).where(Service.code == request.form.get("service", "")))
    try:
        if svc is None:
            raise service.BookingError("not_found", 404)
        ticket = queue.walk_in(office, svc, by="kiosk")
        db.session.commit()
    except service.BookingError as exc:
        db.session.rollback()
        return _kiosk_page(office, error=str(KIOSK_ERRORS.get(exc.code, exc.code)), status=exc.status)
    return _ticket_page(ticket, office, kiosk=True)


def _ticket(token: str) -> Ticket:
    ticket = db.session.scalar(select(Ticket).where(Ticket.token == token))
    if ticket is None:
        abort(404)
    return ticket


@bp.route("/t/<token>")
@allow("public")
def ticket(token: str):
    found = _ticket(token)
    return _ticket_page(found, db.session.get(Office, found.office_id), kiosk=False)


@bp.route("/t/<token>.json")
@allow("public")
def ticket_json(token: str):
    found = _ticket(token)
    where = queue.position(found)
    counter = found.counter
    return jsonify(
        number=found.number,
        status=found.status,
        status_label=str(TICKET_STATUS.get(found.status, found.status)),
        ahead=where.ahead if where else None,
        minutes=where.minutes if where else None,
        counter=counter.number if counter else None,
        counter_name=pick(counter, "name") if counter else None,
    )


@bp.route("/board/<code>")
@allow("public")
def board(code: str):
    office = _office(code)
    return render_template("booking/board.html", office=office, state=queue.board(office), **_helpers())


@bp.route("/board/<code>/state.json")
@allow("public")
def board_state(code: str):
    return jsonify(queue.board(_office(code)))


@bp.route("/board/<code>/events")
@allow("public")
def board_events(code: str):
    """Server-sent events: the board's state now, then whenever it changes; the stream ends after
    ``BOOKING_SSE_SECONDS`` and the browser reconnects (``retry``)."""
    office_id = _office(code).id
    seconds = float(current_app.config.get("BOOKING_SSE_SECONDS", 55))
    poll = float(current_app.config.get("BOOKING_SSE_POLL", 1.0))

    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def stream():
        # Each poll in its own app context (and so its own session and read transaction): the
        # stream outlives the request, and the next poll must see new calls.
        last, quiet_since = None, time.monotonic()
        deadline = time.monotonic() + seconds
        yield "retry: 1000\n\n"
        while True:
            with app.app_context():
                office = db.session.get(Office, office_id)
                state = json.dumps(queue.board(office), ensure_ascii=False, sort_keys=True)
            if state != last:
                last, quiet_since = state, time.monotonic()
                yield f"event: board\ndata: {state}\n\n"
            elif time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                # A comment line: keeps proxies from closing the stream, and a closed browser
                # tab is noticed (the write fails) within seconds instead of at the deadline.
                quiet_since = time.monotonic()
                yield ": keepalive\n\n"
            if time.monotonic() >= deadline:
                return
            time.sleep(poll)

    return Response(
        stream(),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def send_near_notices(office_id: int) -> int:
    """After a call: tell the residents whose turn is near (PO box + push), once each."""
    near = queue.near_turn(office_id)
    db.session.commit()
    sent = 0
    for ticket, ahead in near:
        if notify.notify_near(ticket, ahead) is not None:
            sent += 1
    return sent


def init_app(app) -> None:
    app.register_blueprint(bp)
