from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.authz import STAFF_ROLES
from portal.extensions import db
from portal.models_base import UTCDateTime, utcnow
from portal.registry.models import Resident


class ResidentAccount(UserMixin, db.Model):
    """A resident's portal login. Linked to at most one register record (and one record to at
    most one account) once the resident proves who they are: an activation code from the city,
    or later their card."""

    __tablename__ = "resident_accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"), unique=True)
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary(128))
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    locale: Mapped[str] = mapped_column(String(8), default="ja")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Bumped on password change so other sessions and old reset links stop working.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    resident: Mapped[Resident | None] = relationship()

    kind = "resident"

    def get_id(self) -> str:
        return f"r:{self.id}:{self.session_version}"

    @property
    def is_active(self) -> bool:
        return self.active

    def principals(self) -> set[str]:
        return {"account", "resident"} if self.resident_id and self.email_verified_at else {"account"}

    @property
    def totp_enabled(self) -> bool:
        return self.totp_secret_enc is not None


class ActivationCode(db.Model):
    """登録コード: a one-time code the city gives a resident (by letter or at the counter) to link
    their portal account to their register record. Stored hashed."""

    __tablename__ = "activation_codes"
    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_by: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StaffUser(UserMixin, db.Model):
    """City staff. Roles are space-separated codes from ``portal.authz.STAFF_ROLES``."""

    __tablename__ = "staff_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    login_id: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(80))
    organisation: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[str] = mapped_column(String(200))
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary(128))
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    kind = "staff"

    def get_id(self) -> str:
        return f"s:{self.id}:{self.session_version}"

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def role_list(self) -> list[str]:
        return [r for r in self.roles.split() if r in STAFF_ROLES]

    def principals(self) -> set[str]:
        return set(self.role_list)

    def has_role(self, *roles: str) -> bool:
        return bool(set(roles) & set(self.role_list))
