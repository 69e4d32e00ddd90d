from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models_base import UTCDateTime, utcnow
from portal.registry.models import Resident

STAY_METHODS = ("card", "text_ap", "hand", "unregistered")
STAY_STATUSES = ("active", "moved", "left")


class DisasterEvent(db.Model):
    """A disaster (災害) for which shelters are opened."""

    __tablename__ = "disaster_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_ja: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Shelter(db.Model):
    """A designated evacuation shelter (指定避難所): a school gym, a community centre."""

    __tablename__ = "shelters"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_ja: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))
    address_ja: Mapped[str] = mapped_column(String(200))
    default_capacity: Mapped[int] = mapped_column(Integer, default=100)


class ShelterOpening(db.Model):
    """A shelter opened for an event (開設), with the capacity set when it opened."""

    __tablename__ = "shelter_openings"
    __table_args__ = (UniqueConstraint("event_id", "shelter_id", name="uq_shelter_openings_event_shelter"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(80), unique=True)  # what terminals name
    event_id: Mapped[int] = mapped_column(ForeignKey("disaster_events.id"))
    shelter_id: Mapped[int] = mapped_column(ForeignKey("shelters.id"))
    capacity: Mapped[int] = mapped_column(Integer)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    opened_by: Mapped[str] = mapped_column(String(64))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    event: Mapped[DisasterEvent] = relationship()
    shelter: Mapped[Shelter] = relationship()


class ShelterStay(db.Model):
    """One person's stay at an opened shelter, from check-in to check-out or a move.

    ``uuid`` is made by whoever recorded the check-in (the terminal agent, even offline, or the
    server for staff entries): the server keeps one stay per UUID, so a queue synced twice gives
    one record. A resident has at most one active stay (a partial unique index)."""

    __tablename__ = "shelter_stays"
    __table_args__ = (
        Index(
            "uq_shelter_stays_one_active",
            "resident_id",
            unique=True,
            sqlite_where=text("status = 'active' AND resident_id IS NOT NULL"),
            postgresql_where=text("status = 'active' AND resident_id IS NOT NULL"),
        ),
        Index("ix_shelter_stays_opening_status", "opening_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    opening_id: Mapped[int] = mapped_column(ForeignKey("shelter_openings.id"))
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    guest_name: Mapped[str | None] = mapped_column(String(120))  # not (or not yet) matched to the register
    guest_note: Mapped[str | None] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(16))  # STAY_METHODS
    status: Mapped[str] = mapped_column(String(10), default="active")  # STAY_STATUSES
    checked_in_at: Mapped[datetime] = mapped_column(UTCDateTime)
    checked_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    offline: Mapped[bool] = mapped_column(Boolean, default=False)  # queued at the terminal, synced later
    terminal_code: Mapped[str | None] = mapped_column(String(64))
    recorded_by: Mapped[str] = mapped_column(String(64))
    moved_to_id: Mapped[int | None] = mapped_column(ForeignKey("shelter_stays.id"))
    allergy: Mapped[str | None] = mapped_column(Text)
    care: Mapped[str | None] = mapped_column(Text)
    disability: Mapped[str | None] = mapped_column(Text)

    opening: Mapped[ShelterOpening] = relationship()
    resident: Mapped[Resident | None] = relationship()

    @property
    def display_name(self) -> str:
        return self.resident.full_name if self.resident is not None else (self.guest_name or "")
