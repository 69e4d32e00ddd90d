"""Points tables. ``points_entries`` and ``points_lot_moves`` are the ledger: append-only (the
migration installs triggers that refuse UPDATE and DELETE). A balance is a sum over entries; the
lots (``points_lots``) are the working projection that says which points expire when, kept in step
with the entries under the account's row lock."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models_base import UTCDateTime, utcnow

ENTRY_KINDS = ("earn", "redeem", "expire", "reverse", "adjust")
SCOPES = ("read", "award", "redeem")


class PointsAccount(db.Model):
    """One resident's points account; its row is the lock every balance change takes."""

    __tablename__ = "points_accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), unique=True)
    qr_subject: Mapped[str] = mapped_column(String(32), unique=True)  # opaque, for member QR codes
    tier: Mapped[str] = mapped_column(String(16), default="standard")
    tier_points: Mapped[int] = mapped_column(Integer, default=0)
    tier_computed_on: Mapped[date | None] = mapped_column(Date)
    lock_version: Mapped[int] = mapped_column(Integer, default=0)  # bumped to take SQLite's write lock
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LedgerEntry(db.Model):
    """One movement of points (earn +, redeem −, expire −, reverse ±, adjust ±). Never updated."""

    __tablename__ = "points_entries"
    __table_args__ = (Index("ix_points_entries_account_at", "account_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("points_accounts.id"))
    kind: Mapped[str] = mapped_column(String(10))
    points: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(24))  # rule | partner | catalogue | staff | expiry
    rule_code: Mapped[str | None] = mapped_column(String(40))
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("points_partners.id"), index=True)
    reference: Mapped[str | None] = mapped_column(String(120))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("points_entries.id"), unique=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)  # once-only awards
    actor: Mapped[str] = mapped_column(String(80))
    note: Mapped[str | None] = mapped_column(String(200))


class PointsLot(db.Model):
    """Points from one earning, with their expiry; ``remaining`` goes down as they are spent."""

    __tablename__ = "points_lots"
    __table_args__ = (Index("ix_points_lots_account_expires", "account_id", "expires_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("points_accounts.id"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("points_entries.id"), unique=True)
    points: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int] = mapped_column(Integer)
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)  # after a partner's holding period
    expires_on: Mapped[date] = mapped_column(Date)  # last day the points can be used (JST)
    status: Mapped[str] = mapped_column(String(10), default="active")  # pending | active


class LotMove(db.Model):
    """Which lot an entry took points from or gave points back to. Never updated."""

    __tablename__ = "points_lot_moves"
    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("points_entries.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("points_lots.id"), index=True)
    points: Mapped[int] = mapped_column(Integer)


class EarningRule(db.Model):
    """How many points an earning reason gives, and the most a resident may get per period."""

    __tablename__ = "points_rules"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    points: Mapped[int] = mapped_column(Integer)
    period: Mapped[str] = mapped_column(String(8))  # month | year | ever
    cap: Mapped[int | None] = mapped_column(Integer)  # most points per period; None = no cap
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64))


class VolunteerActivity(db.Model):
    __tablename__ = "points_activities"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(120))
    held_on: Mapped[date] = mapped_column(Date)
    organiser: Mapped[str] = mapped_column(String(120))
    points: Mapped[int | None] = mapped_column(Integer)  # None: the volunteer rule's amount
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Attendance(db.Model):
    __tablename__ = "points_attendances"
    __table_args__ = (
        UniqueConstraint("activity_id", "resident_id", name="uq_points_attendances_activity_resident"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("points_activities.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    via: Mapped[str] = mapped_column(String(8))  # card | list
    confirmed_by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("points_entries.id"))


class Partner(db.Model):
    """A shop or organiser that awards and redeems points over the API."""

    __tablename__ = "points_partners"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    holding_days: Mapped[int] = mapped_column(Integer, default=14)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OAuthClient(db.Model):
    __tablename__ = "points_oauth_clients"
    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("points_partners.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(48), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(100))  # space-separated
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    partner: Mapped[Partner] = relationship()


class OAuthToken(db.Model):
    __tablename__ = "points_oauth_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(48), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(100))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_in: Mapped[int] = mapped_column(Integer)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Membership(db.Model):
    """A resident's opt-in to one partner, under a pseudonymous member ID for that partner only."""

    __tablename__ = "points_memberships"
    __table_args__ = (
        UniqueConstraint("partner_id", "resident_id", name="uq_points_memberships_partner_resident"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("points_partners.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    member_id: Mapped[str] = mapped_column(String(40), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    opted_in_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    partner: Mapped[Partner] = relationship()


class IdempotentRequest(db.Model):
    """A partner's write, keyed by its Idempotency-Key: a retry gets the stored answer."""

    __tablename__ = "points_idempotency"
    __table_args__ = (UniqueConstraint("partner_id", "key", name="uq_points_idempotency_partner_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("points_partners.id"))
    key: Mapped[str] = mapped_column(String(100))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CatalogueItem(db.Model):
    """Something points buy: a public-facility coupon or a partner discount."""

    __tablename__ = "points_catalogue"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # facility_coupon | partner_discount
    name_ja: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))
    place: Mapped[str] = mapped_column(String(120))  # the facility or shop (Japanese)
    points: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int | None] = mapped_column(Integer)  # None: unlimited
    per_resident_limit: Mapped[int | None] = mapped_column(Integer)
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("points_partners.id"))
    valid_days: Mapped[int] = mapped_column(Integer, default=90)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Coupon(db.Model):
    """A one-time code bought with points; used once at the facility or partner."""

    __tablename__ = "points_coupons"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("points_catalogue.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("points_accounts.id"), index=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("points_entries.id"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_on: Mapped[date] = mapped_column(Date)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by: Mapped[str | None] = mapped_column(String(80))

    item: Mapped[CatalogueItem] = relationship()
