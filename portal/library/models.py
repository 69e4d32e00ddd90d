from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models_base import UTCDateTime, utcnow


class Library(db.Model):
    """A library system of the city (its patron numbers are its own)."""

    __tablename__ = "libraries"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_ja: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))


class LibraryLink(db.Model):
    """A resident's library patron number (利用者番号), reached through their card.

    Keyed on the resident, with the card credential it was made or last used with: a renewed
    certificate (a new credential of the same resident, linked at a counter) finds the same link,
    and the link then records the new credential (``relinked_at``)."""

    __tablename__ = "library_links"
    __table_args__ = (
        UniqueConstraint("library_id", "resident_id", name="uq_library_links_library_resident"),
        UniqueConstraint("library_id", "patron_number", name="uq_library_links_library_patron"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    patron_number: Mapped[str] = mapped_column(String(20))
    credential_id: Mapped[int] = mapped_column(ForeignKey("card_credentials.id"))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    linked_by: Mapped[str] = mapped_column(String(64))
    terminal_code: Mapped[str] = mapped_column(String(64))
    relinked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    library: Mapped[Library] = relationship()
