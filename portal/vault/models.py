from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models_base import UTCDateTime, utcnow


class IndividualNumberRecord(db.Model):
    """個人番号: one row per resident, kept apart from the register.

    ``lookup_hash`` is HMAC-SHA256 of the number under a key derived from the vault key, so the
    number can be matched (card linking) without decrypting anything. ``ciphertext`` is the
    AES-256-GCM nonce + ciphertext + tag, bound to the resident id as associated data.
    """

    __tablename__ = "individual_numbers"
    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), unique=True)
    lookup_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary(64))
    key_id: Mapped[str] = mapped_column(String(16))
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:  # never the number, not even encrypted bytes
        return f"<IndividualNumberRecord resident={self.resident_id}>"
