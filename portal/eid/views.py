"""Log in with an external eID provider over OpenID Connect: authorization code flow with PKCE
(S256), state and nonce (Authlib keeps them in the session), ID token checked by Authlib (signature
from the provider's JWKS, iss, aud, exp, nonce, at_hash). Off unless EID_OIDC_ISSUER is set."""

from __future__ import annotations

import requests
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from flask import Blueprint, abort, current_app, redirect, render_template, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import login_user
from joserfc.errors import JoseError

from portal import security
from portal.authz import allow
from portal.cardid import service as cardid
from portal.eid import service
from portal.extensions import db, limiter

bp = Blueprint("eid", __name__, url_prefix="/eid", template_folder="templates")

# What the person is told: what happened and what to do. msgids in English; Japanese in the catalogue.
MESSAGES = {
    "cancelled": _l("You cancelled the login at %(name)s. You can try again or log in another way."),
    "state_mismatch": _l(
        "This login could not be completed: it took too long or was started in another browser "
        "window. Start again."
    ),
    "token_invalid": _l("The answer from %(name)s could not be verified. Start again."),
    "provider_error": _l("%(name)s did not answer as expected. Try again later or log in another way."),
    "provider_unavailable": _l("%(name)s cannot be reached just now. Try again later or log in another way."),
    "claims_missing": _l(
        "%(name)s did not send your name, address, date of birth and sex, which are needed to find "
        "you in the resident register. Allow them to be sent and start again."
    ),
    "no_match": _l(
        "No current resident of the city matches the details from %(name)s. If you have moved "
        "recently, please ask at a ward office counter."
    ),
    "ambiguous": _l(
        "More than one resident matches the details from %(name)s. Please ask at a ward office counter."
    ),
    "resident_not_active": _l(
        "There is no current resident registration for you. Please ask at a ward office counter."
    ),
    "no_account": _l(
        "You are identified, but you have no portal account yet. Create an account first, then log "
        "in with %(name)s again."
    ),
}


def _refused(code: str, status: int):
    name = service.provider_name()
    return (
        render_template("eid/error.html", code=code, message=MESSAGES[code] % {"name": name}, name=name),
        status,
    )


@bp.errorhandler(service.EidError)
def eid_error(exc: service.EidError):
    db.session.rollback()
    current_app.logger.info("eid login refused: %s", exc.code)
    return _refused(exc.code, exc.status)


@bp.errorhandler(requests.RequestException)
def provider_unreachable(exc: requests.RequestException):
    db.session.rollback()
    # The exception's text can hold URLs with codes in them: log its type only.
    current_app.logger.warning("eid provider unreachable (%s)", type(exc).__name__)
    return _refused("provider_unavailable", 502)


@bp.before_request
def feature_on():
    if not service.enabled():
        abort(404)


@bp.app_context_processor
def login_button():
    return {"eid_enabled": service.enabled, "eid_provider_name": service.provider_name}


def _redirect_uri() -> str:
    origin = current_app.config.get("PUBLIC_ORIGIN")
    if origin:
        return origin.rstrip("/") + url_for("eid.callback")
    return url_for("eid.callback", _external=True)


@bp.route("/login")
@allow("public")
@limiter.limit(lambda: service.setting("EID_RATE_LIMIT"))
def login():
    oauth = service.client()
    service.issuer(oauth)  # the discovery document is the configured provider's
    return oauth.authorize_redirect(_redirect_uri())


@bp.route("/callback")
@allow("public")
@limiter.limit(lambda: service.setting("EID_RATE_LIMIT"))
def callback():
    oauth = service.client()
    issuer = service.issuer(oauth)
    try:
        token = oauth.authorize_access_token(claims_options=service.claims_options(oauth, issuer))
    except MismatchingStateError:
        raise service.EidError("state_mismatch", 400) from None
    except OAuthError as exc:
        code = "cancelled" if exc.error == "access_denied" else "provider_error"
        raise service.EidError(code, 400 if code == "cancelled" else 502) from None
    except JoseError as exc:
        # A bad signature, issuer, audience, expiry or nonce: name the check, never the token.
        current_app.logger.warning("eid ID token refused (%s)", type(exc).__name__)
        raise service.EidError("token_invalid", 400) from None
    claims = token.get("userinfo")
    if not claims:  # no ID token: plain OAuth says nothing about who logged in
        raise service.EidError("provider_error", 502)

    has_userinfo = bool(oauth.load_server_metadata().get("userinfo_endpoint"))
    resident = service.identify(
        issuer, claims, (lambda: oauth.userinfo(token=token)) if has_userinfo else None
    )
    account = cardid.account_for_resident(resident.id)
    if account is None:
        db.session.commit()  # the identity stays linked; the next login needs only an account
        raise service.EidError("no_account", 403)
    db.session.commit()
    session.clear()
    login_user(account)
    security.mark_fresh()
    session["login_method"] = "eid"
    current_app.logger.info("eid login ok account=%s", account.id)
    return redirect(url_for("resident.home"))
