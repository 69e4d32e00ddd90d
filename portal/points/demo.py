"""Demo data for points: partners with API clients, catalogue items, and points for the first
demo resident (resident1@demo.city.example.jp). Deterministic, development only."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from portal.accounts.models import ResidentAccount
from portal.extensions import db
from portal.models_base import utcnow
from portal.points import ledger, oauth, partners, rules
from portal.points.models import CatalogueItem, OAuthClient, Partner, VolunteerActivity

PARTNERS = (
    ("shop-minato", "みなと商店街 協同組合", 14, ("read", "award", "redeem")),
    ("cafe-umi", "カフェ うみ", 7, ("read", "award", "redeem")),
    ("npo-green", "NPO法人 みどりの会（ボランティア）", 0, ("read", "award")),
)
ITEMS = (
    (
        "pool-1",
        "facility_coupon",
        "市民プール 1回利用券",
        "City pool: one visit",
        "みなと市民プール",
        300,
        200,
        4,
        None,
    ),
    (
        "museum-1",
        "facility_coupon",
        "市立美術館 観覧券",
        "City art museum: one ticket",
        "みなと市立美術館",
        500,
        100,
        2,
        None,
    ),
    (
        "bus-day",
        "facility_coupon",
        "コミュニティバス 1日乗車券",
        "Community bus: day pass",
        "みなと市コミュニティバス",
        400,
        None,
        None,
        None,
    ),
    (
        "cafe-100",
        "partner_discount",
        "カフェ うみ 100円引き",
        "Cafe Umi: ¥100 off",
        "カフェ うみ",
        100,
        None,
        5,
        "cafe-umi",
    ),
)


def loaded() -> bool:
    return (db.session.scalar(select(func.count()).select_from(Partner)) or 0) > 0


def load() -> None:
    """Partners, catalogue and resident1's points, once (API clients: ``new_clients``)."""
    if loaded():
        return
    rules.ensure_rules("demo")
    by_code = {}
    for code, name, holding, _scopes in PARTNERS:
        by_code[code] = Partner(code=code, name=name, holding_days=holding)
        db.session.add(by_code[code])
    db.session.flush()
    for code, kind, name_ja, name_en, place, points, stock, limit, partner in ITEMS:
        db.session.add(
            CatalogueItem(
                code=code,
                kind=kind,
                name_ja=name_ja,
                name_en=name_en,
                place=place,
                points=points,
                stock=stock,
                per_resident_limit=limit,
                partner_id=by_code[partner].id if partner else None,
            )
        )
    account = db.session.scalar(
        select(ResidentAccount).where(ResidentAccount.email == "resident1@demo.city.example.jp")
    )
    if account is not None and account.resident_id:
        _resident_points(account.resident_id, by_code)
    db.session.commit()


def _resident_points(resident_id: int, by_code: dict[str, Partner]) -> None:
    """A history that shows every kind of entry and several expiry dates."""
    now = utcnow()
    rid = resident_id
    beach = VolunteerActivity(
        title="海岸清掃ボランティア",
        held_on=(now - timedelta(days=400)).date(),
        organiser="みなと市 環境課",
        created_by="demo",
    )
    park = VolunteerActivity(
        title="公園の花壇づくり",
        held_on=(now - timedelta(days=30)).date(),
        organiser="NPO法人 みどりの会",
        created_by="demo",
    )
    db.session.add_all([beach, park])
    db.session.flush()
    ledger.earn(
        rid,
        100,
        source="rule",
        actor="demo",
        rule_code="volunteer",
        reference=f"activity {beach.id}",
        now=now - timedelta(days=400),
    )
    ledger.earn(
        rid,
        300,
        source="rule",
        actor="demo",
        rule_code="health_checkup",
        reference="health check-up list",
        now=now - timedelta(days=200),
    )
    ledger.earn(
        rid,
        200,
        source="rule",
        actor="demo",
        rule_code="first_prefiling",
        reference="pre-filing",
        now=now - timedelta(days=90),
    )
    ledger.earn(
        rid,
        100,
        source="rule",
        actor="demo",
        rule_code="volunteer",
        reference=f"activity {park.id}",
        now=now - timedelta(days=30),
    )
    shop = by_code["shop-minato"]
    partners.opt_in(rid, shop.id)
    partners.opt_in(rid, by_code["cafe-umi"].id)
    ledger.earn(
        rid,
        150,
        source="partner",
        actor="demo",
        partner_id=shop.id,
        reference="R-1001",
        holding_days=0,
        now=now - timedelta(days=20),
    )
    spent = ledger.spend(
        rid,
        120,
        source="partner",
        actor="demo",
        partner_id=shop.id,
        reference="R-1002",
        now=now - timedelta(days=10),
    )
    ledger.reverse(spent.id, actor="demo", partner_id=shop.id, note="返品", now=now - timedelta(days=9))
    ledger.earn(
        rid,
        80,
        source="partner",
        actor="demo",
        partner_id=shop.id,
        reference="R-1003",
        holding_days=shop.holding_days,
        now=now - timedelta(days=2),
    )
    ledger.spend(
        rid,
        50,
        source="partner",
        actor="demo",
        partner_id=by_code["cafe-umi"].id,
        reference="C-77",
        now=now - timedelta(days=1),
    )


def new_clients() -> list[tuple[Partner, OAuthClient, str]]:
    """A fresh API client for every demo partner (older demo clients are revoked)."""
    out = []
    for code, _name, _holding, scopes in PARTNERS:
        partner = db.session.scalar(select(Partner).where(Partner.code == code))
        if partner is None:
            continue
        for old in db.session.scalars(select(OAuthClient).where(OAuthClient.partner_id == partner.id)):
            old.revoked_at = old.revoked_at or utcnow()
        client, secret = oauth.new_client(partner, list(scopes))
        out.append((partner, client, secret))
    db.session.commit()
    return out


def client_lines(clients: list[tuple[Partner, OAuthClient, str]]) -> list[str]:
    lines = ["Points partner API clients (POST /api/points/oauth/token, grant_type=client_credentials):"]
    for partner, client, secret in clients:
        lines.append(
            f"  {partner.code:12} client_id={client.client_id}  client_secret={secret}"
            f"  scopes='{client.scopes}'"
        )
    return lines
