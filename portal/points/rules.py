"""Earning rules: volunteering, health check-ups, first use of an e-service. Staff set the amount
and the cap per period (month, fiscal year 年度 from April, or once ever)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from portal.extensions import db
from portal.models_base import utcnow
from portal.points import ledger
from portal.points.ledger import JST, PointsError, local_date
from portal.points.models import Attendance, EarningRule, LedgerEntry, VolunteerActivity
from portal.registry.models import Resident

# code: (points, period, cap)
DEFAULTS: dict[str, tuple[int, str, int | None]] = {
    "volunteer": (100, "month", 400),
    "health_checkup": (300, "year", 300),
    "first_prefiling": (200, "ever", 200),
    "first_signed_filing": (300, "ever", 300),
}
LABELS = {
    "volunteer": _l("Volunteer activity"),
    "health_checkup": _l("Health check-up"),
    "first_prefiling": _l("First online pre-filing"),
    "first_signed_filing": _l("First filing signed with the card"),
}
PERIODS = {"month": _l("per month"), "year": _l("per fiscal year (from April)"), "ever": _l("once")}


def ensure_rules(actor: str = "system") -> list[EarningRule]:
    """The rules, made with their default amounts the first time they are needed."""
    rows = {r.code: r for r in db.session.scalars(select(EarningRule))}
    for code, (points, period, cap) in DEFAULTS.items():
        if code not in rows:
            rows[code] = EarningRule(code=code, points=points, period=period, cap=cap, updated_by=actor)
            db.session.add(rows[code])
    db.session.flush()
    return [rows[c] for c in DEFAULTS]


def rule(code: str) -> EarningRule:
    for r in ensure_rules():
        if r.code == code:
            return r
    raise PointsError("rule_unknown", 404)


def update_rule(code: str, *, points: int, period: str, cap: int | None, active: bool, actor: str) -> None:
    if points <= 0 or (cap is not None and cap < 0) or period not in PERIODS:
        raise PointsError("bad_rule")
    r = rule(code)
    r.points, r.period, r.cap, r.active, r.updated_by, r.updated_at = (
        points,
        period,
        cap,
        active,
        actor,
        utcnow(),
    )


def period_start(period: str, now: datetime) -> datetime | None:
    today = local_date(now)
    if period == "month":
        start = date(today.year, today.month, 1)
    elif period == "year":
        start = date(today.year if today.month >= 4 else today.year - 1, 4, 1)
    else:
        return None
    return datetime(start.year, start.month, start.day, tzinfo=JST)


def earned_by_rule(account_id: int, code: str, since: datetime | None) -> int:
    query = select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
        LedgerEntry.account_id == account_id,
        LedgerEntry.rule_code == code,
        LedgerEntry.kind.in_(("earn", "reverse")),
    )
    if since is not None:
        query = query.where(LedgerEntry.at >= since)
    return int(db.session.scalar(query) or 0)


def award(
    code: str,
    resident_id: int,
    *,
    actor: str,
    reference: str | None = None,
    dedupe_key: str | None = None,
    points: int | None = None,
    now: datetime | None = None,
) -> LedgerEntry:
    """Points for one earning reason, cut to what is left under the rule's cap for the period."""
    now = now or utcnow()
    r = rule(code)
    if not r.active:
        raise PointsError("rule_inactive", 409)
    account = ledger.lock_account(resident_id)
    amount = points if points is not None else r.points
    if r.cap is not None:
        left = r.cap - earned_by_rule(account.id, code, period_start(r.period, now))
        amount = min(amount, max(left, 0))
    if amount <= 0:
        raise PointsError("cap_reached", 409)
    return ledger.earn(
        resident_id,
        amount,
        source="rule",
        actor=actor,
        rule_code=code,
        reference=reference,
        dedupe_key=dedupe_key,
        now=now,
    )


def first_use(resident_id: int, service: str, reference: str) -> LedgerEntry | None:
    """Called by the e-services (a pre-filing submitted, a filing signed with the card): points
    the first time only. Never fails the caller's action."""
    code = {"prefiling": "first_prefiling", "signed_filing": "first_signed_filing"}[service]
    try:
        return award(
            code,
            resident_id,
            actor=f"service:{service}",
            reference=reference,
            dedupe_key=f"first_use:{service}:{resident_id}",
        )
    except PointsError:
        return None


# --- volunteer activities and lists ---------------------------------------------------------------


@dataclass
class AttendanceResult:
    attendance: Attendance
    points: int
    refused: str | None = None  # cap_reached, rule_inactive


def attend(activity: VolunteerActivity, resident_id: int, *, via: str, confirmed_by: str) -> AttendanceResult:
    """Record that a resident took part, and award the volunteer points (within the cap)."""
    existing = db.session.scalar(
        select(Attendance).where(Attendance.activity_id == activity.id, Attendance.resident_id == resident_id)
    )
    if existing is not None:
        raise PointsError("already_attended", 409)
    row = Attendance(activity_id=activity.id, resident_id=resident_id, via=via, confirmed_by=confirmed_by)
    db.session.add(row)
    try:
        entry = award(
            "volunteer",
            resident_id,
            actor=confirmed_by,
            reference=f"activity {activity.id}",
            dedupe_key=f"activity:{activity.id}:{resident_id}",
            points=activity.points,
        )
    except PointsError as exc:
        db.session.flush()
        return AttendanceResult(row, 0, exc.code)
    row.entry_id = entry.id
    db.session.flush()
    return AttendanceResult(row, entry.points)


@dataclass
class ListRow:
    line: int
    atena_no: str
    resident: Resident | None
    error: str | None = None


MAX_LIST_ROWS = 2000


def parse_list(raw: bytes) -> list[ListRow]:
    """A CSV of attendees or check-ups: a header with ``atena_no`` (宛名番号); other columns are
    ignored. Every row is checked before anything is written."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PointsError("list_encoding") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "atena_no" not in [f.strip() for f in reader.fieldnames]:
        raise PointsError("list_header")
    rows: list[ListRow] = []
    seen: set[str] = set()
    for number, record in enumerate(reader, start=2):
        if len(rows) >= MAX_LIST_ROWS:
            raise PointsError("list_too_long")
        value = str({k.strip(): v for k, v in record.items() if k}.get("atena_no") or "").strip()
        row = ListRow(number, value, None)
        if not value:
            row.error = "list_missing_number"
        elif value in seen:
            row.error = "list_duplicate"
        else:
            row.resident = db.session.scalar(select(Resident).where(Resident.atena_no == value))
            if row.resident is None or row.resident.status != "active":
                row.error = "list_unknown_resident"
        seen.add(value)
        rows.append(row)
    if not rows:
        raise PointsError("list_empty")
    return rows


def import_checkups(rows: list[ListRow], *, actor: str, now: datetime | None = None) -> dict[str, int]:
    """Award the health check-up points for a checked list (once per resident per fiscal year)."""
    now = now or utcnow()
    start = period_start("year", now)
    assert start is not None
    counts = {"awarded": 0, "skipped": 0}
    for row in rows:
        assert row.resident is not None and row.error is None
        try:
            award(
                "health_checkup",
                row.resident.id,
                actor=actor,
                reference="health check-up list",
                dedupe_key=f"health_checkup:{start.year}:{row.resident.id}",
                now=now,
            )
            counts["awarded"] += 1
        except PointsError:
            counts["skipped"] += 1
    return counts
