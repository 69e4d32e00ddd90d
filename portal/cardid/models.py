from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models_base import UTCDateTime, utcnow
from portal.registry.models import Resident

TERMINAL_KINDS = ("kiosk", "counter", "library", "shelter", "partner")
CREDENTIAL_STATUSES = ("active", "revoked", "superseded")


class CardCredential(db.Model):
    """A card's user-authentication certificate linked to a resident. The certificate carries no
    personal data; it is identified by issuer + serial (as the national MyKey platform keyed its
    IDs on the serial). A renewed certificate is a new credential, linked again."""

    __tablename__ = "card_credentials"
    __table_args__ = (UniqueConstraint("issuer", "serial", name="uq_card_credentials_issuer_serial"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    issuer: Mapped[str] = mapped_column(String(400))
    serial: Mapped[str] = mapped_column(String(64))  # decimal; serials exceed 64-bit integers
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12), default="active")
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    linked_by: Mapped[str] = mapped_column(String(64))
    linked_via: Mapped[str] = mapped_column(String(16))  # text_ap | sign_cert
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(64))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    resident: Mapped[Resident] = relationship()

    @classmethod
    def from_verified(cls, verified, *, resident_id: int, linked_by: str, via: str) -> CardCredential:
        """A credential for a certificate ``card.verify`` accepted."""
        return cls(
            resident_id=resident_id,
            issuer=verified.issuer,
            serial=str(verified.serial),
            fingerprint_sha256=verified.fingerprint_sha256,
            not_before=verified.not_before,
            not_after=verified.not_after,
            linked_by=linked_by,
            linked_via=via,
        )


class Terminal(db.Model):
    """A registered city terminal; its requests are signed with its Ed25519 key."""

    __tablename__ = "terminals"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(120))
    organisation: Mapped[str] = mapped_column(String(120))
    public_key_pem: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CardChallenge(db.Model):
    """A one-time nonce for the card to sign, bound to its purpose and to who asked."""

    __tablename__ = "card_challenges"
    __table_args__ = (Index("ix_card_challenges_expires_at", "expires_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(20))
    code: Mapped[str | None] = mapped_column(String(12), unique=True)
    session_binding: Mapped[str | None] = mapped_column(String(64))
    terminal_code: Mapped[str | None] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | done | failed
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_code: Mapped[str | None] = mapped_column(String(40))
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    credential_id: Mapped[int | None] = mapped_column(ForeignKey("card_credentials.id"))
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ExternalIdentity(db.Model):
    """A resident's identity at an external eID provider (OpenID Connect ``iss`` + ``sub``)."""

    __tablename__ = "external_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_external_identities_issuer_subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(200))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
