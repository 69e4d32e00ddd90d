from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models_base import UTCDateTime, utcnow

CATEGORIES = ("tax", "child", "care", "health", "disaster", "card", "procedure", "event")
CHANNELS = ("push", "email")
REPLY_KINDS = ("none", "attend", "apply", "choice")
# draft → pending_approval → approved (waits for send_at) → sending → sent; cancelled before sending.
STATUSES = ("draft", "pending_approval", "approved", "sending", "sent", "cancelled")


class Notice(db.Model):
    """お知らせ: one message to the residents a rule selects (or one life-event trigger's residents).

    Bodies are templates: ``{name}``, ``{ward}``, ``{age}``, ``{child_name}`` … filled per resident
    when shown, always escaped (a placeholder never becomes markup)."""

    __tablename__ = "notices"
    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(String(16))
    title_ja: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    body_ja: Mapped[str] = mapped_column(Text)
    body_en: Mapped[str] = mapped_column(Text)
    rule: Mapped[str] = mapped_column(Text, default="{}")  # JSON targeting rule (portal.notices.targeting)
    reply_kind: Mapped[str] = mapped_column(String(10), default="none")
    reply_options: Mapped[str] = mapped_column(Text, default="[]")  # JSON [{code, label_ja, label_en}]
    reply_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by: Mapped[str | None] = mapped_column(String(64))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    targeted: Mapped[int | None] = mapped_column(Integer)  # recipients at fan-out
    # Life-event notices: which trigger made it (e.g. "vaccination:bcg", "card_expiry").
    trigger_key: Mapped[str | None] = mapped_column(String(64), index=True)


class Delivery(db.Model):
    """A notice in one resident's inbox. Unique per (notice, resident): a re-run fan-out adds nothing."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("notice_id", "resident_id", name="uq_deliveries_notice_resident"),
        Index("ix_deliveries_resident_created", "resident_id", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_by_account: Mapped[int | None] = mapped_column(Integer)  # who opened it (the resident or a parent)

    notice: Mapped[Notice] = relationship()


class ChannelDelivery(db.Model):
    """One delivery over Web Push or e-mail: queued → sent | failed (with reason), retried with back-off."""

    __tablename__ = "channel_deliveries"
    __table_args__ = (
        UniqueConstraint("delivery_id", "channel", name="uq_channel_deliveries_delivery_channel"),
        Index("ix_channel_deliveries_due", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"))
    channel: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(10), default="queued")  # queued | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Reply(db.Model):
    """返答: one answer per delivery, changeable until the notice's deadline."""

    __tablename__ = "notice_replies"
    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), unique=True)
    option: Mapped[str] = mapped_column(String(32))
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_by_account: Mapped[int] = mapped_column(Integer)


class NotificationSetting(db.Model):
    """Whether a resident wants a category over a channel (the inbox always receives)."""

    __tablename__ = "notification_settings"
    __table_args__ = (
        UniqueConstraint("account_id", "category", "channel", name="uq_notification_settings_key"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("resident_accounts.id"), index=True)
    category: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class PushSubscription(db.Model):
    """A browser's Web Push subscription (endpoint + keys); removed when the push service says 404/410."""

    __tablename__ = "push_subscriptions"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("resident_accounts.id"), index=True)
    endpoint: Mapped[str] = mapped_column(String(1000), unique=True)
    p256dh: Mapped[str] = mapped_column(String(200))
    auth: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TriggerFired(db.Model):
    """A life-event trigger fired for a resident: each resident gets each trigger once."""

    __tablename__ = "trigger_fired"
    __table_args__ = (UniqueConstraint("resident_id", "trigger_key", name="uq_trigger_fired_resident_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    trigger_key: Mapped[str] = mapped_column(String(64))
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"))
