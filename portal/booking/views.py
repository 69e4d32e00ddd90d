"""The resident's side of booking (/me/bookings): find free slots by service, office and date,
book (optionally for a pre-filing), see the booking with its QR code and calendar file, cancel or
reschedule until the cut-off. "Taken" answers with the nearest free slots."""

from __future__ import annotations

from datetime import date, timedelta

import segno
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import format_datetime, get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import case, select

from portal.authz import allow
from portal.booking import notify, service
from portal.booking.models import Booking, Office, Service, Slot
from portal.extensions import db

PAGE = 60  # free times per page (a week, or less when it is busy with free times)
bp = Blueprint("booking", __name__, url_prefix="/me/bookings", template_folder="templates")

STATUS_LABELS = {
    "booked": _l("Booked"),
    "cancelled": _l("Cancelled"),
    "checked_in": _l("Checked in"),
    "done": _l("Done"),
    "no_show": _l("Did not come"),
}
ERRORS = {
    "taken": _l("Sorry, that time has just been taken. Nothing was booked. Here are the nearest free times:"),
    "already_booked": _l("You already have a booking at that time."),
    "too_soon": _l("That time is too soon: book at least %(hours)s hours ahead."),
    "too_far": _l("That time is too far ahead: book at most %(days)s days ahead."),
    "cutoff": _l(
        "This booking can no longer be changed online (the deadline has passed). Please call the office."
    ),
    "not_active": _l("This booking can no longer be changed."),
    "not_found": _l("That time does not exist. Please choose another one."),
    "bad_prefiling": _l("Choose one of your own sent pre-filings."),
    "bad_date": _l("Enter the date as YYYY-MM-DD, for example 2026-12-01."),
    "no_slot": _l("Choose a time."),
    "bad_service": _l("Choose a service."),
    "closure_exists": _l("That office is already closed on that day."),
}


def lang() -> str:
    return "en" if str(get_locale()) == "en" else "ja"


def pick(obj, field: str) -> str:
    """A Japanese/English pair of columns in the page's language."""
    return getattr(obj, f"{field}_{lang()}") or getattr(obj, f"{field}_ja")


def error_text(exc: service.BookingError) -> str:
    message = ERRORS.get(exc.code, exc.code)
    params = {k: v for k, v in exc.params.items() if k in ("hours", "days")}
    return str(message % params) if params else str(message)


def qr_data_uri(reference: str) -> str:
    return segno.make(reference, error="m", micro=False).svg_data_uri(scale=5, border=2)


def _helpers() -> dict:
    return {
        "pick": pick,
        "local_time": lambda at: format_datetime(at, "HH:mm"),
        "local_day": lambda at: format_datetime(at, "EEEE, d MMMM y" if lang() == "en" else "y年M月d日（E）"),
        "local_when": lambda at: format_datetime(
            at, "EEE d MMM y, HH:mm" if lang() == "en" else "y年M月d日（E）HH:mm"
        ),
        "status_labels": STATUS_LABELS,
        "fmt_ref": service.format_reference,
    }


@bp.app_context_processor
def _inject():
    return {"booking_helpers": _helpers}


def _own(booking_id: int) -> Booking:
    booking = db.session.get(Booking, booking_id)
    if booking is None or booking.resident_id != current_user.resident_id:
        abort(404)
    return booking


def _services() -> list[Service]:
    return list(db.session.scalars(select(Service).where(Service.active.is_(True)).order_by(Service.id)))


def _offices() -> list[Office]:
    return list(db.session.scalars(select(Office).where(Office.active.is_(True)).order_by(Office.id)))


def _prefilings() -> list:
    from portal.prefiling.models import PreFiling

    return list(
        db.session.scalars(
            select(PreFiling)
            .where(
                PreFiling.resident_id == current_user.resident_id,
                PreFiling.status.in_(("submitted", "correction_requested", "ready")),
            )
            .order_by(PreFiling.id.desc())
        )
    )


def _prefiling_names() -> dict[str, dict]:
    from portal.prefiling import catalogue

    return {d["code"]: d["name"] for d in catalogue.latest()}


@bp.route("/")
@allow("resident")
def index():
    mine = db.session.scalars(
        select(Booking)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(Booking.resident_id == current_user.resident_id)
        # Standing bookings first, soonest first; then the rest, latest first.
        .order_by(
            case((Booking.status.in_(("booked", "checked_in")), 0), else_=1),
            case((Booking.status.in_(("booked", "checked_in")), Slot.starts_at), else_=None),
            Slot.starts_at.desc(),
        )
        .limit(50)
    ).all()
    return render_template(
        "booking/index.html",
        mine=mine,
        services=_services(),
        offices=_offices(),
        today=service.today_in_tokyo(),
        **_helpers(),
    )


def _parse_day(text: str | None) -> date | None:
    if not text:
        return service.today_in_tokyo()
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def _slots_page(*, error: str | None = None, nearest: list[Slot] | None = None, status: int = 200):
    args = request.values
    svc = db.session.scalar(
        select(Service).where(Service.code == args.get("service", ""), Service.active.is_(True))
    )
    office_id = args.get("office", type=int) or None
    day = _parse_day(args.get("date"))
    reschedule_of = args.get("reschedule", type=int)
    moving = _own(reschedule_of) if reschedule_of else None
    problems = []
    if svc is None:
        problems.append(str(ERRORS["bad_service"]))
    if day is None:
        problems.append(str(ERRORS["bad_date"]))
    if problems:
        return (
            render_template(
                "booking/index.html",
                mine=[],
                services=_services(),
                offices=_offices(),
                today=service.today_in_tokyo(),
                problems=problems,
                chosen=args,
                **_helpers(),
            ),
            400,
        )
    slots = (
        nearest
        if nearest is not None
        else service.search(svc, office_id=office_id, on=day, days=7, limit=PAGE)
    )
    days: dict[date, list[Slot]] = {}
    for slot in slots:
        days.setdefault(service.tokyo(slot.starts_at).date(), []).append(slot)
    next_day = day + timedelta(days=7)
    if nearest is None and len(slots) == PAGE and len(days) > 1:
        # A full page: the last day may be cut short, so it starts the next page instead.
        next_day = max(days)
        del days[next_day]
    offices = {o.id: o for o in _offices()}
    return (
        render_template(
            "booking/slots.html",
            svc=svc,
            office_id=office_id,
            day=day,
            days=days,
            offices=offices,
            error=error,
            taken=nearest is not None,
            prefilings=_prefilings() if moving is None else [],
            prefiling_names=_prefiling_names(),
            moving=moving,
            next_day=next_day,
            prev_day=max(day - timedelta(days=7), service.today_in_tokyo()),
            lang=lang(),
            **_helpers(),
        ),
        status,
    )


@bp.route("/slots")
@allow("resident")
def slots():
    return _slots_page()


@bp.route("/", methods=["POST"])
@allow("resident")
def book():
    slot_id = request.form.get("slot", type=int)
    prefiling_id = request.form.get("prefiling", type=int) or None
    reschedule_of = request.form.get("reschedule", type=int)
    if slot_id is None:
        return _slots_page(error=str(ERRORS["no_slot"]), status=400)
    try:
        if reschedule_of:
            booking = service.reschedule(_own(reschedule_of), slot_id)
        else:
            booking = service.book(
                resident_id=current_user.resident_id,
                account_id=current_user.id,
                slot_id=slot_id,
                prefiling_id=prefiling_id,
            )
        db.session.commit()
    except service.SlotTaken as exc:
        db.session.rollback()
        return _slots_page(error=error_text(exc), nearest=exc.nearest, status=409)
    except service.BookingError as exc:
        db.session.rollback()
        return _slots_page(error=error_text(exc), status=exc.status)
    notify.confirm(booking, "rescheduled" if reschedule_of else "confirmed")
    flash(
        str(
            _l("Your appointment has been moved.")
            if reschedule_of
            else _l("Your appointment is booked. A confirmation is in your PO box and your e-mail.")
        ),
        "success",
    )
    return redirect(url_for("booking.show", booking_id=booking.id))


@bp.route("/<int:booking_id>")
@allow("resident")
def show(booking_id: int):
    booking = _own(booking_id)
    slot = booking.slot
    prefiling = None
    if booking.prefiling_id:
        from portal.prefiling.models import PreFiling

        prefiling = db.session.get(PreFiling, booking.prefiling_id)
    return render_template(
        "booking/show.html",
        booking=booking,
        slot=slot,
        svc=db.session.get(Service, slot.service_id),
        office=db.session.get(Office, slot.office_id),
        qr=qr_data_uri(booking.reference) if booking.status == "booked" else None,
        changeable=service.can_change(booking),
        cutoff=service.cutoff_at(booking),
        prefiling=prefiling,
        prefiling_names=_prefiling_names(),
        lang=lang(),
        **_helpers(),
    )


@bp.route("/<int:booking_id>/calendar.ics")
@allow("resident")
def calendar(booking_id: int):
    return _ics_response(_own(booking_id))


def _ics_response(booking: Booking):
    from flask import current_app

    return current_app.response_class(
        notify.ics(booking),
        mimetype="text/calendar",
        headers={
            "Content-Disposition": f'attachment; filename="booking-{booking.reference}.ics"',
            "Cache-Control": "private, no-store",
        },
    )


@bp.route("/<int:booking_id>/cancel", methods=["POST"])
@allow("resident")
def cancel(booking_id: int):
    booking = _own(booking_id)
    try:
        service.cancel(booking)
        db.session.commit()
    except service.BookingError as exc:
        db.session.rollback()
        flash(error_text(exc), "error")
        return redirect(url_for("booking.show", booking_id=booking_id))
    notify.confirm(booking, "cancelled")
    flash(str(_l("Your appointment has been cancelled.")), "success")
    return redirect(url_for("booking.show", booking_id=booking_id))


def init_app(app) -> None:
    app.register_blueprint(bp)
