"""On the day: check-in, waiting-number tickets (番号札), calling, and the figures.

Order of calling at an office: booked residents whose time has come (their slot starts within
``EARLY_MINUTES`` from now, or has started) go first, by their booked time; then everybody else
— walk-ins and early or late booked residents — by the time they took their number. Two counters
calling at once never get the same ticket: a call is a conditional UPDATE on ``status='waiting'``.
"""

from __future__ import annotations

import math
import secrets
import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from portal.booking import service
from portal.booking.models import Booking, Counter, Office, Service, Slot, Staffing, Ticket, counter_services
from portal.booking.service import BookingError
from portal.extensions import db
from portal.models_base import utcnow

EARLY_MINUTES = 10  # a booked ticket has priority from this long before its time
LATE_MINUTES = 30  # checked in later than this after the booked start: walk-in order
NEAR_AHEAD = 3  # "your turn is near" when this many or fewer are ahead
BOARD_RECENT = 8


def _today(now: datetime) -> date:
    return service.today_in_tokyo(now)


def _new_ticket(
    *,
    office_id: int,
    service_id: int,
    day: date,
    booking_id: int | None,
    resident_id: int | None,
    window_start: datetime | None,
    by: str,
    now: datetime,
) -> Ticket:
    """The next number of the office's day; a concurrent issue of the same number retries."""
    for _ in range(20):
        number = (
            db.session.scalar(
                select(func.max(Ticket.number)).where(Ticket.office_id == office_id, Ticket.day == day)
            )
            or 0
        ) + 1
        ticket = Ticket(
            office_id=office_id,
            service_id=service_id,
            day=day,
            number=number,
            token=secrets.token_urlsafe(16),
            booking_id=booking_id,
            resident_id=resident_id,
            window_start=window_start,
            status="waiting",
            issued_at=now,
            issued_by=by,
        )
        try:
            with db.session.begin_nested():
                db.session.add(ticket)
        except IntegrityError:
            continue
        return ticket
    raise BookingError("busy", 503)


def walk_in(
    office: Office, svc: Service, *, by: str = "kiosk", resident_id: int | None = None, now=None
) -> Ticket:
    """A number for somebody without a booking (the caller commits)."""
    now = now or utcnow()
    # No closed-day check: a kiosk in use means the office is open (休日開庁 days included).
    if svc not in office.services:
        raise BookingError("not_found", 404)
    return _new_ticket(
        office_id=office.id,
        service_id=svc.id,
        day=_today(now),
        booking_id=None,
        resident_id=resident_id,
        window_start=None,
        by=by,
        now=now,
    )


def check_in(booking: Booking, *, office: Office | None = None, by: str = "kiosk", now=None) -> Ticket:
    """A booked resident arrives: their ticket (the same one if they check in twice). At a kiosk,
    ``office`` is where the kiosk stands: a booking for another office is refused."""
    now = now or utcnow()
    slot = db.session.get(Slot, booking.slot_id)
    if office is not None and slot.office_id != office.id:
        raise BookingError("other_office", 409)
    existing = db.session.scalar(select(Ticket).where(Ticket.booking_id == booking.id))
    if existing is not None:
        return existing
    if booking.status != "booked":
        raise BookingError("not_active", 409)
    if service.tokyo(slot.starts_at).date() != _today(now):
        raise BookingError("not_today", 409)
    claimed = db.session.execute(
        update(Booking)
        .where(Booking.id == booking.id, Booking.status == "booked")
        .values(status="checked_in", checked_in_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        raise BookingError("not_active", 409)
    on_time = now <= slot.starts_at + timedelta(minutes=LATE_MINUTES)
    ticket = _new_ticket(
        office_id=slot.office_id,
        service_id=slot.service_id,
        day=_today(now),
        booking_id=booking.id,
        resident_id=booking.resident_id,
        window_start=slot.starts_at if on_time else None,
        by=by,
        now=now,
    )
    db.session.refresh(booking)
    return ticket


def _priority(ticket: Ticket, now: datetime) -> tuple:
    if ticket.window_start is not None and ticket.window_start - timedelta(minutes=EARLY_MINUTES) <= now:
        return (0, ticket.window_start, ticket.number)
    return (1, ticket.issued_at, ticket.number)


def waiting(office_id: int, day: date, now: datetime, service_ids: set[int] | None = None) -> list[Ticket]:
    """The office's waiting tickets in calling order (optionally only some services)."""
    stmt = select(Ticket).where(Ticket.office_id == office_id, Ticket.day == day, Ticket.status == "waiting")
    if service_ids is not None:
        stmt = stmt.where(Ticket.service_id.in_(service_ids))
    return sorted(db.session.scalars(stmt), key=lambda t: _priority(t, now))


def counter_service_ids(counter: Counter) -> set[int]:
    return {s.id for s in counter.services}


def current(counter: Counter, day: date) -> Ticket | None:
    return db.session.scalar(
        select(Ticket)
        .where(Ticket.counter_id == counter.id, Ticket.day == day, Ticket.status == "called")
        .order_by(Ticket.called_at.desc())
    )


def finish(ticket: Ticket, outcome: str, *, now=None) -> None:
    """``done`` or ``no_show`` for a called ticket (and its booking)."""
    now = now or utcnow()
    if outcome not in ("done", "no_show"):
        raise ValueError(outcome)
    if ticket.status != "called":
        raise BookingError("not_called", 409)
    ticket.status = outcome
    ticket.done_at = now
    if ticket.booking_id:
        db.session.execute(
            update(Booking)
            .where(Booking.id == ticket.booking_id)
            .values(status="done" if outcome == "done" else "no_show")
            .execution_options(synchronize_session=False)
        )
    db.session.flush()


def call_next(counter: Counter, *, now=None) -> Ticket | None:
    """Call the next ticket this counter serves; the counter's current ticket is done first.
    Returns None when nobody waits."""
    now = now or utcnow()
    day = _today(now)
    previous = current(counter, day)
    if previous is not None:
        finish(previous, "done", now=now)
    for ticket in waiting(counter.office_id, day, now, counter_service_ids(counter)):
        taken = db.session.execute(
            update(Ticket)
            .where(Ticket.id == ticket.id, Ticket.status == "waiting")
            .values(status="called", called_at=now, counter_id=counter.id)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount == 1:
            db.session.flush()
            db.session.refresh(ticket)
            return ticket
    return None


def recall(ticket: Ticket, *, now=None) -> None:
    if ticket.status != "called":
        raise BookingError("not_called", 409)
    ticket.recalls += 1
    ticket.recalled_at = now or utcnow()
    db.session.flush()


def near_turn(office_id: int, *, now=None) -> list[tuple[Ticket, int]]:
    """Tickets whose holder should hear that their turn is near (once each): (ticket, ahead).
    Marks them; the caller commits, then sends (notify.notify_near)."""
    now = now or utcnow()
    out = []
    for ahead, ticket in enumerate(waiting(office_id, _today(now), now)):
        if ahead > NEAR_AHEAD:
            break
        if ticket.resident_id is None or ticket.near_notified_at is not None:
            continue
        marked = db.session.execute(
            update(Ticket)
            .where(Ticket.id == ticket.id, Ticket.near_notified_at.is_(None))
            .values(near_notified_at=now)
            .execution_options(synchronize_session=False)
        )
        if marked.rowcount == 1:
            out.append((ticket, ahead))
    return out


# --- estimates, board, figures ---------------------------------------------------------------------


def staffed_counters(office_id: int, service_id: int, day: date) -> int:
    counters = db.session.scalars(
        select(Counter.id)
        .join(counter_services, counter_services.c.counter_id == Counter.id)
        .where(Counter.office_id == office_id, counter_services.c.service_id == service_id)
    ).all()
    closed = set(
        db.session.scalars(
            select(Staffing.counter_id).where(
                Staffing.counter_id.in_(counters), Staffing.day == day, Staffing.staffed.is_(False)
            )
        )
    )
    return max(1, len([c for c in counters if c not in closed]))


def average_service_minutes(office_id: int, service_id: int, day: date) -> float:
    """Today's mean minutes at the counter for the service (the last 20), else its slot length."""
    rows = db.session.execute(
        select(Ticket.called_at, Ticket.done_at)
        .where(
            Ticket.office_id == office_id,
            Ticket.service_id == service_id,
            Ticket.day == day,
            Ticket.status == "done",
        )
        .order_by(Ticket.done_at.desc())
        .limit(20)
    ).all()
    minutes = [(d - c).total_seconds() / 60 for c, d in rows if c and d]
    if minutes:
        return max(1.0, statistics.mean(minutes))
    svc = db.session.get(Service, service_id)
    return float(svc.duration_min)


@dataclass
class Position:
    ahead: int
    minutes: int


def position(ticket: Ticket, *, now=None) -> Position | None:
    """How many are ahead of a waiting ticket (for its service) and the estimated wait."""
    now = now or utcnow()
    if ticket.status != "waiting":
        return None
    queue = waiting(ticket.office_id, ticket.day, now, {ticket.service_id})
    ahead = next((i for i, t in enumerate(queue) if t.id == ticket.id), len(queue))
    per = average_service_minutes(ticket.office_id, ticket.service_id, ticket.day)
    counters = staffed_counters(ticket.office_id, ticket.service_id, ticket.day)
    return Position(ahead=ahead, minutes=math.ceil(ahead * per / counters))


def board(office: Office, *, now=None) -> dict:
    """What the calling board shows: the numbers called most recently (a recall counts as a new
    call) with their counters, and how many wait."""
    now = now or utcnow()
    day = _today(now)
    called = db.session.scalars(
        select(Ticket)
        .where(Ticket.office_id == office.id, Ticket.day == day, Ticket.status == "called")
        .order_by(func.coalesce(Ticket.recalled_at, Ticket.called_at).desc())
        .limit(BOARD_RECENT)
    ).all()
    counters = {c.id: c for c in office.counters}
    waiting_count = db.session.scalar(
        select(func.count()).where(
            Ticket.office_id == office.id, Ticket.day == day, Ticket.status == "waiting"
        )
    )
    return {
        "called": [
            {
                "number": t.number,
                "counter": counters[t.counter_id].number if t.counter_id in counters else None,
                "counter_ja": counters[t.counter_id].name_ja if t.counter_id in counters else "",
                "counter_en": counters[t.counter_id].name_en if t.counter_id in counters else "",
                "recall": t.recalls,
                "at": (t.recalled_at or t.called_at).isoformat() if (t.recalled_at or t.called_at) else None,
            }
            for t in called
        ],
        "waiting": waiting_count or 0,
    }


def figures(office_id: int, first: date, last: date) -> dict:
    """Waiting time, service time, no-shows, bookings vs walk-ins over days (inclusive)."""
    tickets = db.session.scalars(
        select(Ticket).where(Ticket.office_id == office_id, Ticket.day >= first, Ticket.day <= last)
    ).all()
    waits = [(t.called_at - t.issued_at).total_seconds() / 60 for t in tickets if t.called_at]
    serves = [
        (t.done_at - t.called_at).total_seconds() / 60
        for t in tickets
        if t.status == "done" and t.done_at and t.called_at
    ]
    start, _ = service.day_bounds(first)
    _, end = service.day_bounds(last)
    booking_rows = db.session.execute(
        select(Booking.status, func.count())
        .join(Slot, Slot.id == Booking.slot_id)
        .where(Slot.office_id == office_id, Slot.starts_at >= start, Slot.starts_at < end)
        .group_by(Booking.status)
    ).all()
    by_status = dict(booking_rows)

    def summary(values: list[float]) -> dict:
        if not values:
            return {"n": 0, "mean": None, "median": None, "p90": None}
        ordered = sorted(values)
        return {
            "n": len(values),
            "mean": round(statistics.mean(values), 1),
            "median": round(statistics.median(values), 1),
            "p90": round(ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)], 1),
        }

    return {
        "tickets": len(tickets),
        "booked_tickets": sum(1 for t in tickets if t.booking_id),
        "walk_ins": sum(1 for t in tickets if not t.booking_id),
        "wait": summary(waits),
        "service": summary(serves),
        "ticket_no_shows": sum(1 for t in tickets if t.status == "no_show"),
        "bookings": {
            k: by_status.get(k, 0) for k in ("booked", "checked_in", "done", "no_show", "cancelled")
        },
    }


def mark_no_shows(office_id: int, day: date, *, now=None) -> int:
    """Bookings of a past day (or whose slot ended an hour ago) that never checked in: no-show."""
    now = now or utcnow()
    start, end = service.day_bounds(day)
    ids = db.session.scalars(
        select(Booking.id)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(
            Slot.office_id == office_id,
            Slot.starts_at >= start,
            Slot.starts_at < end,
            Slot.ends_at < now - timedelta(hours=1),
            Booking.status == "booked",
        )
    ).all()
    if ids:
        db.session.execute(
            update(Booking)
            .where(Booking.id.in_(ids), Booking.status == "booked")
            .values(status="no_show")
            .execution_options(synchronize_session=False)
        )
    return len(ids)
