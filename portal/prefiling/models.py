from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models_base import UTCDateTime, utcnow
from portal.registry.models import Resident

# draft → submitted → (correction_requested → submitted)* → ready → arrived → completed;
# withdrawn by the resident before arrival.
STATUSES = ("draft", "submitted", "correction_requested", "ready", "arrived", "completed", "withdrawn")


class PreFiling(db.Model):
    """事前申請: one procedure filled in by a resident, keeping the catalogue version it was made with.

    ``version`` is SQLAlchemy's version counter: two staff saving one pre-filing cannot overwrite
    each other (the second gets a StaleDataError, shown as "changed meanwhile, reload")."""

    __tablename__ = "prefilings"
    __table_args__ = (Index("ix_prefilings_status_submitted", "status", "submitted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("resident_accounts.id"))
    procedure_code: Mapped[str] = mapped_column(String(40))
    procedure_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(24), default="draft")
    data: Mapped[str] = mapped_column(Text, default="{}")  # JSON of the field values
    reservation_no: Mapped[str | None] = mapped_column(String(12), unique=True)
    correction_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    arrived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Signing with the card's signature certificate (署名用電子証明書): the SHA-256 of the canonical
    # form, the signature and the certificate as received, and when the server verified them.
    signed_digest: Mapped[str | None] = mapped_column(String(64))
    signature: Mapped[bytes | None] = mapped_column(LargeBinary)
    signature_certificate: Mapped[bytes | None] = mapped_column(LargeBinary)
    signature_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    resident: Mapped[Resident] = relationship()

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declarative form


class Attachment(db.Model):
    """A file attached to a pre-filing, stored outside the web root under a random name; its type
    is sniffed from the content, never taken from the name."""

    __tablename__ = "prefiling_attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    prefiling_id: Mapped[int] = mapped_column(ForeignKey("prefilings.id"), index=True)
    code: Mapped[str] = mapped_column(String(40))  # which required document it is
    filename: Mapped[str] = mapped_column(String(200))  # as the resident named it (display only)
    content_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    stored_name: Mapped[str] = mapped_column(String(80), unique=True)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PreFilingEvent(db.Model):
    """What happened to a pre-filing, by whom: its history for staff and the resident."""

    __tablename__ = "prefiling_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    prefiling_id: Mapped[int] = mapped_column(ForeignKey("prefilings.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
