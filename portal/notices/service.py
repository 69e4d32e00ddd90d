"""Notices: authoring with a second person's approval, fan-out to deliveries (idempotent, in
batches, one SQL statement per batch), rendering per resident, the inbox, reads and replies."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import and_, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from portal.extensions import db
from portal.models_base import UTCDateTime, utcnow
from portal.notices import targeting
from portal.notices.models import CATEGORIES, REPLY_KINDS, Delivery, Notice, Reply
from portal.registry.models import Resident

TOKYO = ZoneInfo("Asia/Tokyo")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
PLACEHOLDERS = ("name", "family_name", "ward", "age", "child_name", "due_date", "city")
BATCH = 50_000


class NoticeError(Exception):
    def __init__(self, code: str, status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


def today_in_tokyo() -> date:
    return utcnow().astimezone(TOKYO).date()


# --- authoring -----------------------------------------------------------------------------------


def validate(notice: Notice) -> None:
    if notice.category not in CATEGORIES:
        raise NoticeError("category")
    if notice.reply_kind not in REPLY_KINDS:
        raise NoticeError("reply_kind")
    options = json.loads(notice.reply_options or "[]")
    if notice.reply_kind == "choice" and len(options) < 2:
        raise NoticeError("reply_options")
    for text in (notice.title_ja, notice.title_en, notice.body_ja, notice.body_en):
        unknown = set(PLACEHOLDER.findall(text or "")) - set(PLACEHOLDERS)
        if unknown:
            raise NoticeError("placeholder")
    notice.rule = json.dumps(targeting.parse(notice.rule or "{}"), ensure_ascii=False, sort_keys=True)


def reply_options(notice: Notice) -> list[dict]:
    if notice.reply_kind == "attend":
        return [
            {"code": "attend", "label_ja": "出席します", "label_en": "I will attend"},
            {"code": "absent", "label_ja": "欠席します", "label_en": "I cannot attend"},
        ]
    if notice.reply_kind == "apply":
        return [{"code": "apply", "label_ja": "申し込みます", "label_en": "Apply"}]
    if notice.reply_kind == "choice":
        return json.loads(notice.reply_options or "[]")
    return []


def recipient_count(rule: dict | str, on: date | None = None) -> int:
    stmt = targeting.compile_rule(targeting.parse(rule), on or today_in_tokyo())
    return db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0


def submit(notice: Notice) -> None:
    if notice.status != "draft":
        raise NoticeError("not_draft", 409)
    validate(notice)
    notice.status = "pending_approval"


def approve(notice: Notice, approver: str) -> None:
    """A second person approves; then the notice goes out at send_at (or at once)."""
    if notice.status != "pending_approval":
        raise NoticeError("not_pending", 409)
    if approver == notice.created_by:
        raise NoticeError("same_person", 403)
    notice.status, notice.approved_by, notice.approved_at = "approved", approver, utcnow()


def cancel(notice: Notice, who: str) -> None:
    if notice.status not in ("draft", "pending_approval", "approved"):
        raise NoticeError("already_sent", 409)
    notice.status, notice.cancelled_by, notice.cancelled_at = "cancelled", who, utcnow()


def due_notices(now: datetime | None = None) -> list[int]:
    now = now or utcnow()
    return list(
        db.session.scalars(
            select(Notice.id).where(
                Notice.status == "approved", or_(Notice.send_at.is_(None), Notice.send_at <= now)
            )
        )
    )


# --- fan-out -------------------------------------------------------------------------------------


def _insert_ignore(table):
    dialect = db.session.get_bind().dialect.name
    return (
        postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    ).on_conflict_do_nothing()


def fan_out(notice_id: int, *, batch: int = BATCH) -> int:
    """Insert the deliveries of an approved notice, batch by batch (resident id ranges), each one
    INSERT … SELECT that skips rows already there: re-running after a crash adds only what is
    missing. Returns how many deliveries the notice has."""
    notice = db.session.get(Notice, notice_id)
    if notice is None or notice.status not in ("approved", "sending"):
        raise NoticeError("not_approved", 409)
    notice.status = "sending"
    db.session.commit()
    rule = targeting.parse(notice.rule)
    on = (notice.send_at or utcnow()).astimezone(TOKYO).date()
    selected = targeting.compile_rule(rule, on).subquery()
    top = db.session.scalar(select(func.max(Resident.id))) or 0
    now = utcnow()
    for start in range(0, top + 1, batch):
        rows = select(literal(notice.id), selected.c.id, literal(now, UTCDateTime())).where(
            selected.c.id >= start, selected.c.id < start + batch
        )
        stmt = _insert_ignore(Delivery.__table__).from_select(
            ["notice_id", "resident_id", "created_at"], rows
        )
        db.session.execute(stmt)
        db.session.commit()
    total = db.session.scalar(select(func.count()).where(Delivery.notice_id == notice.id)) or 0
    notice.status, notice.sent_at, notice.targeted = "sent", utcnow(), total
    db.session.commit()
    current_app.logger.info("notice %s fanned out to %s residents", notice.id, total)
    return total


# --- rendering -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    title: str
    body: str


def placeholders_for(person: Resident, on: date | None = None) -> dict[str, str]:
    on = on or today_in_tokyo()
    children = sorted(
        (
            m
            for m in (person.household.members if person.household else [])
            if m.relationship_to_head == "child"
        ),
        key=lambda m: m.birth_date,
        reverse=True,
    )
    return {
        "name": person.full_name,
        "family_name": person.family_name,
        "ward": person.ward.name_ja,
        "age": str(person.age_on(on)),
        "child_name": children[0].given_name if children else "",
        "due_date": person.pregnancy_due_on.isoformat() if person.pregnancy_due_on else "",
        "city": current_app.config["CITY_NAME_JA"],
    }


def fill(template: str, values: dict[str, str]) -> str:
    """Replace {placeholder}s with plain text; the page escapes the result, so a value holding
    markup shows as text. Unknown names stay as written (no attribute access, unlike str.format)."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def render(notice: Notice, person: Resident, lang: str) -> Rendered:
    values = placeholders_for(person)
    title, body = (notice.title_en, notice.body_en) if lang == "en" else (notice.title_ja, notice.body_ja)
    return Rendered(fill(title, values), fill(body, values))


# --- the inbox -----------------------------------------------------------------------------------


def visible_resident_ids(resident: Resident) -> list[int]:
    """Whose notices an account sees: its resident's, and (household proxy) the children under 18
    of the household when the resident is its head or the head's spouse."""
    ids = [resident.id]
    if resident.household and resident.relationship_to_head in ("head", "spouse"):
        today = today_in_tokyo()
        ids += [
            m.id
            for m in resident.household.members
            if m.id != resident.id and m.relationship_to_head == "child" and m.age_on(today) < 18
        ]
    return ids


def inbox(resident: Resident, *, category: str | None = None, query: str | None = None, limit: int = 100):
    """Deliveries visible to the resident: unread first, newest first."""
    ids = visible_resident_ids(resident)
    stmt = (
        select(Delivery, Notice)
        .join(Notice, Notice.id == Delivery.notice_id)
        .where(Delivery.resident_id.in_(ids))
    )
    if category in CATEGORIES:
        stmt = stmt.where(Notice.category == category)
    if query:
        like = f"%{query}%"
        stmt = stmt.where(
            or_(
                Notice.title_ja.like(like),
                Notice.title_en.like(like),
                Notice.body_ja.like(like),
                Notice.body_en.like(like),
            )
        )
    stmt = stmt.order_by(Delivery.read_at.is_not(None), Delivery.created_at.desc(), Delivery.id.desc()).limit(
        limit
    )
    return [tuple(row) for row in db.session.execute(stmt)]


def unread_count(resident: Resident) -> int:
    return (
        db.session.scalar(
            select(func.count()).where(
                Delivery.resident_id.in_(visible_resident_ids(resident)), Delivery.read_at.is_(None)
            )
        )
        or 0
    )


def open_delivery(resident: Resident, delivery_id: int, account_id: int) -> Delivery:
    """The delivery if the resident may see it (404 otherwise); the first open records the read."""
    delivery = db.session.get(Delivery, delivery_id)
    if delivery is None or delivery.resident_id not in visible_resident_ids(resident):
        raise NoticeError("not_found", 404)
    if delivery.read_at is None:
        db.session.execute(
            update(Delivery)
            .where(and_(Delivery.id == delivery.id, Delivery.read_at.is_(None)))
            .values(read_at=utcnow(), read_by_account=account_id)
        )
        db.session.refresh(delivery)
    return delivery


def answer(delivery: Delivery, option: str, account_id: int) -> Reply:
    notice = delivery.notice
    if option not in {o["code"] for o in reply_options(notice)}:
        raise NoticeError("reply_option")
    if notice.reply_deadline and notice.reply_deadline < utcnow():
        raise NoticeError("reply_closed", 409)
    reply = db.session.scalar(select(Reply).where(Reply.delivery_id == delivery.id))
    if reply is None:
        reply = Reply(delivery_id=delivery.id, option=option, answered_by_account=account_id)
        db.session.add(reply)
    else:
        reply.option, reply.answered_at, reply.answered_by_account = option, utcnow(), account_id
    db.session.flush()
    return reply


def current_reply(delivery: Delivery) -> Reply | None:
    return db.session.scalar(select(Reply).where(Reply.delivery_id == delivery.id))


# --- the author's figures ------------------------------------------------------------------------


def figures(notice: Notice) -> dict:
    from portal.notices.models import ChannelDelivery

    deliveries = select(Delivery.id).where(Delivery.notice_id == notice.id)
    per_channel = {
        (channel, status): count
        for channel, status, count in db.session.execute(
            select(ChannelDelivery.channel, ChannelDelivery.status, func.count())
            .where(ChannelDelivery.delivery_id.in_(deliveries))
            .group_by(ChannelDelivery.channel, ChannelDelivery.status)
        )
    }
    replies = dict(
        db.session.execute(
            select(Reply.option, func.count()).where(Reply.delivery_id.in_(deliveries)).group_by(Reply.option)
        ).all()
    )
    opened_by_day = [
        (str(day), count)
        for day, count in db.session.execute(
            select(func.date(Delivery.read_at), func.count())
            .where(Delivery.notice_id == notice.id, Delivery.read_at.is_not(None))
            .group_by(func.date(Delivery.read_at))
            .order_by(func.date(Delivery.read_at))
        )
    ]
    return {
        "targeted": db.session.scalar(select(func.count()).select_from(deliveries.subquery())) or 0,
        "opened": db.session.scalar(
            select(func.count()).where(Delivery.notice_id == notice.id, Delivery.read_at.is_not(None))
        )
        or 0,
        "channels": per_channel,
        "replies": replies,
        "opened_by_day": opened_by_day,
    }
