"""Partners: memberships under pseudonymous member IDs, member QR codes, card identification at a
partner's terminal, idempotent writes, and the monthly settlement."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.access import service as access
from portal.extensions import db
from portal.models_base import utcnow
from portal.points import ledger
from portal.points.ledger import JST, PointsError
from portal.points.models import IdempotentRequest, LedgerEntry, Membership, Partner, PointsAccount

QR_SALT = "points-member-qr"


def partner_actor(partner: Partner, client_id: str) -> access.Actor:
    return access.Actor(kind="partner", id=client_id, role="partner", organisation=partner.name)


# --- memberships ----------------------------------------------------------------------------------


def active_partners() -> list[Partner]:
    return list(db.session.scalars(select(Partner).where(Partner.active).order_by(Partner.name)))


def memberships_of(resident_id: int) -> dict[int, Membership]:
    rows = db.session.scalars(select(Membership).where(Membership.resident_id == resident_id))
    return {m.partner_id: m for m in rows}


def opt_in(resident_id: int, partner_id: int) -> Membership:
    partner = db.session.get(Partner, partner_id)
    if partner is None or not partner.active:
        raise PointsError("partner_unknown", 404)
    ledger.account_for(resident_id)
    row = db.session.scalar(
        select(Membership).where(Membership.partner_id == partner_id, Membership.resident_id == resident_id)
    )
    if row is None:
        # Random, so that two partners' IDs for one resident cannot be linked to each other.
        row = Membership(
            partner_id=partner_id, resident_id=resident_id, member_id="m_" + secrets.token_hex(12)
        )
        db.session.add(row)
    row.active, row.opted_in_at, row.opted_out_at = True, utcnow(), None
    db.session.flush()
    return row


def opt_out(resident_id: int, partner_id: int) -> None:
    row = db.session.scalar(
        select(Membership).where(Membership.partner_id == partner_id, Membership.resident_id == resident_id)
    )
    if row is not None and row.active:
        row.active, row.opted_out_at = False, utcnow()


def member(partner: Partner, member_id: str) -> Membership:
    row = db.session.scalar(
        select(Membership).where(Membership.member_id == member_id, Membership.partner_id == partner.id)
    )
    if row is None or not row.active:
        raise PointsError("member_unknown", 404)
    return row


def _membership_for_resident(partner: Partner, resident_id: int) -> Membership:
    row = db.session.scalar(
        select(Membership).where(Membership.partner_id == partner.id, Membership.resident_id == resident_id)
    )
    if row is None or not row.active:
        raise PointsError("not_a_member", 403)
    return row


# --- member QR (short-lived, signed) --------------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=QR_SALT)


def member_qr_token(resident_id: int) -> str:
    """A token for the resident's member QR: the account's opaque subject and a nonce, signed."""
    account = ledger.account_for(resident_id)
    return _serializer().dumps({"s": account.qr_subject, "n": secrets.token_urlsafe(6)})


def identify_by_qr(partner: Partner, token: str) -> Membership:
    try:
        data = _serializer().loads(token, max_age=current_app.config["POINTS_QR_SECONDS"])
    except SignatureExpired:
        raise PointsError("qr_expired", 410) from None
    except BadSignature:
        raise PointsError("qr_invalid", 400) from None
    subject = data.get("s") if isinstance(data, dict) else None
    account = db.session.scalar(select(PointsAccount).where(PointsAccount.qr_subject == str(subject)))
    if account is None:
        raise PointsError("qr_invalid", 400)
    return _membership_for_resident(partner, account.resident_id)


# --- card at the partner's terminal ---------------------------------------------------------------


def card_challenge(partner: Partner, client_id: str, origin: str):
    from portal.cardid import service as cardid

    return cardid.issue_challenge("points_member", origin=origin, session_binding=f"partner:{client_id}")


def identify_by_card(
    partner: Partner, client_id: str, challenge_id: str, certificate: bytes, signature: bytes
) -> Membership:
    from portal.cardid import service as cardid

    try:
        ch = cardid.answer_bound(
            challenge_id,
            certificate,
            signature,
            purpose="points_member",
            session_binding=f"partner:{client_id}",
        )
    except cardid.CardIdError as exc:
        raise PointsError(exc.code, exc.status) from None
    assert ch.resident_id is not None
    return _membership_for_resident(partner, ch.resident_id)


# --- idempotent writes ----------------------------------------------------------------------------


def request_hash(method: str, path: str, body: object) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


@dataclass
class Stored:
    status: int
    body: dict
    replayed: bool


def idempotent(partner: Partner, key: str, fingerprint: str, work: Callable[[], tuple[int, dict]]) -> Stored:
    """Run ``work`` once per (partner, key), in one transaction with the stored answer: a retry
    with the same request gets that answer again, the same key with another request a 409. A
    refusal changes nothing and is not stored, so a retry runs again."""
    key = key.strip()
    if not key or len(key) > 100:
        raise PointsError("idempotency_key_required", 400)

    def stored() -> Stored | None:
        row = db.session.scalar(
            select(IdempotentRequest).where(
                IdempotentRequest.partner_id == partner.id, IdempotentRequest.key == key
            )
        )
        if row is None:
            return None
        if row.request_hash != fingerprint:
            raise PointsError("idempotency_key_reused", 409)
        return Stored(row.status_code, json.loads(row.response), True)

    found = stored()
    if found is not None:
        return found
    try:
        status, body = work()
    except Exception:
        db.session.rollback()
        raise
    db.session.add(
        IdempotentRequest(
            partner_id=partner.id,
            key=key,
            request_hash=fingerprint,
            status_code=status,
            response=json.dumps(body, ensure_ascii=False),
        )
    )
    try:
        db.session.commit()
    except IntegrityError:
        # The same key raced in on another connection and won: its answer is the answer.
        db.session.rollback()
        found = stored()
        assert found is not None
        return found
    return Stored(status, body, False)


# --- settlement -----------------------------------------------------------------------------------


def month_bounds(month: str) -> tuple[datetime, datetime]:
    try:
        year, mon = (int(x) for x in month.split("-"))
        start = date(year, mon, 1)
    except ValueError:
        raise PointsError("bad_month") from None
    end = date(year + (mon == 12), mon % 12 + 1, 1)
    return (
        datetime(start.year, start.month, 1, tzinfo=JST),
        datetime(end.year, end.month, 1, tzinfo=JST),
    )


SETTLEMENT_HEADER = ["date", "entry_id", "member_id", "kind", "points", "reference", "reverses_entry_id"]


def settlement_csv(partner: Partner, month: str) -> str:
    """Every entry the partner made in the month (JST), then totals per kind."""
    start, end = month_bounds(month)
    rows = db.session.execute(
        select(LedgerEntry, Membership.member_id)
        .join(PointsAccount, PointsAccount.id == LedgerEntry.account_id)
        .outerjoin(
            Membership,
            (Membership.resident_id == PointsAccount.resident_id) & (Membership.partner_id == partner.id),
        )
        .where(LedgerEntry.partner_id == partner.id, LedgerEntry.at >= start, LedgerEntry.at < end)
        .order_by(LedgerEntry.at, LedgerEntry.id)
    ).all()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(SETTLEMENT_HEADER)
    totals: dict[str, int] = {}
    for entry, member_id in rows:
        writer.writerow(
            [
                entry.at.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S"),
                entry.id,
                member_id or "",
                entry.kind,
                entry.points,
                entry.reference or "",
                entry.reverses_id or "",
            ]
        )
        totals[entry.kind] = totals.get(entry.kind, 0) + entry.points
    for kind in ("earn", "redeem", "reverse"):
        writer.writerow([f"total_{kind}", "", "", kind, totals.get(kind, 0), partner.code, ""])
    writer.writerow(["net", "", "", "", sum(totals.values()), partner.code, ""])
    return out.getvalue()
