"""A notice's e-mail and Web Push: queued set-wise after fan-out, sent by workers with retries.

Who gets what: the delivery's resident's own portal account; a child without an account
(under 18, ``relationship_to_head == 'child'``) is reached through the household head's account
(household proxy, as in the inbox). Only accounts with a verified address (those may open the
inbox); push only to an account with a subscription; never an (account, category, channel)
the resident turned off.

A row's life: ``queued`` → ``claimed`` (a worker took it; nothing sent yet) → ``sending`` (committed
just before the outside call) → ``sent`` | back to ``queued`` with back-off | ``failed`` (reason).
``next_attempt_at`` holds the lease while claimed or sending. A worker killed while a row is
``claimed`` loses nothing: the row is queued again when the lease runs out. A row left ``sending``
may or may not have gone out; it is marked failed ("interrupted") rather than sent a second time.
A ``sent`` row is never picked again, and the unique (delivery, channel) key means a re-run
queues no row twice.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import and_, exists, literal, select, union_all, update

from portal.accounts.models import ResidentAccount
from portal.extensions import db
from portal.models_base import UTCDateTime, utcnow
from portal.notices import channels
from portal.notices.channels import ChannelError, setting
from portal.notices.models import (
    CHANNELS,
    ChannelDelivery,
    Delivery,
    Notice,
    NotificationSetting,
    PushSubscription,
)
from portal.ops.metrics import notice_delivery
from portal.registry.models import Household, Resident


def _adult_cutoff(today: date) -> date:
    """Born after this day: under 18 today."""
    try:
        return today.replace(year=today.year - 18)
    except ValueError:  # 29 February
        return today.replace(year=today.year - 18, day=28)


def recipients():
    """(resident_id, account_id): a resident's own account, or for a child with none, the head's."""
    from portal.notices.service import today_in_tokyo

    own = select(
        ResidentAccount.resident_id.label("resident_id"), ResidentAccount.id.label("account_id")
    ).where(ResidentAccount.resident_id.is_not(None))
    child = Resident.__table__.alias("child")
    head_account = ResidentAccount.__table__.alias("head_account")
    proxy = (
        select(child.c.id.label("resident_id"), head_account.c.id.label("account_id"))
        .join(Household, Household.id == child.c.household_id)
        .join(head_account, head_account.c.resident_id == Household.head_id)
        .where(
            child.c.relationship_to_head == "child",
            child.c.birth_date > _adult_cutoff(today_in_tokyo()),
            ~exists().where(ResidentAccount.resident_id == child.c.id),
        )
    )
    return union_all(own, proxy).subquery("recipients")


def account_for(delivery: Delivery) -> ResidentAccount | None:
    rec = recipients()
    account_id = db.session.scalar(
        select(rec.c.account_id).where(rec.c.resident_id == delivery.resident_id).limit(1)
    )
    return db.session.get(ResidentAccount, account_id) if account_id else None


def _enabled(account_id, category, channel):
    return ~exists().where(
        NotificationSetting.account_id == account_id,
        NotificationSetting.category == category,
        NotificationSetting.channel == channel,
        NotificationSetting.enabled.is_(False),
    )


def queue_channels(notice_id: int) -> dict[str, int]:
    """Queue the notice's e-mail and push rows: one INSERT … SELECT … ON CONFLICT DO NOTHING per
    channel. Re-running adds only what is missing. Returns the rows each channel has."""
    from portal.notices.service import _insert_ignore

    notice = db.session.get(Notice, notice_id)
    if notice is None:
        raise LookupError(notice_id)
    now = utcnow()
    rec = recipients()
    account = ResidentAccount.__table__.alias("account")
    counts = {}
    for channel in CHANNELS:
        # A verified address makes the account a resident's (it may open the inbox item);
        # push needs a subscription besides.
        reachable = (
            account.c.email_verified_at.is_not(None)
            if channel == "email"
            else and_(
                account.c.email_verified_at.is_not(None),
                exists().where(PushSubscription.account_id == account.c.id),
            )
        )
        rows = (
            select(
                Delivery.id,
                literal(channel),
                literal("queued"),
                literal(0),
                literal(now, UTCDateTime()),
            )
            .join(rec, rec.c.resident_id == Delivery.resident_id)
            .join(account, account.c.id == rec.c.account_id)
            .where(
                Delivery.notice_id == notice.id,
                account.c.active.is_(True),
                reachable,
                _enabled(account.c.id, notice.category, channel),
            )
        )
        db.session.execute(
            _insert_ignore(ChannelDelivery.__table__).from_select(
                ["delivery_id", "channel", "status", "attempts", "next_attempt_at"], rows
            )
        )
        db.session.commit()
        counts[channel] = (
            db.session.scalar(
                select(db.func.count())
                .select_from(ChannelDelivery)
                .join(Delivery, Delivery.id == ChannelDelivery.delivery_id)
                .where(Delivery.notice_id == notice.id, ChannelDelivery.channel == channel)
            )
            or 0
        )
    current_app.logger.info("notice %s channels queued: %s", notice.id, counts)
    return counts


# --- sending -------------------------------------------------------------------------------------


def backoff(attempts: int) -> timedelta:
    seconds = setting("DELIVERY_RETRY_BASE_SECONDS") * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, setting("DELIVERY_RETRY_MAX_SECONDS")))


def recover(now: datetime) -> None:
    """Rows whose worker died: claimed → queued again; sending → failed (it may have gone out)."""
    db.session.execute(
        update(ChannelDelivery)
        .where(ChannelDelivery.status == "claimed", ChannelDelivery.next_attempt_at <= now)
        .values(status="queued")
    )
    db.session.execute(
        update(ChannelDelivery)
        .where(ChannelDelivery.status == "sending", ChannelDelivery.next_attempt_at <= now)
        .values(status="failed", last_error="interrupted")
    )
    db.session.commit()


def claim(limit: int, now: datetime, notice_id: int | None = None) -> list[int]:
    """Take up to ``limit`` due rows in one statement; on PostgreSQL rows another worker holds are
    skipped (FOR UPDATE SKIP LOCKED), so two workers never take the same row."""
    due = (
        select(ChannelDelivery.id)
        .where(ChannelDelivery.status == "queued", ChannelDelivery.next_attempt_at <= now)
        .order_by(ChannelDelivery.next_attempt_at, ChannelDelivery.id)
        .limit(limit)
    )
    if notice_id is not None:
        due = due.where(
            ChannelDelivery.delivery_id.in_(select(Delivery.id).where(Delivery.notice_id == notice_id))
        )
    if db.session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    lease = now + timedelta(seconds=setting("DELIVERY_LEASE_SECONDS"))
    ids = list(
        db.session.scalars(
            update(ChannelDelivery)
            .where(ChannelDelivery.id.in_(due.scalar_subquery()), ChannelDelivery.status == "queued")
            .values(status="claimed", next_attempt_at=lease)
            .returning(ChannelDelivery.id)
        )
    )
    db.session.commit()
    return sorted(ids)


def _finish(row_id: int, **values) -> None:
    db.session.execute(
        update(ChannelDelivery)
        .where(ChannelDelivery.id == row_id, ChannelDelivery.status == "sending")
        .values(**values)
    )
    db.session.commit()


def _disabled(account_id: int, category: str, channel: str) -> bool:
    return bool(
        db.session.scalar(
            select(NotificationSetting.id).where(
                NotificationSetting.account_id == account_id,
                NotificationSetting.category == category,
                NotificationSetting.channel == channel,
                NotificationSetting.enabled.is_(False),
            )
        )
    )


SENDERS = {"email": channels.send_email, "push": channels.send_push}


def send_one(row_id: int, now: datetime | None = None) -> str:
    """Send one claimed row; returns its new status."""
    now = now or utcnow()
    lease = now + timedelta(seconds=setting("DELIVERY_LEASE_SECONDS"))
    marked = db.session.execute(
        update(ChannelDelivery)
        .where(ChannelDelivery.id == row_id, ChannelDelivery.status == "claimed")
        .values(status="sending", attempts=ChannelDelivery.attempts + 1, next_attempt_at=lease)
    ).rowcount
    db.session.commit()
    if not marked:
        return "skipped"
    row = db.session.get(ChannelDelivery, row_id)
    delivery = db.session.get(Delivery, row.delivery_id)
    notice = delivery.notice
    try:
        account = account_for(delivery)
        if account is None or not account.active:
            raise ChannelError("no_account", final=True)
        if _disabled(account.id, notice.category, row.channel):
            raise ChannelError("turned_off", final=True)
        title = _title(notice, delivery, account)
        SENDERS[row.channel](account=account, title=title, category=notice.category, delivery_id=delivery.id)
    except ChannelError as exc:
        db.session.rollback()
        attempts = row.attempts
        if exc.final or attempts >= setting("DELIVERY_MAX_ATTEMPTS"):
            _finish(row_id, status="failed", last_error=exc.code)
            current_app.logger.warning("channel delivery %s failed: %s", row_id, exc.code)
            return "failed"
        _finish(row_id, status="queued", last_error=exc.code, next_attempt_at=utcnow() + backoff(attempts))
        current_app.logger.info("channel delivery %s retried later: %s", row_id, exc.code)
        return "queued"
    except Exception as exc:
        # Unknown state (it may have gone out): failed, not sent twice.
        db.session.rollback()
        _finish(row_id, status="failed", last_error="internal_" + type(exc).__name__)
        current_app.logger.error("channel delivery %s: internal error %s", row_id, type(exc).__name__)
        return "failed"
    _finish(row_id, status="sent", sent_at=utcnow(), last_error=None)
    return "sent"


def _title(notice: Notice, delivery: Delivery, account: ResidentAccount) -> str:
    from portal.notices.service import render

    lang = account.locale if account.locale in current_app.config["LANGUAGES"] else "ja"
    return render(notice, db.session.get(Resident, delivery.resident_id), lang).title


def deliver_due(
    limit: int | None = None, *, now: datetime | None = None, notice_id: int | None = None
) -> dict:
    """Send what is due, batch by batch, until nothing is due or ``limit`` rows were handled."""
    now = now or utcnow()
    recover(now)
    done: dict[str, int] = {}
    handled = 0
    batch = setting("DELIVERY_BATCH")
    while limit is None or handled < limit:
        ids = claim(min(batch, limit - handled) if limit else batch, now, notice_id)
        if not ids:
            break
        for row_id in ids:
            status = send_one(row_id)
            notice_delivery(status)
            done[status] = done.get(status, 0) + 1
        handled += len(ids)
    return done


# --- jobs (RQ or inline) -------------------------------------------------------------------------


def send_notice(notice_id: int) -> dict:
    """The whole send of an approved notice: fan-out, queue the channels, deliver. Safe to re-run."""
    from portal.notices import service

    notice = db.session.get(Notice, notice_id)
    if notice is None:
        raise LookupError(notice_id)
    if notice.status in ("approved", "sending"):
        service.fan_out(notice_id)
    elif notice.status != "sent":
        return {}
    queue_channels(notice_id)
    return deliver_due(notice_id=notice_id)


def send_notice_job(notice_id: int) -> dict:
    """``send_notice`` as an RQ job (through ``portal.jobs.run_in_app``, which builds an app per
    job): the job's connections are closed when it ends."""
    try:
        return send_notice(notice_id)
    finally:
        db.session.remove()
        db.engine.dispose()


def deliver_job() -> dict:
    """Retries and anything left: run periodically (``flask push deliver``, or this as an RQ job)."""
    try:
        return deliver_due()
    finally:
        db.session.remove()
        db.engine.dispose()


def schedule_send(notice_id: int):
    """Send now in this process (JOBS_INLINE) or as an RQ job run inside an app context."""
    from portal.jobs import enqueue, run_in_app

    if current_app.config["JOBS_INLINE"]:
        return send_notice(notice_id)
    from redis.exceptions import RedisError

    try:
        return enqueue(
            run_in_app, f"{__name__}.send_notice_job", notice_id, job_id=f"send-notice-{notice_id}"
        )
    except RedisError as exc:
        # The job queue is down; the database keeps the work. An approved notice stays approved and
        # the scheduler's ``notices run-scheduled`` sends it when Redis is back; a notice already
        # fanned out gets its channel rows now, and the scheduler's ``push deliver`` sends them.
        current_app.logger.warning(
            "notice %s: job queue unavailable (%s); left to the scheduler", notice_id, type(exc).__name__
        )
        notice = db.session.get(Notice, notice_id)
        if notice is not None and notice.status == "sent":
            queue_channels(notice_id)
        return None


def send_due_notices() -> list[int]:
    from portal.notices.service import due_notices

    ids = due_notices()
    for notice_id in ids:
        schedule_send(notice_id)
    return ids


__all__ = [
    "account_for",
    "claim",
    "deliver_due",
    "deliver_job",
    "queue_channels",
    "schedule_send",
    "send_due_notices",
    "send_notice",
    "send_notice_job",
    "send_one",
]
