"""Data for the fault tests, written into the deploy-local database through its own production app:
``python -m tests.ops.seed accounts`` | ``notice TITLE [REPLY_KIND] [approved|pending]`` |
``points-partner N POINTS``."""

from __future__ import annotations

import json
import sys

PASSWORD = "ops-test-password-2026"


def accounts() -> int:
    """A verified portal account for every resident that has none (one password hash for all)."""
    from sqlalchemy import text

    from portal.accounts.service import hash_password
    from portal.extensions import db

    made = db.session.execute(
        text(
            "INSERT INTO resident_accounts (email, password_hash, email_verified_at, resident_id, locale,"
            " created_at, session_version, active) "
            "SELECT 'ops-' || r.id || '@test.example.jp', :hash, now(), r.id, 'ja', now(), 1, true "
            "FROM residents r WHERE NOT EXISTS (SELECT 1 FROM resident_accounts a WHERE a.resident_id = r.id)"
        ),
        {"hash": hash_password(PASSWORD)},
    ).rowcount
    db.session.commit()
    return made


def notice(title: str, reply_kind: str = "none", status: str = "pending_approval") -> int:
    """A notice to every active resident, written by author1, waiting for approver1 (or approved)."""
    from portal.extensions import db
    from portal.models_base import utcnow
    from portal.notices.models import Notice

    n = Notice(
        category="event",
        title_ja=title,
        title_en=title,
        body_ja="運用試験のお知らせです。",
        body_en="An operations test notice.",
        rule="{}",
        reply_kind=reply_kind,
        status=status,
        created_by="author1",
    )
    if status == "approved":
        n.approved_by, n.approved_at = "approver1", utcnow()
    db.session.add(n)
    db.session.commit()
    return n.id


def main(argv: list[str]) -> None:
    from wsgi import create_app

    app = create_app()
    with app.app_context():
        if argv[0] == "accounts":
            print(accounts())
        elif argv[0] == "access-records":
            print(access_records())
        elif argv[0] == "notice":
            print(notice(*argv[1:]))
        elif argv[0] == "points-partner":
            print(json.dumps(points_partner(int(argv[1]), int(argv[2]))))
        else:
            raise SystemExit(f"unknown: {argv[0]}")


def access_records(n: int = 50) -> int:
    """Reads by a job, recorded on the hash chain (what a restore must keep verifiable)."""
    from sqlalchemy import select

    from portal.access import service as access
    from portal.extensions import db
    from portal.registry.models import Resident

    ids = list(db.session.scalars(select(Resident.id).order_by(Resident.id).limit(n)))
    actor = access.Actor(kind="job", id="ops-test", role="job", organisation="情報政策課")
    for rid in ids:
        access.record(actor, resident_id=rid, data_items=["basic4"], purpose="ops_restore_test")
    db.session.commit()
    return len(ids)


def points_partner(members: int, points: int) -> dict:
    """A partner with no holding period and an API client with every scope; ``members`` residents
    with portal accounts opt in and hold ``points`` spendable points each."""
    from sqlalchemy import select

    from portal.extensions import db
    from portal.points import ledger, oauth, partners
    from portal.points.models import Partner
    from portal.registry.models import Resident

    partner = db.session.scalar(select(Partner).where(Partner.code == "ops-test"))
    if partner is None:
        partner = Partner(code="ops-test", name="運用試験ストア", holding_days=0, active=True)
        db.session.add(partner)
        db.session.flush()
    client, secret = oauth.new_client(partner, ["read", "award", "redeem"])
    ids = list(
        db.session.scalars(
            select(Resident.id).where(Resident.status == "active").order_by(Resident.id.desc()).limit(members)
        )
    )
    out = []
    for rid in ids:
        membership = partners.opt_in(rid, partner.id)
        ledger.earn(rid, points, source="staff", actor="staff:ops-test", note="ops fault test")
        out.append({"member_id": membership.member_id, "resident_id": rid})
    db.session.commit()
    return {"client_id": client.client_id, "secret": secret, "members": out}


if __name__ == "__main__":
    main(sys.argv[1:])
