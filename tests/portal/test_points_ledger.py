"""The points ledger through its service: lots with expiry spent soonest-expiring first, pending
partner awards, reversals, the append-only tables, the daily run (idempotent), tiers, earning
rules with caps, and the catalogue (stock, limits, one-time coupons). SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from portal.points import catalogue, ledger, rules, tiers
from portal.points.ledger import PointsError
from portal.points.models import CatalogueItem, LedgerEntry, LotMove, PointsLot
from tests.factories import make_resident

T0 = datetime(2026, 4, 10, 3, 0, tzinfo=UTC)


def _earn(rid, points, at, **kw):
    return ledger.earn(rid, points, source="rule", actor="test", now=at, **kw)


def test_spends_soonest_expiring_first(db):
    rid = make_resident().id
    old = _earn(rid, 100, T0)
    new = _earn(rid, 100, T0 + timedelta(days=30))
    spent = ledger.spend(rid, 150, source="partner", actor="test", now=T0 + timedelta(days=40))
    db.session.commit()
    moves = {
        m.lot_id: m.points for m in db.session.scalars(select(LotMove).where(LotMove.entry_id == spent.id))
    }
    old_lot = db.session.scalar(select(PointsLot).where(PointsLot.entry_id == old.id))
    new_lot = db.session.scalar(select(PointsLot).where(PointsLot.entry_id == new.id))
    assert moves == {old_lot.id: -100, new_lot.id: -50}
    assert (old_lot.remaining, new_lot.remaining) == (0, 50)
    b = ledger.balance(rid, now=T0 + timedelta(days=40))
    assert b.available == 50
    assert b.expiries == [(new_lot.expires_on, 50)]
    assert ledger.ledger_total(rid) == 50


def test_every_expiry_date_is_listed_and_expiry_runs_once(db, app):
    rid = make_resident().id
    first = _earn(rid, 100, T0)
    _earn(rid, 40, T0 + timedelta(days=10))
    _earn(rid, 60, T0 + timedelta(days=20))
    db.session.commit()
    b = ledger.balance(rid, now=T0 + timedelta(days=21))
    assert [p for _, p in b.expiries] == [100, 40, 60]
    assert len({d for d, _ in b.expiries}) == 3
    lot = db.session.scalar(select(PointsLot).where(PointsLot.entry_id == first.id))
    assert lot.expires_on == ledger.local_date(T0) + timedelta(days=app.config["POINTS_EXPIRY_DAYS"])
    # The day after the first lot's last day: it expires, the others stay.
    after = datetime.combine(lot.expires_on + timedelta(days=1), datetime.min.time(), tzinfo=ledger.JST)
    assert ledger.expire_due(now=after) == 1
    assert ledger.expire_due(now=after) == 0  # idempotent
    assert ledger.balance(rid, now=after).available == 100
    kinds = [e.kind for e in ledger.history(rid)]
    assert kinds.count("expire") == 1
    assert ledger.ledger_total(rid) == 100
    # An expired lot cannot be spent even before the daily run removes it.
    with pytest.raises(PointsError) as exc:
        ledger.spend(rid, 101, source="partner", actor="test", now=after)
    assert exc.value.code == "insufficient_points"


def test_balance_never_negative(db):
    rid = make_resident().id
    _earn(rid, 30, T0)
    db.session.commit()
    with pytest.raises(PointsError) as exc:
        ledger.spend(rid, 31, source="partner", actor="test", now=T0)
    assert (exc.value.code, exc.value.status) == ("insufficient_points", 409)
    db.session.rollback()
    assert ledger.balance(rid, now=T0).available == 30
    with pytest.raises(PointsError):
        ledger.spend(rid, 0, source="partner", actor="test", now=T0)


def test_pending_award_becomes_spendable_after_holding(db):
    rid = make_resident().id
    award = ledger.earn(rid, 80, source="partner", actor="test", holding_days=14, now=T0)
    db.session.commit()
    b = ledger.balance(rid, now=T0 + timedelta(days=1))
    assert (b.available, b.pending) == (0, 80)
    with pytest.raises(PointsError):
        ledger.spend(rid, 10, source="partner", actor="test", now=T0 + timedelta(days=1))
    db.session.rollback()
    assert ledger.activate_due(now=T0 + timedelta(days=13)) == 0
    assert ledger.activate_due(now=T0 + timedelta(days=14)) == 1
    assert ledger.activate_due(now=T0 + timedelta(days=14)) == 0
    db.session.commit()
    lot = db.session.scalar(select(PointsLot).where(PointsLot.entry_id == award.id))
    assert lot.status == "active"
    assert ledger.balance(rid, now=T0 + timedelta(days=14)).available == 80


def test_reversal_of_a_redemption_gives_points_back_to_their_lots(db):
    rid = make_resident().id
    _earn(rid, 100, T0)
    _earn(rid, 100, T0 + timedelta(days=5))
    spent = ledger.spend(rid, 150, source="partner", actor="test", now=T0 + timedelta(days=6))
    refund = ledger.reverse(spent.id, actor="test", now=T0 + timedelta(days=7))
    db.session.commit()
    assert (refund.kind, refund.points, refund.reverses_id) == ("reverse", 150, spent.id)
    assert [lot.remaining for lot in db.session.scalars(select(PointsLot).order_by(PointsLot.id))] == [
        100,
        100,
    ]
    with pytest.raises(PointsError) as exc:
        ledger.reverse(spent.id, actor="test")
    assert exc.value.code == "already_reversed"
    db.session.rollback()
    assert ledger.ledger_total(rid) == 200


def test_reversal_of_an_award_and_of_spent_points(db):
    rid = make_resident().id
    award = _earn(rid, 100, T0)
    ledger.spend(rid, 80, source="partner", actor="test", now=T0 + timedelta(days=1))
    db.session.commit()
    with pytest.raises(PointsError) as exc:  # 80 of its 100 are spent: only 20 left
        ledger.reverse(award.id, actor="test", now=T0 + timedelta(days=2))
    assert exc.value.code == "insufficient_points"
    db.session.rollback()
    _earn(rid, 100, T0 + timedelta(days=3))
    back = ledger.reverse(award.id, actor="test", now=T0 + timedelta(days=4))
    db.session.commit()
    assert back.points == -100
    assert ledger.balance(rid, now=T0 + timedelta(days=4)).available == 20
    with pytest.raises(PointsError) as exc:
        ledger.reverse(back.id, actor="test")
    assert exc.value.code == "not_reversible"


def test_ledger_rows_cannot_be_changed_or_deleted(db):
    rid = make_resident().id
    entry = _earn(rid, 10, T0)
    db.session.commit()
    for statement in (
        sa.text("UPDATE points_entries SET points = 1000 WHERE id = :id"),
        sa.text("DELETE FROM points_entries WHERE id = :id"),
        sa.text("UPDATE points_lot_moves SET points = 1000 WHERE entry_id = :id"),
        sa.text("DELETE FROM points_lot_moves WHERE entry_id = :id"),
    ):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            db.session.execute(statement, {"id": entry.id})
        db.session.rollback()
    assert db.session.get(LedgerEntry, entry.id).points == 10


def test_tiers_from_the_last_twelve_months(db):
    rid = make_resident().id
    now = T0 + timedelta(days=400)
    _earn(rid, 2000, T0)  # more than a year before ``now``: does not count
    _earn(rid, 600, now - timedelta(days=30))
    db.session.commit()
    assert tiers.recompute(now=now) == 1
    account = ledger.find_account(rid)
    assert (account.tier, account.tier_points) == ("silver", 600)
    assert tiers.recompute(now=now) == 0  # idempotent
    assert tiers.tier_for(1500).code == "gold"
    assert tiers.next_tier(600).code == "gold"


def test_earning_rule_cap_per_month(db):
    rules.ensure_rules()
    rules.update_rule("volunteer", points=150, period="month", cap=400, active=True, actor="test")
    rid = make_resident().id
    got = [rules.award("volunteer", rid, actor="test", now=T0 + timedelta(hours=i)).points for i in range(3)]
    assert got == [150, 150, 100]  # the third is cut to the cap
    db.session.commit()
    with pytest.raises(PointsError) as exc:
        rules.award("volunteer", rid, actor="test", now=T0 + timedelta(hours=5))
    assert exc.value.code == "cap_reached"
    db.session.rollback()
    # A new month: the cap starts again.
    assert rules.award("volunteer", rid, actor="test", now=T0 + timedelta(days=25)).points == 150


def test_first_use_of_an_e_service_awards_once(db):
    rid = make_resident().id
    first = rules.first_use(rid, "prefiling", "pre-filing 1")
    again = rules.first_use(rid, "prefiling", "pre-filing 2")
    db.session.commit()
    assert first is not None and first.points == rules.DEFAULTS["first_prefiling"][0]
    assert again is None
    assert ledger.balance(rid).available == first.points


def _item(**kw) -> CatalogueItem:
    from portal.extensions import db as database

    fields = {
        "code": "pool",
        "kind": "facility_coupon",
        "name_ja": "プール",
        "name_en": "Pool",
        "place": "市民プール",
        "points": 100,
    }
    fields.update(kw)
    item = CatalogueItem(**fields)
    database.session.add(item)
    database.session.flush()
    return item


def test_catalogue_stock_limit_and_one_time_coupon(db):
    item = _item(stock=1, per_resident_limit=1)
    a, b = make_resident().id, make_resident().id
    _earn(a, 300, T0)
    _earn(b, 300, T0)
    db.session.commit()
    coupon = catalogue.redeem_item(a, item.id)
    db.session.commit()
    with pytest.raises(PointsError) as exc:
        catalogue.redeem_item(a, item.id)
    assert exc.value.code == "limit_reached"
    db.session.rollback()
    with pytest.raises(PointsError) as exc:
        catalogue.redeem_item(b, item.id)
    assert exc.value.code == "out_of_stock"
    db.session.rollback()
    assert ledger.balance(a).available == 200 and ledger.balance(b).available == 300
    used = catalogue.use_coupon(coupon.code.lower().replace("-", ""), actor="staff:x")
    db.session.commit()
    assert used.used_at is not None
    with pytest.raises(PointsError) as exc:
        catalogue.use_coupon(coupon.code, actor="staff:x")
    assert exc.value.code == "coupon_used"


def test_books_balance_after_a_mixed_history(db):
    """The sum of entries equals the points left in lots, for every account."""
    rid = make_resident().id
    e1 = _earn(rid, 120, T0)
    ledger.earn(rid, 50, source="partner", actor="t", holding_days=10, now=T0)
    s1 = ledger.spend(rid, 70, source="partner", actor="t", now=T0 + timedelta(days=1))
    ledger.reverse(s1.id, actor="t", now=T0 + timedelta(days=2))
    ledger.spend(rid, 100, source="partner", actor="t", now=T0 + timedelta(days=3))
    db.session.commit()
    lots_total = db.session.scalar(select(func.sum(PointsLot.remaining)))
    assert lots_total == ledger.ledger_total(rid) == 70
    assert e1.kind == "earn"
