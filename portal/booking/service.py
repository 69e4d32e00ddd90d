"""Booking core: closed days, slots (materialised lazily), the free-slot search, booking without
overbooking, cancel and reschedule with their cut-off, and the nearest free slots when one is taken.

Times are stored in UTC; days, opening hours and closures are the city's (Asia/Tokyo).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import jpholiday
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from portal.booking.models import Booking, Closure, Office, OpeningHours, Service, Slot, office_services
from portal.extensions import db
from portal.models_base import utcnow

TOKYO = ZoneInfo("Asia/Tokyo")
NEAREST = 5  # free slots offered when the chosen one is taken
SEARCH_DAYS_MAX = 366
# References in the QR code and read out at a counter: no 0/O, 1/I/L confusion.
REFERENCE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


class BookingError(Exception):
    """A domain refusal; ``code`` names it (views turn it into a sentence in ja/en or JSON)."""

    def __init__(self, code: str, status: int = 400, **params) -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.params = params


class SlotTaken(BookingError):
    """The slot filled up (or closed) meanwhile; ``nearest`` are free slots close to it."""

    def __init__(self, nearest: list[Slot]) -> None:
        super().__init__("taken", 409)
        self.nearest = nearest


# --- days ------------------------------------------------------------------------------------------


def today_in_tokyo(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(TOKYO).date()


def tokyo(at: datetime) -> datetime:
    return at.astimezone(TOKYO)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC instants at which a Tokyo day starts and ends."""
    start = datetime.combine(day, time(), TOKYO).astimezone(UTC)
    return start, start + timedelta(days=1)


def is_year_end(day: date) -> bool:
    """年末年始: 29 December to 3 January (行政機関の休日に関する法律 第1条)."""
    return (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)


def closed_reason(office_id: int, day: date, *, hours: dict[int, OpeningHours] | None = None) -> str | None:
    """Why an office is closed on a day (None: open): ``holiday:<name>``, ``year_end``,
    ``closure:<reason>`` or ``weekday`` (no opening hours that weekday)."""
    name = jpholiday.is_holiday_name(day)
    if name:
        return f"holiday:{name}"
    if is_year_end(day):
        return "year_end"
    closure = db.session.scalar(
        select(Closure).where(
            Closure.day == day, or_(Closure.office_id == office_id, Closure.office_id.is_(None))
        )
    )
    if closure is not None:
        return f"closure:{closure.reason_ja}"
    if hours is None:
        hours = opening_hours(office_id)
    if day.weekday() not in hours:
        return "weekday"
    return None


def opening_hours(office_id: int) -> dict[int, OpeningHours]:
    return {
        h.weekday: h
        for h in db.session.scalars(select(OpeningHours).where(OpeningHours.office_id == office_id))
    }


# --- slots -----------------------------------------------------------------------------------------


def _insert_ignore(table):
    dialect = db.session.get_bind().dialect.name
    return (
        postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    ).on_conflict_do_nothing()


def day_starts(service: Service, hours: OpeningHours, day: date) -> list[tuple[datetime, datetime]]:
    """The slots of one service on one open day: from opening, each ``duration`` plus ``buffer``
    apart, the last one ending by closing time."""
    out = []
    start = datetime.combine(day, hours.opens, TOKYO)
    close = datetime.combine(day, hours.closes, TOKYO)
    step = timedelta(minutes=service.duration_min + service.buffer_min)
    length = timedelta(minutes=service.duration_min)
    while start + length <= close:
        out.append((start.astimezone(UTC), (start + length).astimezone(UTC)))
        start += step
    return out


def materialise(office: Office, through: date, *, start: date | None = None) -> int:
    """Create the slots of every service the office offers, up to ``through`` (inclusive), from
    the day after the last materialised one. Closed days get none. Idempotent (insert-ignore)."""
    first = start or today_in_tokyo()
    if office.slots_through is not None:
        first = max(first, office.slots_through + timedelta(days=1))
    if first > through:
        return 0
    hours = opening_hours(office.id)
    closures = {
        c.day
        for c in db.session.scalars(
            select(Closure).where(
                Closure.day.between(first, through),
                or_(Closure.office_id == office.id, Closure.office_id.is_(None)),
            )
        )
    }
    rows = []
    day = first
    while day <= through:
        if (
            day.weekday() in hours
            and day not in closures
            and closed_reason(office.id, day, hours=hours) is None
        ):
            for service in office.services:
                if not service.active:
                    continue
                for s, e in day_starts(service, hours[day.weekday()], day):
                    rows.append(
                        {
                            "office_id": office.id,
                            "service_id": service.id,
                            "starts_at": s,
                            "ends_at": e,
                            "capacity": service.capacity,
                            "booked": 0,
                            "closed": False,
                        }
                    )
        day += timedelta(days=1)
    for i in range(0, len(rows), 5000):
        db.session.execute(_insert_ignore(Slot.__table__), rows[i : i + 5000])
    db.session.execute(update(Office).where(Office.id == office.id).values(slots_through=through))
    office.slots_through = through
    return len(rows)


def horizon_day(now: datetime | None = None) -> date:
    longest = db.session.scalar(select(Service.horizon_days).order_by(Service.horizon_days.desc()).limit(1))
    return today_in_tokyo(now) + timedelta(days=longest or 0)


def ensure_slots(through: date, *, now: datetime | None = None) -> int:
    """Materialise every active office up to ``through`` (capped at the longest horizon); cheap
    when already done (one query). Commits what it made."""
    through = min(through, horizon_day(now))
    due = db.session.scalars(
        select(Office).where(
            Office.active.is_(True), or_(Office.slots_through.is_(None), Office.slots_through < through)
        )
    ).all()
    made = 0
    for office in due:
        made += materialise(office, through, start=today_in_tokyo(now))
    if due:
        db.session.commit()
    return made


def rebuild_future(office: Office, *, now: datetime | None = None) -> None:
    """After opening hours or services change: drop the future slots nobody booked and make them
    again from the new settings (booked slots stay, so no booking is lost)."""
    start, _ = day_bounds(today_in_tokyo(now) + timedelta(days=1))
    db.session.execute(
        delete(Slot).where(Slot.office_id == office.id, Slot.starts_at >= start, Slot.booked == 0)
    )
    office.slots_through = today_in_tokyo(now)
    db.session.flush()


# --- closures --------------------------------------------------------------------------------------


def add_closure(
    office_id: int | None, day: date, reason_ja: str, reason_en: str, *, by: str
) -> list[Booking]:
    """Close an office (or all of them) for a day; its slots close. Returns the bookings that
    stand on that day, for staff to contact (they are not cancelled silently)."""
    if db.session.scalar(
        select(Closure.id).where(
            Closure.day == day,
            Closure.office_id.is_(None) if office_id is None else Closure.office_id == office_id,
        )
    ):
        raise BookingError("closure_exists", 409)
    db.session.add(
        Closure(office_id=office_id, day=day, reason_ja=reason_ja, reason_en=reason_en, created_by=by)
    )
    start, end = day_bounds(day)
    where = [Slot.starts_at >= start, Slot.starts_at < end]
    if office_id is not None:
        where.append(Slot.office_id == office_id)
    db.session.execute(update(Slot).where(*where).values(closed=True))
    db.session.flush()
    return list(
        db.session.scalars(
            select(Booking).join(Slot, Slot.id == Booking.slot_id).where(*where, Booking.status == "booked")
        )
    )


def remove_closure(closure: Closure) -> None:
    office_id, day = closure.office_id, closure.day
    db.session.delete(closure)
    db.session.flush()
    start, end = day_bounds(day)
    offices = [office_id] if office_id is not None else list(db.session.scalars(select(Office.id)))
    for oid in offices:
        if closed_reason(oid, day) is None:
            db.session.execute(
                update(Slot)
                .where(Slot.office_id == oid, Slot.starts_at >= start, Slot.starts_at < end)
                .values(closed=False)
            )
    db.session.flush()


# --- search ----------------------------------------------------------------------------------------


def bookable_window(service: Service, now: datetime) -> tuple[datetime, datetime]:
    """From now + lead time to the end of the last day within the horizon."""
    _, end = day_bounds(today_in_tokyo(now) + timedelta(days=service.horizon_days))
    return now + timedelta(hours=service.lead_hours), end


def free_slots_query(service: Service, *, start: datetime, end: datetime, office_id: int | None = None):
    stmt = select(Slot).where(
        Slot.service_id == service.id,
        Slot.starts_at >= start,
        Slot.starts_at < end,
        Slot.closed.is_(False),
        Slot.booked < Slot.capacity,
    )
    if office_id is not None:
        stmt = stmt.where(Slot.office_id == office_id)
    return stmt


def search(
    service: Service,
    *,
    office_id: int | None = None,
    on: date | None = None,
    days: int = 7,
    limit: int = 200,
    now: datetime | None = None,
) -> list[Slot]:
    """Free slots of a service (one office or all) from a day for ``days`` days, earliest first."""
    now = now or utcnow()
    days = max(1, min(days, SEARCH_DAYS_MAX))
    first = on or today_in_tokyo(now)
    ensure_slots(first + timedelta(days=days), now=now)
    earliest, latest = bookable_window(service, now)
    start = max(day_bounds(first)[0], earliest)
    end = min(day_bounds(first + timedelta(days=days - 1))[1], latest)
    if start >= end:
        return []
    stmt = free_slots_query(service, start=start, end=end, office_id=office_id)
    return list(db.session.scalars(stmt.order_by(Slot.starts_at, Slot.office_id).limit(limit)))


def nearest_free(slot: Slot, *, limit: int = NEAREST, now: datetime | None = None) -> list[Slot]:
    """Free slots of the same service at the same office closest in time to ``slot`` (both sides),
    then at other offices if the office has too few."""
    now = now or utcnow()
    service = db.session.get(Service, slot.service_id)
    earliest, latest = bookable_window(service, now)

    def around(office_filter) -> list[Slot]:
        later = free_slots_query(service, start=max(slot.starts_at, earliest), end=latest).where(
            office_filter, Slot.id != slot.id
        )
        earlier = free_slots_query(service, start=earliest, end=slot.starts_at).where(office_filter)
        after = list(db.session.scalars(later.order_by(Slot.starts_at, Slot.office_id).limit(limit)))
        before = list(
            db.session.scalars(earlier.order_by(Slot.starts_at.desc(), Slot.office_id).limit(limit))
        )
        return sorted(after + before, key=lambda s: abs((s.starts_at - slot.starts_at).total_seconds()))[
            :limit
        ]

    found = around(Slot.office_id == slot.office_id)
    if len(found) < limit:
        found += around(Slot.office_id != slot.office_id)[: limit - len(found)]
    return sorted(found, key=lambda s: (s.starts_at, s.office_id))


# --- booking ---------------------------------------------------------------------------------------


def new_reference() -> str:
    return "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(10))


def format_reference(reference: str) -> str:
    return f"{reference[:5]}-{reference[5:]}"


def normalise_reference(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKC", text or "").upper().replace("-", "").replace(" ", "").strip()


def _check_window(service: Service, slot: Slot, now: datetime) -> None:
    earliest, latest = bookable_window(service, now)
    if slot.starts_at < earliest:
        raise BookingError("too_soon", 409, hours=service.lead_hours)
    if slot.starts_at >= latest:
        raise BookingError("too_far", 409, days=service.horizon_days)


def _take(slot_id: int) -> bool:
    """The one place a seat is taken: a conditional UPDATE the database evaluates under its row
    lock (PostgreSQL re-checks ``booked < capacity`` after waiting for a concurrent writer)."""
    result = db.session.execute(
        update(Slot)
        .where(Slot.id == slot_id, Slot.booked < Slot.capacity, Slot.closed.is_(False))
        .values(booked=Slot.booked + 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _release(slot_id: int) -> None:
    db.session.execute(
        update(Slot)
        .where(Slot.id == slot_id, Slot.booked > 0)
        .values(booked=Slot.booked - 1)
        .execution_options(synchronize_session=False)
    )


def _prefiling_for(resident_id: int, prefiling_id: int | None):
    if prefiling_id is None:
        return None
    from portal.prefiling.models import PreFiling

    prefiling = db.session.get(PreFiling, prefiling_id)
    if (
        prefiling is None
        or prefiling.resident_id != resident_id
        or prefiling.status in ("draft", "withdrawn")
    ):
        raise BookingError("bad_prefiling", 400)
    return prefiling


def book(
    *,
    resident_id: int,
    slot_id: int,
    account_id: int | None = None,
    prefiling_id: int | None = None,
    now: datetime | None = None,
) -> Booking:
    """Take a seat in a slot for a resident (the caller commits). Raises ``SlotTaken`` with the
    nearest free slots when it is full or closed, ``BookingError('already_booked')`` when the
    resident already holds this slot."""
    now = now or utcnow()
    slot = db.session.get(Slot, slot_id)
    if slot is None:
        raise BookingError("not_found", 404)
    service = db.session.get(Service, slot.service_id)
    if service is None or not service.active:
        raise BookingError("not_found", 404)
    _check_window(service, slot, now)
    _prefiling_for(resident_id, prefiling_id)
    if not _take(slot_id):
        db.session.rollback()
        raise SlotTaken(nearest_free(db.session.get(Slot, slot_id), now=now))
    booking = Booking(
        reference=new_reference(),
        slot_id=slot_id,
        active_slot_id=slot_id,
        resident_id=resident_id,
        account_id=account_id,
        prefiling_id=prefiling_id,
        status="booked",
        created_at=now,
    )
    db.session.add(booking)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()  # undoes the seat taken above, too
        raise BookingError("already_booked", 409) from None
    return booking


def can_change(booking: Booking, now: datetime | None = None) -> bool:
    """Cancel or reschedule only while booked and before the service's cut-off."""
    if booking.status != "booked":
        return False
    service = db.session.get(Service, booking.slot.service_id)
    return (now or utcnow()) < booking.slot.starts_at - timedelta(hours=service.cutoff_hours)


def cutoff_at(booking: Booking) -> datetime:
    service = db.session.get(Service, booking.slot.service_id)
    return booking.slot.starts_at - timedelta(hours=service.cutoff_hours)


def cancel(booking: Booking, *, now: datetime | None = None, by_staff: bool = False) -> None:
    """Cancel a booking and free its seat (the caller commits). Residents only before the cut-off."""
    now = now or utcnow()
    if booking.status != "booked":
        raise BookingError("not_active", 409)
    if not by_staff and not can_change(booking, now):
        raise BookingError("cutoff", 409, at=cutoff_at(booking))
    done = db.session.execute(
        update(Booking)
        .where(Booking.id == booking.id, Booking.status == "booked")
        .values(status="cancelled", active_slot_id=None, cancelled_at=now, sequence=Booking.sequence + 1)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        raise BookingError("not_active", 409)
    _release(booking.slot_id)
    db.session.flush()
    db.session.refresh(booking)


def reschedule(booking: Booking, slot_id: int, *, now: datetime | None = None) -> Booking:
    """Move a booking to another slot of the same service in one transaction: the new seat is
    taken first, then the old one freed; before the cut-off only."""
    now = now or utcnow()
    if booking.status != "booked":
        raise BookingError("not_active", 409)
    if not can_change(booking, now):
        raise BookingError("cutoff", 409, at=cutoff_at(booking))
    new = db.session.get(Slot, slot_id)
    if new is None or new.service_id != booking.slot.service_id:
        raise BookingError("not_found", 404)
    if new.id == booking.slot_id:
        raise BookingError("already_booked", 409)
    _check_window(db.session.get(Service, new.service_id), new, now)
    old_slot_id, booking_id = booking.slot_id, booking.id
    if not _take(new.id):
        db.session.rollback()
        raise SlotTaken(nearest_free(db.session.get(Slot, slot_id), now=now))
    try:
        db.session.execute(
            update(Booking)
            .where(Booking.id == booking_id, Booking.status == "booked")
            .values(slot_id=new.id, active_slot_id=new.id, reminded_at=None, sequence=Booking.sequence + 1)
            .execution_options(synchronize_session=False)
        )
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise BookingError("already_booked", 409) from None
    _release(old_slot_id)
    db.session.flush()
    booking = db.session.get(Booking, booking_id)
    db.session.refresh(booking)
    return booking


def by_reference(text: str) -> Booking | None:
    ref = normalise_reference(text)
    if not ref:
        return None
    return db.session.scalar(select(Booking).where(Booking.reference == ref))


@dataclass
class DaySchedule:
    office: Office
    day: date
    bookings: list[Booking] = field(default_factory=list)


def day_bookings(office_id: int, day: date) -> list[Booking]:
    start, end = day_bounds(day)
    return list(
        db.session.scalars(
            select(Booking)
            .join(Slot, Slot.id == Booking.slot_id)
            .where(Slot.office_id == office_id, and_(Slot.starts_at >= start, Slot.starts_at < end))
            .where(Booking.status != "cancelled")
            .order_by(Slot.starts_at, Booking.id)
        )
    )


def offices_offering(service_id: int) -> list[Office]:
    return list(
        db.session.scalars(
            select(Office)
            .join(office_services, office_services.c.office_id == Office.id)
            .where(office_services.c.service_id == service_id, Office.active.is_(True))
            .order_by(Office.id)
        )
    )
