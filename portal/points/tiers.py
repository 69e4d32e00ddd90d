"""Tiers (ランク): from the points earned in the last 12 months, recomputed by the daily run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select

from portal.extensions import db
from portal.models_base import utcnow
from portal.points.models import LedgerEntry, PointsAccount


@dataclass(frozen=True)
class Tier:
    code: str
    minimum: int  # points earned in the last 12 months
    colour: str  # the card colour shown to the resident
    name: object
    benefits: tuple[object, ...]


TIERS = (
    Tier("standard", 0, "#2f6f4f", _l("Green"), (_l("Earn and use points"),)),
    Tier(
        "silver",
        500,
        "#5b6770",
        _l("Silver"),
        (_l("Earn and use points"), _l("Coupons valid 30 days longer")),
    ),
    Tier(
        "gold",
        1500,
        "#7a5d00",
        _l("Gold"),
        (
            _l("Earn and use points"),
            _l("Coupons valid 30 days longer"),
            _l("Priority booking for public facilities"),
        ),
    ),
    Tier(
        "platinum",
        3000,
        "#3d2f6b",
        _l("Platinum"),
        (
            _l("Earn and use points"),
            _l("Coupons valid 30 days longer"),
            _l("Priority booking for public facilities"),
            _l("Invitation to the city's volunteer thank-you day"),
        ),
    ),
)
BY_CODE = {t.code: t for t in TIERS}


def tier_for(points: int) -> Tier:
    chosen = TIERS[0]
    for tier in TIERS:
        if points >= tier.minimum:
            chosen = tier
    return chosen


def next_tier(points: int) -> Tier | None:
    for tier in TIERS:
        if points < tier.minimum:
            return tier
    return None


def _earned_since(since: datetime):
    """Points earned (earns and positive adjustments, less withdrawn awards) since ``since``."""
    return (
        select(LedgerEntry.account_id, func.coalesce(func.sum(LedgerEntry.points), 0))
        .where(
            LedgerEntry.at >= since,
            or_(
                LedgerEntry.kind == "earn",
                (LedgerEntry.kind == "adjust") & (LedgerEntry.points > 0),
                (LedgerEntry.kind == "reverse") & (LedgerEntry.points < 0),  # a withdrawn award
            ),
        )
        .group_by(LedgerEntry.account_id)
    )


def earned_last_year(account_id: int, now: datetime | None = None) -> int:
    now = now or utcnow()
    row = db.session.execute(
        _earned_since(now - timedelta(days=365)).where(LedgerEntry.account_id == account_id)
    ).first()
    return int(row[1]) if row else 0


def recompute(now: datetime | None = None) -> int:
    """Set every account's tier from its last 12 months; returns how many changed."""
    from portal.points.ledger import local_date

    now = now or utcnow()
    earned = {aid: int(total) for aid, total in db.session.execute(_earned_since(now - timedelta(days=365)))}
    changed = 0
    for account in db.session.scalars(select(PointsAccount).order_by(PointsAccount.id)):
        points = max(earned.get(account.id, 0), 0)
        tier = tier_for(points).code
        if account.tier != tier:
            changed += 1
        account.tier, account.tier_points, account.tier_computed_on = tier, points, local_date(now)
    db.session.commit()
    return changed
