"""Offices, counters, services, opening hours, closures, slots, bookings and waiting-number tickets.

No overbooking is a database rule, not an application check: a ``Slot`` row per (office, service,
start) carries ``capacity`` and ``booked``; booking is ``UPDATE … SET booked = booked + 1 WHERE
booked < capacity`` (a row lock on PostgreSQL, a serialised writer on SQLite), and the CHECK
``booked <= capacity`` refuses any write that would get past it. A resident holds at most one
active booking per slot: ``active_slot_id`` equals ``slot_id`` while the booking stands and is NULL
once it is cancelled, under a unique constraint with ``resident_id``.
"""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models_base import UTCDateTime, utcnow

BOOKING_STATUSES = ("booked", "cancelled", "checked_in", "done", "no_show")
TICKET_STATUSES = ("waiting", "called", "done", "no_show")

office_services = Table(
    "booking_office_services",
    db.metadata,
    Column("office_id", ForeignKey("booking_offices.id"), primary_key=True),
    Column("service_id", ForeignKey("booking_services.id"), primary_key=True),
)
counter_services = Table(
    "booking_counter_services",
    db.metadata,
    Column("counter_id", ForeignKey("booking_counters.id"), primary_key=True),
    Column("service_id", ForeignKey("booking_services.id"), primary_key=True),
)


class Office(db.Model):
    """区役所・支所: a ward office or branch with counters."""

    __tablename__ = "booking_offices"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name_ja: Mapped[str] = mapped_column(String(80))
    name_en: Mapped[str] = mapped_column(String(120))
    address_ja: Mapped[str] = mapped_column(String(200), default="")
    ward_id: Mapped[int | None] = mapped_column(ForeignKey("wards.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Slots exist up to this day (materialised lazily by searches, or by `flask booking slots`).
    slots_through: Mapped[date | None] = mapped_column(Date)

    services: Mapped[list[Service]] = relationship(secondary=office_services, order_by="Service.id")
    counters: Mapped[list[Counter]] = relationship(order_by="Counter.number", back_populates="office")


class Service(db.Model):
    """A counter service residents book: 転入・転出, 住民票, マイナンバーカード受取, 子育て …"""

    __tablename__ = "booking_services"
    __table_args__ = (
        CheckConstraint("duration_min > 0 AND capacity > 0 AND buffer_min >= 0", name="positive"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_ja: Mapped[str] = mapped_column(String(80))
    name_en: Mapped[str] = mapped_column(String(120))
    duration_min: Mapped[int] = mapped_column(Integer, default=30)  # one slot
    capacity: Mapped[int] = mapped_column(Integer, default=1)  # residents per slot
    buffer_min: Mapped[int] = mapped_column(Integer, default=0)  # gap after each slot
    lead_hours: Mapped[int] = mapped_column(Integer, default=2)  # book at least this far ahead
    horizon_days: Mapped[int] = mapped_column(Integer, default=60)  # and at most this far
    cutoff_hours: Mapped[int] = mapped_column(Integer, default=24)  # cancel/reschedule until
    prefiling_codes: Mapped[str] = mapped_column(String(200), default="")  # comma-separated
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Counter(db.Model):
    """窓口: one counter of an office, serving some services."""

    __tablename__ = "booking_counters"
    __table_args__ = (UniqueConstraint("office_id", "number", name="uq_booking_counters_office_number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("booking_offices.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    name_ja: Mapped[str] = mapped_column(String(80))
    name_en: Mapped[str] = mapped_column(String(120))

    office: Mapped[Office] = relationship(back_populates="counters")
    services: Mapped[list[Service]] = relationship(secondary=counter_services, order_by="Service.id")


class OpeningHours(db.Model):
    """開庁時間: one period per office and weekday (0 = Monday); no row = closed that weekday."""

    __tablename__ = "booking_opening_hours"
    __table_args__ = (
        UniqueConstraint("office_id", "weekday", name="uq_booking_opening_hours_office_weekday"),
        CheckConstraint("weekday BETWEEN 0 AND 6 AND opens < closes", name="sensible"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("booking_offices.id"))
    weekday: Mapped[int] = mapped_column(Integer)
    opens: Mapped[time] = mapped_column(Time)
    closes: Mapped[time] = mapped_column(Time)


class Closure(db.Model):
    """An ad-hoc closure (臨時閉庁) of one office, or of every office when ``office_id`` is NULL.
    National holidays and 29 Dec–3 Jan are rules (service.closed_reason), not rows."""

    __tablename__ = "booking_closures"
    __table_args__ = (UniqueConstraint("office_id", "day", name="uq_booking_closures_office_day"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int | None] = mapped_column(ForeignKey("booking_offices.id"))
    day: Mapped[date] = mapped_column(Date, index=True)
    reason_ja: Mapped[str] = mapped_column(String(120))
    reason_en: Mapped[str] = mapped_column(String(160))
    created_by: Mapped[str] = mapped_column(String(64))


class Staffing(db.Model):
    """How many counters an office staffs on a day for the estimated wait (default: all)."""

    __tablename__ = "booking_staffing"
    __table_args__ = (UniqueConstraint("counter_id", "day", name="uq_booking_staffing_counter_day"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    counter_id: Mapped[int] = mapped_column(ForeignKey("booking_counters.id"))
    day: Mapped[date] = mapped_column(Date)
    staffed: Mapped[bool] = mapped_column(Boolean, default=True)


class Slot(db.Model):
    """One bookable time at one office for one service; ``booked`` never exceeds ``capacity``."""

    __tablename__ = "booking_slots"
    __table_args__ = (
        UniqueConstraint(
            "office_id", "service_id", "starts_at", name="uq_booking_slots_office_service_start"
        ),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="within_capacity"),
        # The free-slot search: one service, a time range, all or one office.
        Index("ix_booking_slots_search", "service_id", "starts_at", "office_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("booking_offices.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("booking_services.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)

    office: Mapped[Office] = relationship()
    service: Mapped[Service] = relationship()


class Booking(db.Model):
    """予約: a resident's visit in a slot; ``reference`` is in the QR code shown at the kiosk."""

    __tablename__ = "bookings"
    __table_args__ = (
        UniqueConstraint("resident_id", "active_slot_id", name="uq_bookings_resident_active_slot"),
        CheckConstraint(
            "status IN ('booked', 'cancelled', 'checked_in', 'done', 'no_show')", name="status_known"
        ),
        Index("ix_bookings_slot_status", "slot_id", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("booking_slots.id"))
    active_slot_id: Mapped[int | None] = mapped_column(ForeignKey("booking_slots.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("resident_accounts.id"))
    prefiling_id: Mapped[int | None] = mapped_column(ForeignKey("prefilings.id"))
    status: Mapped[str] = mapped_column(String(12), default="booked")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sequence: Mapped[int] = mapped_column(Integer, default=0)  # the .ics SEQUENCE: +1 per change
    note: Mapped[str | None] = mapped_column(Text)

    slot: Mapped[Slot] = relationship(foreign_keys=[slot_id])


class Ticket(db.Model):
    """番号札: a waiting number at an office on a day, for a booked resident or a walk-in."""

    __tablename__ = "booking_tickets"
    __table_args__ = (
        UniqueConstraint("office_id", "day", "number", name="uq_booking_tickets_office_day_number"),
        CheckConstraint("status IN ('waiting', 'called', 'done', 'no_show')", name="status_known"),
        Index("ix_booking_tickets_office_day_status", "office_id", "day", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("booking_offices.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("booking_services.id"))
    day: Mapped[date] = mapped_column(Date)
    number: Mapped[int] = mapped_column(Integer)
    token: Mapped[str] = mapped_column(String(32), unique=True)  # the phone page's address
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"), unique=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    # The booked start: within its window the ticket goes before walk-ins.
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default="waiting")
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    counter_id: Mapped[int | None] = mapped_column(ForeignKey("booking_counters.id"))
    recalls: Mapped[int] = mapped_column(Integer, default=0)
    recalled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    near_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    issued_by: Mapped[str] = mapped_column(String(64), default="kiosk")

    service: Mapped[Service] = relationship()
    counter: Mapped[Counter | None] = relationship()
    booking: Mapped[Booking | None] = relationship()
