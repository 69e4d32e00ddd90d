"""The points ledger (ポイント台帳): earning, spending, reversing and expiring points.

Every change is an append-only ``LedgerEntry`` plus the ``LotMove`` rows saying which lots it
touched. Points sit in lots with an expiry date and are spent soonest-expiring first. Every change
to an account first takes that account's row lock (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite
an UPDATE of the row, which takes the database write lock), so two spends of one balance are
serialised and a balance never goes below zero.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, select, update

from portal.extensions import db
from portal.models_base import utcnow
from portal.points.models import LedgerEntry, LotMove, PointsAccount, PointsLot

JST = ZoneInfo("Asia/Tokyo")


class PointsError(Exception):
    """A refused points operation: ``code`` for the API and the pages, ``status`` for HTTP."""

    def __init__(self, code: str, status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


def local_date(now: datetime | None = None) -> date:
    """The calendar date in Japan: expiry dates and periods are counted in JST."""
    return (now or utcnow()).astimezone(JST).date()


# --- accounts -------------------------------------------------------------------------------------


def find_account(resident_id: int) -> PointsAccount | None:
    return db.session.scalar(select(PointsAccount).where(PointsAccount.resident_id == resident_id))


def account_for(resident_id: int) -> PointsAccount:
    """The resident's account, made on first use."""
    account = find_account(resident_id)
    if account is None:
        account = PointsAccount(resident_id=resident_id, qr_subject=secrets.token_urlsafe(18))
        db.session.add(account)
        db.session.flush()
    return account


def lock_account(resident_id: int) -> PointsAccount:
    """Take the account's row lock for the rest of the transaction (made on first use)."""
    if db.session.get_bind().dialect.name == "postgresql":
        locked = db.session.scalar(
            select(PointsAccount)
            .where(PointsAccount.resident_id == resident_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if locked is None:
            account_for(resident_id)
            return lock_account(resident_id)
        return locked
    account = account_for(resident_id)
    db.session.execute(
        update(PointsAccount)
        .where(PointsAccount.id == account.id)
        .values(lock_version=PointsAccount.lock_version + 1)
    )
    found = db.session.scalar(
        select(PointsAccount).where(PointsAccount.id == account.id).execution_options(populate_existing=True)
    )
    assert found is not None
    return found


# --- writing entries ------------------------------------------------------------------------------


def _entry(account: PointsAccount, kind: str, points: int, now: datetime, **fields) -> LedgerEntry:
    entry = LedgerEntry(account_id=account.id, kind=kind, points=points, at=now, **fields)
    db.session.add(entry)
    db.session.flush()
    return entry


def _new_lot(account: PointsAccount, entry: LedgerEntry, now: datetime, holding_days: int) -> PointsLot:
    days = current_app.config["POINTS_EXPIRY_DAYS"]
    available = now + timedelta(days=holding_days)
    lot = PointsLot(
        account_id=account.id,
        entry_id=entry.id,
        points=entry.points,
        remaining=entry.points,
        earned_at=now,
        available_at=available,
        expires_on=local_date(now) + timedelta(days=days),
        status="pending" if holding_days > 0 else "active",
    )
    db.session.add(lot)
    db.session.flush()
    db.session.add(LotMove(entry_id=entry.id, lot_id=lot.id, points=entry.points))
    return lot


def earn(
    resident_id: int,
    points: int,
    *,
    source: str,
    actor: str,
    rule_code: str | None = None,
    partner_id: int | None = None,
    reference: str | None = None,
    dedupe_key: str | None = None,
    holding_days: int = 0,
    note: str | None = None,
    kind: str = "earn",
    now: datetime | None = None,
) -> LedgerEntry:
    """Add points in a new lot (pending for ``holding_days``, then spendable until expiry)."""
    if points <= 0:
        raise PointsError("points_positive")
    now = now or utcnow()
    account = lock_account(resident_id)
    if dedupe_key and db.session.scalar(select(LedgerEntry.id).where(LedgerEntry.dedupe_key == dedupe_key)):
        raise PointsError("already_awarded", 409)
    entry = _entry(
        account,
        kind,
        points,
        now,
        source=source,
        actor=actor,
        rule_code=rule_code,
        partner_id=partner_id,
        reference=reference,
        dedupe_key=dedupe_key,
        note=note,
    )
    _new_lot(account, entry, now, holding_days)
    return entry


def _spendable(account_id: int, now: datetime):
    return (
        PointsLot.account_id == account_id,
        PointsLot.remaining > 0,
        PointsLot.available_at <= now,
        PointsLot.expires_on >= local_date(now),
    )


def _spendable_lots(account_id: int, now: datetime, *, first: int | None = None) -> list[PointsLot]:
    """Spendable lots, soonest-expiring first (``first``: this lot before all others)."""
    lots = list(
        db.session.scalars(
            select(PointsLot).where(*_spendable(account_id, now)).order_by(PointsLot.expires_on, PointsLot.id)
        )
    )
    if first is not None:
        lots.sort(key=lambda lot: lot.id != first)
    return lots


def _lots_to_spend(account_id: int, now: datetime, points: int) -> list[PointsLot]:
    """Only the soonest-expiring lots that cover ``points`` (a running sum in the database), so a
    spend reads a few rows however many lots the account holds."""
    order = (PointsLot.expires_on, PointsLot.id)
    before = func.sum(PointsLot.remaining).over(order_by=order) - PointsLot.remaining
    ranked = select(PointsLot.id, before.label("before")).where(*_spendable(account_id, now)).subquery()
    return list(
        db.session.scalars(
            select(PointsLot)
            .join(ranked, ranked.c.id == PointsLot.id)
            .where(ranked.c.before < points)
            .order_by(*order)
        )
    )


def _take(entry: LedgerEntry, lots: list[PointsLot], points: int) -> None:
    left = points
    for lot in lots:
        if left == 0:
            break
        used = min(lot.remaining, left)
        lot.remaining -= used
        left -= used
        db.session.add(LotMove(entry_id=entry.id, lot_id=lot.id, points=-used))
    assert left == 0


def spend(
    resident_id: int,
    points: int,
    *,
    source: str,
    actor: str,
    partner_id: int | None = None,
    reference: str | None = None,
    note: str | None = None,
    kind: str = "redeem",
    now: datetime | None = None,
) -> LedgerEntry:
    """Take points, soonest-expiring first; refused (409) when the balance is too small."""
    if points <= 0:
        raise PointsError("points_positive")
    now = now or utcnow()
    account = lock_account(resident_id)
    lots = _lots_to_spend(account.id, now, points)
    if sum(lot.remaining for lot in lots) < points:
        raise PointsError("insufficient_points", 409)
    entry = _entry(
        account,
        kind,
        -points,
        now,
        source=source,
        actor=actor,
        partner_id=partner_id,
        reference=reference,
        note=note,
    )
    _take(entry, lots, points)
    db.session.flush()
    return entry


def reverse(
    entry_id: int,
    *,
    actor: str,
    partner_id: int | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> LedgerEntry:
    """A reversing entry: a refunded redemption gives points back to the lots they came from; a
    withdrawn award takes its points back (its own lot first). Each entry is reversed at most once."""
    now = now or utcnow()
    original = db.session.get(LedgerEntry, entry_id)
    if original is None or (partner_id is not None and original.partner_id != partner_id):
        raise PointsError("entry_unknown", 404)
    if original.kind not in ("earn", "redeem", "adjust"):
        raise PointsError("not_reversible", 409)
    account = db.session.get(PointsAccount, original.account_id)
    assert account is not None
    account = lock_account(account.resident_id)
    if db.session.scalar(select(LedgerEntry.id).where(LedgerEntry.reverses_id == original.id)):
        raise PointsError("already_reversed", 409)
    fields = {
        "source": original.source,
        "actor": actor,
        "partner_id": original.partner_id,
        "reference": original.reference,
        "reverses_id": original.id,
        "rule_code": original.rule_code,
        "note": note,
    }
    if original.points < 0:
        entry = _entry(account, "reverse", -original.points, now, **fields)
        for move in db.session.scalars(select(LotMove).where(LotMove.entry_id == original.id)):
            lot = db.session.get(PointsLot, move.lot_id)
            assert lot is not None
            lot.remaining += -move.points
            db.session.add(LotMove(entry_id=entry.id, lot_id=lot.id, points=-move.points))
        db.session.flush()
        return entry
    own = db.session.scalar(select(PointsLot).where(PointsLot.entry_id == original.id))
    lots = _spendable_lots(account.id, now, first=own.id if own else None)
    if own is not None and own not in lots and own.remaining > 0:
        lots.insert(0, own)  # a still-pending award is withdrawn from its own lot
    if sum(lot.remaining for lot in lots) < original.points:
        raise PointsError("insufficient_points", 409)
    entry = _entry(account, "reverse", -original.points, now, **fields)
    _take(entry, lots, original.points)
    db.session.flush()
    return entry


# --- reading --------------------------------------------------------------------------------------


@dataclass
class Balance:
    available: int
    pending: int
    expiries: list[tuple[date, int]] = field(default_factory=list)  # every upcoming date, soonest first
    pending_until: list[tuple[datetime, int]] = field(default_factory=list)


def balance(resident_id: int, now: datetime | None = None) -> Balance:
    now = now or utcnow()
    account = find_account(resident_id)
    if account is None:
        return Balance(0, 0)
    today = local_date(now)
    lots = db.session.scalars(
        select(PointsLot)
        .where(PointsLot.account_id == account.id, PointsLot.remaining > 0, PointsLot.expires_on >= today)
        .order_by(PointsLot.expires_on, PointsLot.id)
    ).all()
    available = pending = 0
    expiries: dict[date, int] = {}
    pending_until: dict[datetime, int] = {}
    for lot in lots:
        if lot.available_at <= now:
            available += lot.remaining
        else:
            pending += lot.remaining
            pending_until[lot.available_at] = pending_until.get(lot.available_at, 0) + lot.remaining
        expiries[lot.expires_on] = expiries.get(lot.expires_on, 0) + lot.remaining
    return Balance(available, pending, sorted(expiries.items()), sorted(pending_until.items()))


def ledger_total(resident_id: int) -> int:
    """The sum over the account's entries (the books): equals the points left in its lots."""
    account = find_account(resident_id)
    if account is None:
        return 0
    return db.session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(LedgerEntry.account_id == account.id)
    )


def history(resident_id: int, *, limit: int = 50, offset: int = 0) -> list[LedgerEntry]:
    account = find_account(resident_id)
    if account is None:
        return []
    return list(
        db.session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.account_id == account.id)
            .order_by(LedgerEntry.at.desc(), LedgerEntry.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )


def reversed_ids(entry_ids: list[int]) -> set[int]:
    if not entry_ids:
        return set()
    return set(
        db.session.scalars(select(LedgerEntry.reverses_id).where(LedgerEntry.reverses_id.in_(entry_ids)))
    )


# --- the daily run --------------------------------------------------------------------------------


def activate_due(now: datetime | None = None) -> int:
    """Pending lots whose holding period is over become active (spending already follows the time)."""
    now = now or utcnow()
    result = db.session.execute(
        update(PointsLot)
        .where(PointsLot.status == "pending", PointsLot.available_at <= now)
        .values(status="active")
    )
    return result.rowcount or 0


def expire_due(now: datetime | None = None) -> int:
    """An ``expire`` entry for every lot past its date with points left; running it twice changes
    nothing the second time (the lot has none left)."""
    now = now or utcnow()
    today = local_date(now)
    account_ids = db.session.scalars(
        select(PointsLot.account_id)
        .where(PointsLot.remaining > 0, PointsLot.expires_on < today)
        .distinct()
        .order_by(PointsLot.account_id)
    ).all()
    expired = 0
    for account_id in account_ids:
        account = db.session.get(PointsAccount, account_id)
        assert account is not None
        lock_account(account.resident_id)
        lots = db.session.scalars(
            select(PointsLot)
            .where(PointsLot.account_id == account_id, PointsLot.remaining > 0, PointsLot.expires_on < today)
            .order_by(PointsLot.expires_on, PointsLot.id)
        ).all()
        for lot in lots:
            entry = _entry(
                account,
                "expire",
                -lot.remaining,
                now,
                source="expiry",
                actor="job:points-daily",
                reference=f"lot {lot.id} {lot.expires_on.isoformat()}",
            )
            db.session.add(LotMove(entry_id=entry.id, lot_id=lot.id, points=-lot.remaining))
            lot.remaining = 0
            expired += 1
        db.session.commit()
    return expired
