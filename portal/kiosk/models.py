"""A card holder's session on one kiosk terminal, and what that session printed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models_base import UTCDateTime, utcnow


class KioskSession(db.Model):
    """Made when a card answers a ``kiosk_login`` challenge (the ticket, stored hashed, goes back
    to the terminal's agent); the kiosk page on that terminal redeems the ticket once, and the row
    becomes the session: idle and absolute limits, ended by removing the card, by the page, or by
    the idle timeout. ``ended_at`` set means nothing of the resident is reachable any more."""

    __tablename__ = "kiosk_sessions"
    __table_args__ = (Index("ix_kiosk_sessions_terminal_open", "terminal_code", "ended_at"),)

    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    ticket_hash: Mapped[str] = mapped_column(String(64), unique=True)
    terminal_code: Mapped[str] = mapped_column(String(64))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    credential_id: Mapped[int] = mapped_column(ForeignKey("card_credentials.id"))
    challenge_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ticket_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(20))


class KioskPrint(db.Model):
    """A document the session issued, held only until it is printed or the session ends."""

    __tablename__ = "kiosk_prints"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("kiosk_sessions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    serial: Mapped[str] = mapped_column(String(40))
    issued_id: Mapped[str | None] = mapped_column(String(40))
    copies: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    printed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary)
