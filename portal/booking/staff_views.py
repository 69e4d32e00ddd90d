"""Staff side of booking (/staff/booking): the day view per office and counter, the counter console
(call next, recall, no-show, done; check in a booked resident at the counter), the figures, and —
for admins — services, opening hours and closures.

Every page that shows a resident's name writes an access record (portal.access) with a coded
purpose (portal.labels.RECORD_PURPOSES)."""

from __future__ import annotations

from datetime import date, time, timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from portal.access import service as access
from portal.authz import allow
from portal.booking import floor_views, notify, queue, service
from portal.booking.models import Booking, Closure, Counter, Office, OpeningHours, Service, Slot, Ticket
from portal.booking.views import ERRORS, _helpers, error_text
from portal.extensions import db
from portal.registry.models import Resident

bp = Blueprint("booking_staff", __name__, url_prefix="/staff/booking", template_folder="templates")

COUNTER_ERRORS = {
    **ERRORS,
    "unknown": _l("No booking has that reference."),
    "other_office": _l("This booking is for another office."),
    "not_today": _l("This booking is not for today."),
    "not_called": _l("That number is not being called at this counter."),
    "office_closed": _l("The office is closed today."),
}
WEEKDAYS = (
    _l("Monday"),
    _l("Tuesday"),
    _l("Wednesday"),
    _l("Thursday"),
    _l("Friday"),
    _l("Saturday"),
    _l("Sunday"),
)
FIGURE_DAYS_MAX = 93


def _actor() -> access.Actor:
    return access.Actor(
        kind="staff",
        id=current_user.login_id,
        role=" ".join(current_user.role_list),
        organisation=current_user.organisation,
    )


def _record(resident_ids, purpose: str) -> None:
    ids = sorted({r for r in resident_ids if r is not None})
    if ids:
        access.record_many(_actor(), resident_ids=ids, data_items=["basic4", "booking"], purpose=purpose)


def _offices() -> list[Office]:
    return list(db.session.scalars(select(Office).order_by(Office.id)))


def _day_arg() -> date | None:
    text = request.args.get("date", "")
    if not text:
        return service.today_in_tokyo()
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _names(resident_ids) -> dict[int, Resident]:
    ids = {r for r in resident_ids if r is not None}
    if not ids:
        return {}
    return {r.id: r for r in db.session.scalars(select(Resident).where(Resident.id.in_(ids)))}


@bp.route("/")
@allow("counter", "admin")
def day():
    offices = _offices()
    office = db.session.get(Office, request.args.get("office", type=int) or (offices[0].id if offices else 0))
    chosen = _day_arg()
    if office is None:
        return render_template("booking/staff_day.html", offices=offices, office=None, **_helpers())
    if chosen is None:
        flash(str(ERRORS["bad_date"]), "error")
        chosen = service.today_in_tokyo()
    bookings = service.day_bookings(office.id, chosen)
    tickets = db.session.scalars(
        select(Ticket).where(Ticket.office_id == office.id, Ticket.day == chosen).order_by(Ticket.number)
    ).all()
    people = _names([b.resident_id for b in bookings] + [t.resident_id for t in tickets])
    _record(people.keys(), "booking_day_view")
    db.session.commit()
    return render_template(
        "booking/staff_day.html",
        offices=offices,
        office=office,
        chosen=chosen,
        bookings=bookings,
        tickets=tickets,
        people=people,
        closed=service.closed_reason(office.id, chosen),
        ticket_labels=floor_views.TICKET_STATUS,
        prev_day=chosen - timedelta(days=1),
        next_day=chosen + timedelta(days=1),
        **_helpers(),
    )


def _counter(counter_id: int) -> Counter:
    counter = db.session.get(Counter, counter_id)
    if counter is None:
        abort(404)
    return counter


@bp.route("/counter/<int:counter_id>")
@allow("counter")
def counter(counter_id: int):
    desk = _counter(counter_id)
    today = service.today_in_tokyo()
    now_serving = queue.current(desk, today)
    waiting = queue.waiting(desk.office_id, today, service.utcnow(), queue.counter_service_ids(desk))
    person = None
    if now_serving is not None and now_serving.resident_id is not None:
        person = db.session.get(Resident, now_serving.resident_id)
        _record([person.id], "booking_counter")
        db.session.commit()
    return render_template(
        "booking/staff_counter.html",
        desk=desk,
        office=desk.office,
        now_serving=now_serving,
        person=person,
        waiting=waiting,
        typed=request.args.get("reference", ""),
        **_helpers(),
    )


def _back(desk: Counter):
    return redirect(url_for("booking_staff.counter", counter_id=desk.id))


@bp.route("/counter/<int:counter_id>/next", methods=["POST"])
@allow("counter")
def call_next(counter_id: int):
    desk = _counter(counter_id)
    called = queue.call_next(desk)
    db.session.commit()
    if called is None:
        flash(str(_l("Nobody is waiting for this counter.")), "info")
    else:
        floor_views.send_near_notices(desk.office_id)
    return _back(desk)


def _called_here(desk: Counter) -> Ticket:
    ticket = queue.current(desk, service.today_in_tokyo())
    if ticket is None or ticket.id != request.form.get("ticket", type=int):
        raise service.BookingError("not_called", 409)
    return ticket


@bp.route("/counter/<int:counter_id>/<action>", methods=["POST"])
@allow("counter")
def ticket_action(counter_id: int, action: str):
    desk = _counter(counter_id)
    if action not in ("recall", "no-show", "done"):
        abort(404)
    try:
        ticket = _called_here(desk)
        if action == "recall":
            queue.recall(ticket)
        else:
            queue.finish(ticket, "no_show" if action == "no-show" else "done")
        db.session.commit()
    except service.BookingError as exc:
        db.session.rollback()
        flash(str(COUNTER_ERRORS.get(exc.code, exc.code)), "error")
    return _back(desk)


@bp.route("/counter/<int:counter_id>/check-in", methods=["POST"])
@allow("counter")
def counter_check_in(counter_id: int):
    """A booked resident at the counter without the kiosk: the clerk types the reference."""
    desk = _counter(counter_id)
    booking = service.by_reference(request.form.get("reference", "")[:40])
    try:
        if booking is None:
            raise service.BookingError("unknown", 404)
        ticket = queue.check_in(booking, office=desk.office, by=f"staff:{current_user.login_id}")
        _record([booking.resident_id], "booking_checkin")
        db.session.commit()
    except service.BookingError as exc:
        db.session.rollback()
        flash(str(COUNTER_ERRORS.get(exc.code, exc.code)), "error")
        return _back(desk)
    flash(str(_l("Checked in: number %(n)s.", n=ticket.number)), "success")
    return _back(desk)


@bp.route("/card/<challenge_id>", methods=["POST"])
@allow("counter")
def card_check_in(challenge_id: str):
    """Check in today's booking of the resident whose card the clerk just scanned (the card-scan
    result page offers it): the same checks as the scan's own result page."""
    from portal.cardid.views import scanned_challenge

    ch = scanned_challenge(challenge_id, ("counter_scan",))
    today = service.today_in_tokyo()
    start, end = service.day_bounds(today)
    booking = db.session.scalar(
        select(Booking)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(Booking.resident_id == ch.resident_id, Booking.status.in_(("booked", "checked_in")))
        .where(Slot.starts_at >= start, Slot.starts_at < end)
        .order_by(Slot.starts_at)
    )
    if booking is None:
        flash(str(_l("This resident has no booking today.")), "error")
        return redirect(url_for("cardid.counter"))
    try:
        ticket = queue.check_in(booking, by=f"staff:{current_user.login_id}")
        _record([booking.resident_id], "booking_checkin")
        db.session.commit()
    except service.BookingError as exc:
        db.session.rollback()
        flash(str(COUNTER_ERRORS.get(exc.code, exc.code)), "error")
        return redirect(url_for("cardid.counter"))
    flash(str(_l("Checked in: number %(n)s.", n=ticket.number)), "success")
    slot = db.session.get(Slot, booking.slot_id)
    return redirect(url_for("booking_staff.day", office=slot.office_id, date=today.isoformat()))


@bp.route("/bookings/<int:booking_id>/<action>", methods=["POST"])
@allow("counter", "admin")
def booking_action(booking_id: int, action: str):
    booking = db.session.get(Booking, booking_id)
    if booking is None or action not in ("cancel", "no-show"):
        abort(404)
    slot = db.session.get(Slot, booking.slot_id)
    try:
        if action == "cancel":
            service.cancel(booking, by_staff=True)
        else:
            if booking.status != "booked":
                raise service.BookingError("not_active", 409)
            booking.status = "no_show"
        db.session.commit()
    except service.BookingError as exc:
        db.session.rollback()
        flash(error_text(exc), "error")
    else:
        if action == "cancel":
            notify.confirm(booking, "cancelled")
    day = service.tokyo(slot.starts_at).date()
    return redirect(url_for("booking_staff.day", office=slot.office_id, date=day.isoformat()))


@bp.route("/figures")
@allow("counter", "admin")
def figures():
    offices = _offices()
    office = db.session.get(Office, request.args.get("office", type=int) or (offices[0].id if offices else 0))
    today = service.today_in_tokyo()
    try:
        first = date.fromisoformat(request.args.get("from") or (today - timedelta(days=30)).isoformat())
        last = date.fromisoformat(request.args.get("to") or today.isoformat())
    except ValueError:
        first, last = today - timedelta(days=30), today
        flash(str(ERRORS["bad_date"]), "error")
    if last < first:
        first, last = last, first
    first = max(first, last - timedelta(days=FIGURE_DAYS_MAX))
    numbers = queue.figures(office.id, first, last) if office else None
    return render_template(
        "booking/staff_figures.html",
        offices=offices,
        office=office,
        first=first,
        last=last,
        numbers=numbers,
        **_helpers(),
    )


# --- admins: services, hours, closures -------------------------------------------------------------


@bp.route("/settings")
@allow("admin")
def settings():
    offices = _offices()
    hours = {
        o.id: {
            h.weekday: h
            for h in db.session.scalars(select(OpeningHours).where(OpeningHours.office_id == o.id))
        }
        for o in offices
    }
    closures = db.session.scalars(
        select(Closure).where(Closure.day >= service.today_in_tokyo()).order_by(Closure.day)
    ).all()
    return render_template(
        "booking/staff_settings.html",
        offices=offices,
        hours=hours,
        weekdays=WEEKDAYS,
        services=db.session.scalars(select(Service).order_by(Service.id)).all(),
        closures=closures,
        office_names={o.id: o for o in offices},
        today=service.today_in_tokyo(),
        **_helpers(),
    )


@bp.route("/settings/closures", methods=["POST"])
@allow("admin")
def add_closure():
    office_id = request.form.get("office", type=int) or None
    reason_ja = request.form.get("reason_ja", "").strip()[:120]
    reason_en = request.form.get("reason_en", "").strip()[:160]
    try:
        day = date.fromisoformat(request.form.get("day", ""))
    except ValueError:
        flash(str(ERRORS["bad_date"]), "error")
        return redirect(url_for("booking_staff.settings"))
    if not reason_ja or not reason_en:
        flash(str(_l("Give the reason in Japanese and in English.")), "error")
        return redirect(url_for("booking_staff.settings"))
    try:
        affected = service.add_closure(office_id, day, reason_ja, reason_en, by=current_user.login_id)
        db.session.commit()
    except service.BookingError as exc:
        db.session.rollback()
        flash(error_text(exc), "error")
        return redirect(url_for("booking_staff.settings"))
    flash(
        str(
            _l(
                "Closed on %(day)s. Bookings that day to contact: %(n)s.",
                day=day.isoformat(),
                n=len(affected),
            )
        ),
        "success",
    )
    return redirect(url_for("booking_staff.settings"))


@bp.route("/settings/closures/<int:closure_id>/delete", methods=["POST"])
@allow("admin")
def delete_closure(closure_id: int):
    closure = db.session.get(Closure, closure_id)
    if closure is None:
        abort(404)
    service.remove_closure(closure)
    db.session.commit()
    flash(str(_l("The closure has been removed.")), "success")
    return redirect(url_for("booking_staff.settings"))


def _int(name: str, low: int, high: int) -> int | None:
    value = request.form.get(name, type=int)
    return value if value is not None and low <= value <= high else None


@bp.route("/settings/services/<int:service_id>", methods=["POST"])
@allow("admin")
def edit_service(service_id: int):
    svc = db.session.get(Service, service_id)
    if svc is None:
        abort(404)
    limits = {
        "duration_min": (5, 240),
        "capacity": (1, 50),
        "buffer_min": (0, 120),
        "lead_hours": (0, 24 * 14),
        "horizon_days": (1, 366),
        "cutoff_hours": (0, 24 * 14),
    }
    values = {name: _int(name, *bounds) for name, bounds in limits.items()}
    bad = [name for name, v in values.items() if v is None]
    if bad:
        flash(str(_l("Enter whole numbers within the limits shown.")), "error")
        return redirect(url_for("booking_staff.settings") + f"#service-{svc.id}")
    reshape = values["duration_min"] != svc.duration_min or values["buffer_min"] != svc.buffer_min
    for name, v in values.items():
        setattr(svc, name, v)
    if reshape:
        for office in service.offices_offering(svc.id):
            service.rebuild_future(office)
    db.session.commit()
    flash(str(_l("The service has been saved.")), "success")
    return redirect(url_for("booking_staff.settings") + f"#service-{svc.id}")


@bp.route("/settings/offices/<int:office_id>/hours", methods=["POST"])
@allow("admin")
def edit_hours(office_id: int):
    office = db.session.get(Office, office_id)
    if office is None:
        abort(404)
    wanted: dict[int, tuple[time, time]] = {}
    for weekday in range(7):
        opens, closes = request.form.get(f"opens-{weekday}", ""), request.form.get(f"closes-{weekday}", "")
        if not opens and not closes:
            continue
        try:
            start, end = time.fromisoformat(opens), time.fromisoformat(closes)
        except ValueError:
            start = end = None
        if start is None or end is None or start >= end:
            flash(str(_l("Opening hours: give both times, opening before closing (HH:MM).")), "error")
            return redirect(url_for("booking_staff.settings") + f"#office-{office.id}")
        wanted[weekday] = (start, end)
    for row in db.session.scalars(select(OpeningHours).where(OpeningHours.office_id == office.id)):
        db.session.delete(row)
    db.session.flush()
    for weekday, (start, end) in wanted.items():
        db.session.add(OpeningHours(office_id=office.id, weekday=weekday, opens=start, closes=end))
    service.rebuild_future(office)
    db.session.commit()
    flash(str(_l("The opening hours have been saved.")), "success")
    return redirect(url_for("booking_staff.settings") + f"#office-{office.id}")


def card_check_in_url(challenge_id: str) -> str:
    return url_for("booking_staff.card_check_in", challenge_id=challenge_id)


def init_app(app) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals["booking_card_check_in_url"] = card_check_in_url
