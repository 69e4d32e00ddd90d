"""The redemption catalogue: public-facility coupons and partner discounts, bought with points,
with stock and a per-resident limit; a coupon's one-time code is used once."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from portal.extensions import db
from portal.models_base import utcnow
from portal.points import ledger, tiers
from portal.points.ledger import PointsError, local_date
from portal.points.models import CatalogueItem, Coupon, PointsAccount

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
KINDS = ("facility_coupon", "partner_discount")
TIER_BONUS_DAYS = 30  # silver and above: coupons valid longer (a tier benefit)


def items(*, active_only: bool = True) -> list[CatalogueItem]:
    query = select(CatalogueItem).order_by(CatalogueItem.kind, CatalogueItem.points, CatalogueItem.id)
    if active_only:
        query = query.where(CatalogueItem.active)
    return list(db.session.scalars(query))


def _new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalise_code(text: str) -> str:
    clean = "".join(ch for ch in text.upper() if ch.isalnum())
    return f"{clean[:4]}-{clean[4:8]}-{clean[8:12]}" if len(clean) == 12 else text.strip().upper()


def used_count(account_id: int, item_id: int) -> int:
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(Coupon)
            .where(Coupon.account_id == account_id, Coupon.item_id == item_id)
        )
        or 0
    )


def redeem_item(resident_id: int, item_id: int, *, now: datetime | None = None) -> Coupon:
    """Spend the item's points and issue its coupon. The account lock serialises this resident's
    spends; the stock is taken by a guarded UPDATE, so two residents never get the last one."""
    now = now or utcnow()
    item = db.session.get(CatalogueItem, item_id)
    if item is None or not item.active:
        raise PointsError("item_unknown", 404)
    account = ledger.lock_account(resident_id)
    if item.per_resident_limit is not None and used_count(account.id, item.id) >= item.per_resident_limit:
        raise PointsError("limit_reached", 409)
    if item.stock is not None:
        taken = db.session.execute(
            update(CatalogueItem)
            .where(CatalogueItem.id == item.id, CatalogueItem.stock > 0)
            .values(stock=CatalogueItem.stock - 1)
        ).rowcount
        if not taken:
            raise PointsError("out_of_stock", 409)
    entry = ledger.spend(
        resident_id,
        item.points,
        source="catalogue",
        actor=f"resident:{resident_id}",
        partner_id=None,
        reference=f"catalogue {item.code}",
        now=now,
    )
    days = item.valid_days + (TIER_BONUS_DAYS if account.tier in ("silver", "gold", "platinum") else 0)
    coupon = Coupon(
        code=_new_code(),
        item_id=item.id,
        account_id=account.id,
        entry_id=entry.id,
        issued_at=now,
        expires_on=local_date(now) + timedelta(days=days),
    )
    db.session.add(coupon)
    db.session.flush()
    return coupon


def coupons_of(resident_id: int) -> list[Coupon]:
    account = ledger.find_account(resident_id)
    if account is None:
        return []
    return list(
        db.session.scalars(
            select(Coupon).where(Coupon.account_id == account.id).order_by(Coupon.issued_at.desc())
        )
    )


def use_coupon(
    code: str, *, actor: str, partner_id: int | None = None, now: datetime | None = None
) -> Coupon:
    """Mark a coupon used, once: the UPDATE only succeeds while it is unused. ``partner_id``: a
    partner may only use coupons for its own items; city staff only facility coupons."""
    now = now or utcnow()
    coupon = db.session.scalar(select(Coupon).where(Coupon.code == normalise_code(code)))
    if coupon is None:
        raise PointsError("coupon_unknown", 404)
    if coupon.item.partner_id != partner_id:
        raise PointsError("coupon_elsewhere", 403)
    if coupon.expires_on < local_date(now):
        raise PointsError("coupon_expired", 410)
    done = db.session.execute(
        update(Coupon)
        .where(Coupon.id == coupon.id, Coupon.used_at.is_(None))
        .values(used_at=now, used_by=actor)
    ).rowcount
    if not done:
        raise PointsError("coupon_used", 409)
    db.session.refresh(coupon)
    return coupon


def tier_of(resident_id: int) -> tiers.Tier:
    account = db.session.scalar(select(PointsAccount).where(PointsAccount.resident_id == resident_id))
    return tiers.BY_CODE.get(account.tier if account else "standard", tiers.TIERS[0])
