"""JSON endpoints of the card identity protocol (docs/card-identity.md). Terminal requests are
signed (card.termsig) and exempt from CSRF; browser requests carry the CSRF header."""

from __future__ import annotations

import base64
import binascii
import secrets

from flask import Blueprint, current_app, g, jsonify, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user

from card.models import Basic4
from portal import security
from portal.authz import allow
from portal.cardid import service
from portal.cardid.messages import message_for
from portal.extensions import csrf, db, limiter

bp = Blueprint("cardid_api", __name__, url_prefix="/api/card")

SESSION_KEY = "card_binding"


def _error(exc: service.CardIdError):
    return jsonify(error={"code": exc.code, "message": str(message_for(exc.code))}), exc.status


@bp.errorhandler(service.CardIdError)
def card_error(exc: service.CardIdError):
    db.session.rollback()
    return _error(exc)


def _origin() -> str:
    return current_app.config.get("PUBLIC_ORIGIN") or request.host_url.rstrip("/")


def _terminal():
    """The terminal that signed this request (verified once per request), or None."""
    if "terminal" not in g:
        g.terminal = service.authenticate_terminal(
            request.headers,
            request.method,
            request.script_root + request.full_path.rstrip("?"),
            request.get_data(),
        )
    return g.terminal


def _json() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise service.CardIdError("bad_request")
    return data


def _b64(data: dict, key: str) -> bytes:
    try:
        value = base64.b64decode(str(data.get(key, "")), validate=True)
    except (binascii.Error, ValueError):
        raise service.CardIdError("bad_request") from None
    if not value:
        raise service.CardIdError("bad_request")
    return value


def _binding() -> str:
    if SESSION_KEY not in session:
        session[SESSION_KEY] = secrets.token_urlsafe(24)
    return session[SESSION_KEY]


def _payload(ch) -> dict:
    body = {
        "id": ch.id,
        "nonce": ch.nonce,
        "purpose": ch.purpose,
        "expires_in": current_app.config["CARD_CHALLENGE_SECONDS"],
        "message": base64.b64encode(service.challenge_message(ch)).decode(),
    }
    if ch.code:
        body["code"] = ch.code
        body["helper_url"] = f"{_origin()}/c/{ch.code}"
    return body


@bp.route("/challenges", methods=["POST"])
@allow("public")
@csrf.exempt
@limiter.limit(lambda: current_app.config["CARD_CHALLENGE_RATE_LIMIT"])
def create_challenge():
    data = _json()
    purpose = str(data.get("purpose", ""))
    terminal = _terminal()
    if terminal is None:
        # A browser: only same-site pages may ask (CSRF token in the header).
        csrf.protect()
        if purpose == "points_member":
            raise service.CardIdError("forbidden", 403)  # asked by a partner over the points API
        if purpose in ("counter_scan", "link", "points_attendance"):
            # A counter clerk's (or activity organiser's) page asks for the terminal on the desk.
            roles = ("counter", "admin") if purpose == "points_attendance" else ("counter",)
            staff = current_user.is_authenticated and current_user.kind == "staff"
            if not (staff and current_user.has_role(*roles)):
                raise service.CardIdError("forbidden", 403)
            terminal = service.terminal_by_code(str(data.get("terminal", "")))
    ch = service.issue_challenge(
        purpose,
        origin=_origin(),
        session_binding=None if request.headers.get("X-Terminal-Id") else _binding(),
        terminal=terminal,
    )
    db.session.commit()
    return jsonify(_payload(ch)), 201


@bp.route("/challenges/by-code/<code>")
@allow("public")
@limiter.limit("20 per minute")
def challenge_by_code(code: str):
    ch = service.pending_by_code(code)
    return jsonify(id=ch.id, purpose=ch.purpose, message=_payload(ch)["message"])


@bp.route("/responses", methods=["POST"])
@allow("public")
@csrf.exempt
@limiter.limit(lambda: current_app.config["CARD_CHALLENGE_RATE_LIMIT"])
def respond():
    data = _json()
    terminal = _terminal()
    ch = service.answer(
        str(data.get("challenge", "")),
        _b64(data, "certificate"),
        _b64(data, "signature"),
        terminal=terminal,
        code=data.get("code"),
    )
    body = {"status": "done", "purpose": ch.purpose}
    if ch.purpose == "kiosk_login":
        # the kiosk page on this terminal redeems it once for the card holder's kiosk session
        from portal.kiosk import service as kiosk

        body["ticket"] = kiosk.issue_ticket(ch, terminal)
    db.session.commit()
    return jsonify(body)


@bp.route("/challenges/<challenge_id>")
@allow("public")
@limiter.exempt
def challenge_status(challenge_id: str):
    """Polled by the page that asked. A done login logs this browser session in, once."""
    ch = service.consume_for_session(challenge_id, session.get(SESSION_KEY, ""))
    body = {"status": ch.status, "purpose": ch.purpose}
    if ch.status == "failed":
        body["error"] = {"code": ch.error_code, "message": str(message_for(ch.error_code or ""))}
    elif ch.status == "pending" and ch.expires_at <= service.utcnow():
        body = {
            "status": "failed",
            "purpose": ch.purpose,
            "error": {"code": "challenge_expired", "message": str(message_for("challenge_expired"))},
        }
    elif ch.status == "done" and ch.purpose == "login" and ch.consumed_at is None:
        account = service.account_for_resident(ch.resident_id)
        if account is None:
            body = {
                "status": "failed",
                "purpose": ch.purpose,
                "error": {"code": "no_account", "message": str(message_for("no_account"))},
            }
        else:
            ch.consumed_at = service.utcnow()
            session.clear()
            login_user(account)
            security.mark_fresh()
            session["login_method"] = "card"
            body["redirect"] = url_for("resident.home")
        db.session.commit()
    elif ch.status == "done" and ch.purpose in ("counter_scan", "link"):
        body["redirect"] = url_for("cardid.counter_result", challenge_id=ch.id)
    elif ch.status == "done" and ch.purpose == "points_attendance":
        body["redirect"] = url_for("points_staff.attendance_scanned", challenge_id=ch.id)
    return jsonify(body)


@bp.route("/links", methods=["POST"])
@allow("public")  # terminal-signed only: checked below, before anything is read
@csrf.exempt
@limiter.limit(lambda: current_app.config["CARD_CHALLENGE_RATE_LIMIT"])
def link():
    data = _json()
    terminal = _terminal()
    if terminal is None:
        raise service.CardIdError("terminal_required", 401)
    challenge = str(data.get("challenge", ""))
    if "sign_certificate" in data:
        cred = service.link_with_sign_certificate(
            challenge,
            _b64(data, "certificate"),
            _b64(data, "signature"),
            _b64(data, "sign_certificate"),
            _b64(data, "sign_signature"),
            terminal=terminal,
        )
    else:
        raw = data.get("basic4")
        if not isinstance(raw, dict):
            raise service.CardIdError("bad_request")
        try:
            basic4 = Basic4(**{k: str(raw[k]) for k in ("name", "address", "birth_date", "sex")})
        except KeyError:
            raise service.CardIdError("bad_request") from None
        cred = service.link_with_text_ap(
            challenge,
            _b64(data, "certificate"),
            _b64(data, "signature"),
            str(data.get("my_number", "")),
            basic4,
            terminal=terminal,
        )
    db.session.commit()
    return jsonify(status="linked", credential=cred.id, message=_("The card is linked."))
