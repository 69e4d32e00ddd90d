from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models_base import UTCDateTime


class AccessRecord(db.Model):
    """One read of a resident's personal data. Append-only: the migration installs triggers that
    refuse UPDATE and DELETE, and each row carries the hash of the previous one (tamper-evident)."""

    __tablename__ = "access_records"
    __table_args__ = (Index("ix_access_records_resident_at", "resident_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    actor_kind: Mapped[str] = mapped_column(String(16))  # staff | terminal | partner | job | resident
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(32))
    organisation: Mapped[str] = mapped_column(String(120))
    terminal_id: Mapped[str | None] = mapped_column(String(64))
    data_items: Mapped[str] = mapped_column(String(400))  # comma-separated item codes
    purpose: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64), unique=True)
