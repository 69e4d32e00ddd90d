"""The partner API under /api/points/ (OAuth2 client credentials, bearer tokens with the scopes
read, award, redeem). Every write needs an ``Idempotency-Key``; every answer, errors included, is
JSON; every read of a member's data writes an access record. The OpenAPI 3.1 document is at
/api/points/openapi.json."""

from __future__ import annotations

import base64
import binascii
import hashlib

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, Flask, current_app, g, jsonify, request
from flask_babel import force_locale
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from portal.access import service as access
from portal.authz import allow
from portal.extensions import csrf, db, limiter
from portal.points import catalogue, ledger, partners
from portal.points.ledger import PointsError
from portal.points.messages import message_for
from portal.points.models import LedgerEntry, Membership, Partner, PointsLot
from portal.points.oauth import ApiAuthError, Token, require_oauth, server
from portal.points.openapi import document

bp = Blueprint("points_api", __name__, url_prefix="/api/points")

MAX_POINTS = 100_000


def error(code: str, status: int, headers: list | None = None):
    with force_locale("en"):
        message = str(message_for(code))
    response = jsonify(error={"code": code, "message": message})
    response.status_code = status
    for name, value in headers or []:
        if name.lower() == "www-authenticate":
            response.headers[name] = value
    return response


@bp.errorhandler(PointsError)
def points_error(exc: PointsError):
    db.session.rollback()
    return error(exc.code, exc.status)


@bp.errorhandler(ApiAuthError)
def auth_error(exc: ApiAuthError):
    db.session.rollback()
    code = "invalid_token" if exc.code == "missing_authorization" else exc.code
    return error(code, exc.status, exc.headers)


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    db.session.rollback()
    status = exc.code or 500
    code = {404: "not_found", 405: "method_not_allowed", 429: "rate_limited"}.get(status, "bad_request")
    return error(code, status)


def _rate_key() -> str:
    auth = request.headers.get("Authorization", "")
    if auth:
        return "points:" + hashlib.sha256(auth.encode()).hexdigest()[:16]
    return "points-ip:" + (request.remote_addr or "")


def _token(scope: str) -> Token:
    try:
        token = require_oauth.acquire_token([scope])
    except OAuth2Error as exc:
        raise ApiAuthError(exc.error or "invalid_token", exc.status_code or 401, exc.get_headers()) from None
    g.points_token = token
    return token


def _body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise PointsError("bad_request")
    return data


def _points(data: dict) -> int:
    value = data.get("points")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_POINTS:
        raise PointsError("points_positive")
    return value


def _text(data: dict, key: str, *, limit: int = 120, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise PointsError("bad_request")
    return value


def _only(data: dict, keys: set[str]) -> None:
    if set(data) - keys:
        raise PointsError("bad_request")


def _entry_json(entry: LedgerEntry, member_id: str | None = None, *, pending: bool | None = None) -> dict:
    """An entry for the partner; ``pending`` when known (a fresh award), else looked up."""
    if pending is None:
        pending = False
        if entry.kind == "earn":
            lot = db.session.scalar(select(PointsLot).where(PointsLot.entry_id == entry.id))
            pending = lot is not None and lot.available_at > ledger.utcnow()
    return {
        "id": entry.id,
        "kind": entry.kind,
        "points": entry.points,
        "at": entry.at.isoformat(),
        "status": "pending" if pending else "active",
        "reference": entry.reference,
        "reverses": entry.reverses_id,
        "member_id": member_id,
    }


def _member(token: Token, member_id: str) -> Membership:
    return partners.member(token.partner, member_id)


def _write(token: Token, work):
    """Run a write once per Idempotency-Key (same key and body: the same answer again)."""
    key = request.headers.get("Idempotency-Key", "")
    fingerprint = partners.request_hash(request.method, request.path, request.get_json(silent=True))
    stored = partners.idempotent(token.partner, key, fingerprint, work)
    response = jsonify(stored.body)
    response.status_code = stored.status
    if stored.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _record(token: Token, membership: Membership, detail: str) -> None:
    access.record(
        partners.partner_actor(token.partner, token.row.client_id),
        resident_id=membership.resident_id,
        data_items=["points"],
        purpose=f"points_partner: {detail}",
    )


# --- routes ---------------------------------------------------------------------------------------


@bp.route("/oauth/token", methods=["POST"])
@allow("public")  # the client authenticates with its id and secret (client credentials)
@limiter.limit("30 per minute")
def issue_token():
    return server().create_token_response()


@bp.route("/openapi.json")
@allow("public")
def openapi():
    return jsonify(document())


@bp.route("/members/challenges", methods=["POST"])
@allow("public")  # partner: bearer token checked by require_oauth
def member_challenge():
    token = _token("read")
    origin = current_app.config.get("PUBLIC_ORIGIN") or request.host_url.rstrip("/")
    ch = partners.card_challenge(token.partner, token.row.client_id, origin)
    from portal.cardid.service import challenge_message

    db.session.commit()
    return jsonify(
        id=ch.id,
        purpose=ch.purpose,
        expires_in=current_app.config["CARD_CHALLENGE_SECONDS"],
        message=base64.b64encode(challenge_message(ch)).decode(),
    ), 201


def _b64(data: dict, key: str) -> bytes:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise PointsError("bad_request")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise PointsError("bad_request") from None


@bp.route("/members/identify", methods=["POST"])
@allow("public")  # partner: bearer token checked by require_oauth
def identify():
    token = _token("read")
    data = _body()
    if "qr" in data:
        _only(data, {"qr"})
        qr = _text(data, "qr", limit=400, required=True)
        assert qr is not None
        membership = partners.identify_by_qr(token.partner, qr)
        how = "qr"
    else:
        _only(data, {"challenge", "certificate", "signature"})
        challenge = _text(data, "challenge", limit=40, required=True)
        assert challenge is not None
        certificate, signature = _b64(data, "certificate"), _b64(data, "signature")
        membership = partners.identify_by_card(
            token.partner, token.row.client_id, challenge, certificate, signature
        )
        how = "card"
    _record(token, membership, f"identify_{how}")
    db.session.commit()
    return jsonify(member_id=membership.member_id)


@bp.route("/members/<member_id>/balance")
@allow("public")  # partner: bearer token checked by require_oauth
def balance(member_id: str):
    token = _token("read")
    membership = _member(token, member_id)
    b = ledger.balance(membership.resident_id)
    tier = catalogue.tier_of(membership.resident_id)
    _record(token, membership, "balance")
    db.session.commit()
    return jsonify(
        member_id=member_id,
        available=b.available,
        pending=b.pending,
        tier=tier.code,
        expiries=[{"date": d.isoformat(), "points": p} for d, p in b.expiries],
    )


@bp.route("/members/<member_id>/transactions")
@allow("public")  # partner: bearer token checked by require_oauth
def transactions(member_id: str):
    """The member's entries made by this partner (least data: not their other activity)."""
    token = _token("read")
    membership = _member(token, member_id)
    try:
        limit = min(max(int(request.args.get("limit", "50")), 1), 200)
    except ValueError:
        raise PointsError("bad_request") from None
    account = ledger.find_account(membership.resident_id)
    rows = []
    if account is not None:
        rows = list(
            db.session.scalars(
                select(LedgerEntry)
                .where(LedgerEntry.account_id == account.id, LedgerEntry.partner_id == token.partner.id)
                .order_by(LedgerEntry.at.desc(), LedgerEntry.id.desc())
                .limit(limit)
            )
        )
    _record(token, membership, "transactions")
    db.session.commit()
    return jsonify(member_id=member_id, entries=[_entry_json(e, member_id) for e in rows])


@bp.route("/members/<member_id>/awards", methods=["POST"])
@allow("public")  # partner: bearer token checked by require_oauth
def award(member_id: str):
    token = _token("award")
    data = _body()
    _only(data, {"points", "reference"})
    points, reference = _points(data), _text(data, "reference")
    partner: Partner = token.partner

    def work():
        membership = _member(token, member_id)
        entry = ledger.earn(
            membership.resident_id,
            points,
            source="partner",
            actor=f"partner:{token.row.client_id}",
            partner_id=partner.id,
            reference=reference,
            holding_days=partner.holding_days,
        )
        return 201, {"entry": _entry_json(entry, member_id, pending=partner.holding_days > 0)}

    return _write(token, work)


@bp.route("/members/<member_id>/redemptions", methods=["POST"])
@allow("public")  # partner: bearer token checked by require_oauth
def redeem(member_id: str):
    token = _token("redeem")
    data = _body()
    _only(data, {"points", "reference"})
    points, reference = _points(data), _text(data, "reference")
    partner: Partner = token.partner

    def work():
        membership = _member(token, member_id)
        entry = ledger.spend(
            membership.resident_id,
            points,
            source="partner",
            actor=f"partner:{token.row.client_id}",
            partner_id=partner.id,
            reference=reference,
        )
        return 201, {"entry": _entry_json(entry, member_id)}

    return _write(token, work)


@bp.route("/entries/<raw_id>/reversal", methods=["POST"])
@allow("public")  # partner: bearer token checked by require_oauth
def reverse(raw_id: str):
    """A refund (of a redemption: scope redeem) or a withdrawn award (scope award)."""
    try:  # parsed here, not by the URL converter, so a bad id gets this API's JSON 404
        entry_id = int(raw_id)
    except ValueError:
        entry_id = 0
    original = db.session.get(LedgerEntry, entry_id) if 0 < entry_id < 2**31 else None
    token = _token("redeem" if original is not None and original.kind == "redeem" else "award")
    data = _body()
    _only(data, {"reason"})
    reason = _text(data, "reason", limit=200)
    partner: Partner = token.partner

    def work():
        if original is None:
            raise PointsError("entry_unknown", 404)
        entry = ledger.reverse(
            original.id, actor=f"partner:{token.row.client_id}", partner_id=partner.id, note=reason
        )
        membership = db.session.scalar(
            select(Membership)
            .join_from(
                Membership, ledger.PointsAccount, ledger.PointsAccount.resident_id == Membership.resident_id
            )
            .where(ledger.PointsAccount.id == entry.account_id, Membership.partner_id == partner.id)
        )
        return 201, {"entry": _entry_json(entry, membership.member_id if membership else None)}

    return _write(token, work)


@bp.route("/coupons/use", methods=["POST"])
@allow("public")  # partner: bearer token checked by require_oauth
def use_coupon():
    """A partner-discount coupon shown at the partner's till, used once."""
    token = _token("redeem")
    data = _body()
    _only(data, {"code"})
    code = _text(data, "code", limit=20, required=True)
    assert code is not None
    partner: Partner = token.partner

    def work():
        coupon = catalogue.use_coupon(code, actor=f"partner:{token.row.client_id}", partner_id=partner.id)
        return 200, {"code": coupon.code, "item": coupon.item.code, "used_at": coupon.used_at.isoformat()}

    return _write(token, work)


# Once, at import: the limiter and the blueprint are module-level, shared by every app made.
csrf.exempt(bp)
limiter.limit(lambda: current_app.config["POINTS_API_RATE_LIMIT"], key_func=_rate_key)(bp)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
