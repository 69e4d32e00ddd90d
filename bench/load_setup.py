"""Run by bench/load.py inside the load deployment's environment (its production app): resident
accounts, a notice in every inbox, card credentials linked to residents, bookable slots. Idempotent.
Prints the locust fixture as JSON."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for portal and wsgi

PASSWORD = "load-test-password-2026"  # noqa: S105 - accounts of the load deployment only


def main(cards_dir: str, cards: int, residents: int) -> None:
    from sqlalchemy import select, text

    from portal.accounts.service import hash_password
    from portal.cardid import service as cardid
    from portal.extensions import db
    from portal.models_base import utcnow
    from portal.notices.models import Notice
    from portal.notices.service import fan_out
    from wsgi import create_app

    app = create_app()
    with app.app_context():
        db.session.execute(
            text(
                "INSERT INTO resident_accounts (email, password_hash, email_verified_at, resident_id, locale,"
                " created_at, session_version, active) "
                "SELECT 'load-' || r.id || '@load.example.jp', :hash, now(), r.id, 'ja', now(), 1, true "
                "FROM residents r WHERE r.status = 'active' AND NOT EXISTS "
                "(SELECT 1 FROM resident_accounts a WHERE a.resident_id = r.id) ORDER BY r.id LIMIT :n"
            ),
            {"hash": hash_password(PASSWORD), "n": residents},
        )
        db.session.commit()
        if not db.session.scalar(select(Notice.id).where(Notice.title_en == "Load test notice")):
            n = Notice(
                category="event",
                title_ja="負荷試験のお知らせ",
                title_en="Load test notice",
                body_ja="負荷試験です。",
                body_en="A load test.",
                rule="{}",
                reply_kind="none",
                status="approved",
                created_by="author1",
                approved_by="approver1",
                approved_at=utcnow(),
            )
            db.session.add(n)
            db.session.commit()
            fan_out(n.id)
        logins = [
            {"email": e}
            for (e,) in db.session.execute(
                text("SELECT email FROM resident_accounts WHERE email LIKE 'load-%' ORDER BY id LIMIT :n"),
                {"n": residents},
            )
        ]
        people = [
            rid
            for (rid,) in db.session.execute(
                text(
                    "SELECT resident_id FROM resident_accounts WHERE email LIKE 'load-%' ORDER BY id LIMIT :n"
                ),
                {"n": cards},
            )
        ]
        card_list = []
        for i, rid in enumerate(people):
            folder = Path(cards_dir) / f"card{i}"
            der = (folder / "auth_cert.der").read_bytes()
            verified = cardid.verify_certificate_only(der)
            if not db.session.scalar(
                text("SELECT 1 FROM card_credentials WHERE serial = :s AND issuer = :i"),
                {
                    "s": verified.serial_hex if hasattr(verified, "serial_hex") else str(verified.serial),
                    "i": verified.issuer,
                },
            ):
                try:
                    db.session.add(
                        cardid.CardCredential.from_verified(
                            verified, resident_id=rid, linked_by="load", via="text_ap"
                        )
                    )
                    db.session.commit()
                except Exception:
                    db.session.rollback()
            card_list.append(
                {"certificate": base64.b64encode(der).decode(), "key": (folder / "auth_key.pem").read_text()}
            )
        slots = [
            {"id": s, "service": code, "date": day.isoformat()}
            for (s, code, day) in db.session.execute(
                text(
                    "SELECT s.id, v.code, (s.starts_at AT TIME ZONE 'Asia/Tokyo')::date FROM booking_slots s "
                    "JOIN booking_services v ON v.id = s.service_id WHERE NOT s.closed AND v.active "
                    "AND s.starts_at > now() + make_interval(hours => v.lead_hours + 1) "
                    "AND s.starts_at < now() + make_interval(days => v.horizon_days - 1) "
                    "ORDER BY s.starts_at LIMIT 300"
                )
            )
        ]
        partner = _partner(people)
        print(
            json.dumps(
                {
                    "residents": logins,
                    "password": PASSWORD,
                    "cards": card_list,
                    "slots": slots,
                    "partner": partner,
                }
            )
        )


def _partner(resident_ids: list[int]) -> dict:
    """A points partner with no holding period, an API client (read, award, redeem) and members
    holding points to redeem: what the scenario's partner tills use."""
    from sqlalchemy import select

    from portal.extensions import db
    from portal.points import ledger, oauth, partners
    from portal.points.models import Partner

    partner = db.session.scalar(select(Partner).where(Partner.code == "load-test"))
    if partner is None:
        partner = Partner(code="load-test", name="負荷試験ストア", holding_days=0, active=True)
        db.session.add(partner)
        db.session.flush()
    client, secret = oauth.new_client(partner, ["read", "award", "redeem"])
    members = []
    for rid in resident_ids:
        members.append(partners.opt_in(rid, partner.id).member_id)
        ledger.earn(rid, 10_000, source="staff", actor="staff:load-test", note="load test")
    db.session.commit()
    return {"client_id": client.client_id, "secret": secret, "members": members}


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print("part of bench/load.py (run that)")
    else:
        main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
