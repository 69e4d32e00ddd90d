"""Signing a pre-filing with the card's signature certificate (署名用電子証明書), issue 6 item 3.

The resident's pre-filing page asks for a one-time signing request: a short code (``/f/<code>``,
10 minutes) bound to the pre-filing and to the SHA-256 of its canonical form at that moment. The PC
helper (``python -m card sign-filing <origin>/f/<code>``, :mod:`card.filing`) fetches the canonical
form by code, shows it, asks the signature PIN, signs the canonical bytes and posts the signature and
the signature certificate. The server recomputes the canonical form (a change since the request is
refused), verifies signature, chain, validity, key usage and revocation (the signature certificate is
revoked when the holder's address changes) and checks that the certificate's name, birth date and
sex agree with the pre-filing's resident. The address is *not* compared: for moving in, out or
within the city the card still carries the previous address; a signature certificate that is not
revoked is one whose address has not changed since it was issued.

Requests are stored as rows of ``card_challenges`` (no table of its own): purpose
``prefiling_sign``, ``nonce`` = the form digest, ``session_binding`` = ``prefiling:<id>``,
``resident_id`` = the pre-filing's resident. A refused answer uses the request up.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from datetime import timedelta

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
)
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from card.verify import VerificationError, verify_signature
from portal.authz import allow
from portal.cardid.models import CardChallenge
from portal.cardid.service import verifier
from portal.extensions import csrf, db, limiter
from portal.models_base import utcnow
from portal.points import rules as points_rules
from portal.prefiling import service
from portal.prefiling.models import PreFiling
from portal.registry.names import normalise

PURPOSE = "prefiling_sign"
SIGNABLE = ("submitted", "ready")
DEFAULT_SECONDS = 600
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

MESSAGES = {
    "bad_request": _l("The request was not understood. Start again from your pre-filing page."),
    "prefiling_unknown": _l("This pre-filing was not found."),
    "not_signable": _l("This pre-filing cannot be signed now: only a submitted pre-filing can be signed."),
    "sign_request_unknown": _l("This signing code is not known. Start again from your pre-filing page."),
    "sign_request_expired": _l(
        "The signing code has expired (a code lasts 10 minutes). Start again from your pre-filing page."
    ),
    "sign_request_used": _l("This signing code was already used. Start again from your pre-filing page."),
    "form_changed": _l(
        "The pre-filing was changed after the signing code was made. Check it, then start signing again."
    ),
    "changed_meanwhile": _l("The pre-filing was changed meanwhile. Reload the page and try again."),
    "wrong_person": _l(
        "This card belongs to someone else: sign with the card of the person the pre-filing is for."
    ),
    "basic4_missing": _l(
        "The signature certificate carries no name and birth date. Please ask at the counter."
    ),
    "bad_signature": _l("The signature does not match this pre-filing. Start signing again."),
    "untrusted": _l("This card's certificate is not from the Japanese public certification service."),
    "expired": _l("Your signature certificate has expired. Renew it at a ward office counter."),
    "not_yet_valid": _l("Your signature certificate is not valid yet. Check the computer's clock."),
    "revoked": _l(
        "Your signature certificate has been revoked (this happens when your address changes). "
        "Renew it at a ward office counter."
    ),
    "revocation_unknown": _l("The certificate could not be checked just now. Try again later."),
    "wrong_key_usage": _l("This certificate cannot be used to sign."),
    "wrong_kind": _l("Use the signature certificate (the 6 to 16 character signature PIN)."),
    "malformed": _l("The card's answer was not readable. Try again."),
    "unsupported_algorithm": _l("This card's certificate is not supported."),
}


class SigningError(Exception):
    def __init__(self, code: str, status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


def message_for(code: str) -> str:
    return str(MESSAGES.get(code, MESSAGES["bad_request"]))


# --- service ----------------------------------------------------------------------------------------


def _seconds() -> int:
    return int(current_app.config.get("PREFILING_SIGN_SECONDS", DEFAULT_SECONDS))


def _new_code() -> str:
    while True:
        raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
        code = f"{raw[:4]}-{raw[4:]}"
        if db.session.scalar(select(CardChallenge.id).where(CardChallenge.code == code)) is None:
            return code


def normalise_code(code: str) -> str:
    clean = (code or "").strip().upper().replace(" ", "").replace("-", "")
    return f"{clean[:4]}-{clean[4:]}" if len(clean) == 8 else clean


def create_request(prefiling: PreFiling, *, origin: str) -> CardChallenge:
    """A one-time signing request for ``prefiling`` as it is now (its form digest is kept)."""
    if prefiling.status not in SIGNABLE:
        raise SigningError("not_signable", 409)
    req = CardChallenge(
        id="f_" + secrets.token_urlsafe(18),
        nonce=service.form_digest(prefiling),
        purpose=PURPOSE,
        code=_new_code(),
        session_binding=f"prefiling:{prefiling.id}",
        origin=origin,
        resident_id=prefiling.resident_id,
        expires_at=utcnow() + timedelta(seconds=_seconds()),
    )
    db.session.add(req)
    db.session.flush()
    return req


def helper_url(req: CardChallenge) -> str:
    return f"{req.origin}/f/{req.code}"


def helper_command(req: CardChallenge) -> str:
    return f"python -m card sign-filing {helper_url(req)}"


def _request_by_code(code: str, *, lock: bool = False) -> CardChallenge:
    query = select(CardChallenge).where(
        CardChallenge.code == normalise_code(code), CardChallenge.purpose == PURPOSE
    )
    req = db.session.scalar(query.with_for_update() if lock else query)
    if req is None:
        raise SigningError("sign_request_unknown", 404)
    if req.status != "pending":
        raise SigningError("sign_request_used", 409)
    if req.expires_at <= utcnow():
        raise SigningError("sign_request_expired", 410)
    return req


def _prefiling_of(req: CardChallenge) -> PreFiling:
    prefix, _, raw_id = (req.session_binding or "").partition(":")
    prefiling = db.session.get(PreFiling, int(raw_id)) if prefix == "prefiling" and raw_id.isdigit() else None
    if prefiling is None:
        raise SigningError("prefiling_unknown", 404)
    return prefiling


def form_for_code(code: str) -> dict:
    """What the helper shows and signs: the canonical form as it is now, if unchanged since."""
    req = _request_by_code(code)
    prefiling = _prefiling_of(req)
    canonical = service.canonical_form(prefiling)
    digest = hashlib.sha256(canonical).hexdigest()
    if digest != req.nonce or prefiling.status not in SIGNABLE:
        raise SigningError("form_changed", 409)
    return {
        "canonical": base64.b64encode(canonical).decode("ascii"),
        "digest": digest,
        "algorithm": "sha256",
        "expires_at": req.expires_at.isoformat(),
    }


def _same_person(basic4, prefiling: PreFiling) -> bool:
    resident = prefiling.resident
    return (
        normalise(basic4.name) == normalise(resident.family_name + resident.given_name)
        and basic4.birth_date == resident.birth_date.strftime("%Y%m%d")
        and str(basic4.sex) == str(resident.sex)
    )


def _verify_and_store(req: CardChallenge, certificate: bytes, signature: bytes) -> PreFiling:
    prefiling = _prefiling_of(req)
    if prefiling.status not in SIGNABLE:
        raise SigningError("not_signable", 409)
    canonical = service.canonical_form(prefiling)
    digest = hashlib.sha256(canonical).hexdigest()
    if digest != req.nonce:
        raise SigningError("form_changed", 409)
    v = verifier()
    try:
        verified = verify_signature(
            certificate, signature, canonical, v.trust, v.revocation, expected_kind="sign"
        )
    except VerificationError as exc:
        raise SigningError(exc.reason, 403) from None
    if verified.basic4 is None:
        raise SigningError("basic4_missing", 403)
    if not _same_person(verified.basic4, prefiling):
        raise SigningError("wrong_person", 403)
    prefiling.signed_digest = digest
    prefiling.signature = signature
    prefiling.signature_certificate = certificate
    prefiling.signature_verified_at = utcnow()
    service.record(
        prefiling,
        f"account:{prefiling.account_id}",
        "signed",
        f"signature certificate {verified.serial} ({verified.issuer}), sha256 {digest}",
    )
    try:
        db.session.flush()
    except StaleDataError:
        db.session.rollback()
        raise SigningError("changed_meanwhile", 409) from None
    return prefiling


def sign_with_code(code: str, certificate: bytes, signature: bytes) -> PreFiling:
    """Verify a card signature posted for ``code`` and store it; a refusal uses the code up."""
    req = _request_by_code(code, lock=True)
    try:
        prefiling = _verify_and_store(req, certificate, signature)
    except SigningError as exc:
        db.session.rollback()
        failed = db.session.get(CardChallenge, req.id)
        if failed is not None and failed.status == "pending":
            failed.status, failed.error_code, failed.completed_at = "failed", exc.code, utcnow()
            db.session.commit()
        raise
    req.status, req.completed_at = "done", utcnow()
    return prefiling


def is_signed(prefiling: PreFiling) -> bool:
    """Signed with the card, verified, and over the form as it is now."""
    return (
        prefiling.signature_verified_at is not None
        and prefiling.signed_digest is not None
        and prefiling.signed_digest == service.form_digest(prefiling)
    )


# --- JSON API ---------------------------------------------------------------------------------------

bp = Blueprint("prefiling_signing", __name__, template_folder="templates")


@bp.errorhandler(SigningError)
def _signing_error(exc: SigningError):
    db.session.rollback()
    return jsonify(error={"code": exc.code, "message": message_for(exc.code)}), exc.status


def _origin() -> str:
    return current_app.config.get("PUBLIC_ORIGIN") or request.host_url.rstrip("/")


def _b64(data: dict, key: str) -> bytes:
    try:
        value = base64.b64decode(str(data.get(key, "")), validate=True)
    except (binascii.Error, ValueError):
        raise SigningError("bad_request") from None
    if not value:
        raise SigningError("bad_request")
    return value


def request_payload(req: CardChallenge) -> dict:
    return {
        "code": req.code,
        "helper_url": helper_url(req),
        "command": helper_command(req),
        "expires_in": _seconds(),
    }


@bp.route("/api/prefilings/<int:prefiling_id>/signing-requests", methods=["POST"])
@allow("resident")
@limiter.limit("20 per minute")
def new_request(prefiling_id: int):
    """The resident's page asks for a code (browser: CSRF header as for every same-site POST)."""
    prefiling = db.session.get(PreFiling, prefiling_id)
    if prefiling is None or prefiling.resident_id != current_user.resident_id:
        raise SigningError("prefiling_unknown", 404)
    req = create_request(prefiling, origin=_origin())
    db.session.commit()
    return jsonify(request_payload(req)), 201


@bp.route("/api/prefilings/sign/<code>")
@allow("public")
@limiter.limit("20 per minute")
def form_by_code(code: str):
    return jsonify(form_for_code(code))


@bp.route("/api/prefilings/sign/<code>", methods=["POST"])
@allow("public")
@csrf.exempt  # the PC helper is not a browser; the one-time code and the card signature are the proof
@limiter.limit("20 per minute")
def post_signature(code: str):
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise SigningError("bad_request")
    prefiling = sign_with_code(code, _b64(data, "certificate"), _b64(data, "signature"))
    points_rules.first_use(prefiling.resident_id, "signed_filing", f"pre-filing {prefiling.id}")
    db.session.commit()
    return jsonify(status="signed", reservation_no=prefiling.reservation_no, digest=prefiling.signed_digest)


@bp.route("/me/prefilings/<int:prefiling_id>/sign", methods=["GET", "POST"])
@allow("resident")
@limiter.limit("20 per minute", methods=["POST"])
def sign_page(prefiling_id: int):
    """A page of its own for the partial: GET shows the state, POST (form, CSRF) makes a code."""
    prefiling = db.session.get(PreFiling, prefiling_id)
    if prefiling is None or prefiling.resident_id != current_user.resident_id:
        abort(404)
    sign_request = None
    if request.method == "POST" and not is_signed(prefiling):
        try:
            sign_request = request_payload(create_request(prefiling, origin=_origin()))
        except SigningError:
            abort(409)
        db.session.commit()
    return render_template(
        "prefiling/sign.html", prefiling=prefiling, sign_request=sign_request, signed=is_signed(prefiling)
    )


@bp.route("/f/<code>")
@allow("public")
def landing(code: str):
    """Where a copied or scanned ``/f/<code>`` leads in a browser: how to sign with the helper."""
    return render_template("prefiling/sign.html", landing_url=f"{_origin()}/f/{normalise_code(code)}")


def init_app(app: Flask) -> None:
    if "prefiling_signing" not in app.blueprints:
        app.register_blueprint(bp)
    app.config.setdefault("PREFILING_SIGN_SECONDS", DEFAULT_SECONDS)


__all__ = ["MESSAGES", "SigningError", "create_request", "form_for_code", "init_app", "sign_with_code"]
