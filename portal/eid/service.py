"""External eID over OpenID Connect: settings, the Authlib client, and who a verified ID token is.

No ``flask.request`` here: the views run the redirect and the code exchange (Authlib reads the
request), then hand the validated claims to :func:`identify`.

Claims used to identify a resident the first time (identity proofing, done once per ``iss`` +
``sub``): the basic 4 info (基本4情報), taken from

* the custom claim named by ``EID_OIDC_BASIC4_CLAIM`` when that is set and present: a JSON object
  ``{"name": "山田 花子", "address": "千葉県みなと市…", "birth_date": "YYYYMMDD" (or "YYYY-MM-DD"),
  "sex": "1" | "2" | "9"}`` (the card's own form, ISO 5218 sex codes); otherwise
* the standard OpenID Connect claims: ``name`` (or ``family_name`` + ``given_name``),
  ``birthdate`` (``YYYY-MM-DD``), ``address`` (its ``formatted`` member, or ``region`` +
  ``locality`` + ``street_address``; a plain string is taken as it is) and ``gender``
  (``male`` → 1, ``female`` → 2).

They are read from the ID token, and from the UserInfo endpoint when the ID token does not carry
all four. Later logins use the stored ``ExternalIdentity`` alone and read no personal claims.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from authlib.integrations.flask_client import OAuth
from flask import current_app
from flask_babel import get_locale

from card.models import Basic4
from portal.access import service as access
from portal.cardid import service as cardid
from portal.cardid.models import ExternalIdentity
from portal.extensions import db
from portal.models_base import utcnow
from portal.registry.models import Resident

CLIENT_NAME = "portal_eid"  # Authlib looks up PORTAL_EID_* settings for it; none are used
EXTENSION = "portal_eid"

DEFAULTS: dict[str, Any] = {
    # The provider's issuer identifier; discovery at <issuer>/.well-known/openid-configuration.
    # Unset: the feature is off (no button, the routes answer 404).
    "EID_OIDC_ISSUER": None,
    "EID_OIDC_CLIENT_ID": None,
    "EID_OIDC_CLIENT_SECRET": None,
    "EID_OIDC_SCOPES": "openid profile address",
    # client_secret_basic or client_secret_post, as the provider registered the portal.
    "EID_OIDC_TOKEN_AUTH_METHOD": "client_secret_basic",
    # A custom claim carrying the basic 4 info as one object (see the module docstring).
    "EID_OIDC_BASIC4_CLAIM": None,
    # Seconds for each call to the provider (discovery, keys, token, userinfo).
    "EID_OIDC_TIMEOUT": 10,
    "EID_RATE_LIMIT": "30 per minute",
    # The provider's name on the login button and the pages.
    "EID_NAME_JA": "外部の本人確認サービス",
    "EID_NAME_EN": "an external eID service",
}


class EidError(Exception):
    """A refused external login: ``code`` picks the page's message, ``status`` the HTTP status."""

    def __init__(self, code: str, status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


def setting(key: str) -> Any:
    return current_app.config.get(key, DEFAULTS[key])


def enabled() -> bool:
    return bool(setting("EID_OIDC_ISSUER"))


def provider_name() -> str:
    return str(setting("EID_NAME_JA" if str(get_locale()) == "ja" else "EID_NAME_EN"))


def scopes() -> str:
    """The configured scopes, always with ``openid`` (so Authlib sends a nonce and checks the ID token)."""
    words = str(setting("EID_OIDC_SCOPES") or "").split()
    return " ".join(["openid", *[w for w in words if w != "openid"]])


def client():
    """This app's Authlib client for the provider, made on first use from the configuration."""
    if not enabled():  # the views answer 404 before getting here
        raise RuntimeError("external eID login is not configured (EID_OIDC_ISSUER)")
    state = current_app.extensions.setdefault(EXTENSION, {})
    if "client" not in state:
        app = current_app._get_current_object()
        oauth = app.extensions.get("authlib.integrations.flask_client") or OAuth(app)
        issuer = str(setting("EID_OIDC_ISSUER")).rstrip("/")
        state["client"] = oauth.register(
            CLIENT_NAME,
            client_id=setting("EID_OIDC_CLIENT_ID"),
            client_secret=setting("EID_OIDC_CLIENT_SECRET"),
            server_metadata_url=f"{issuer}/.well-known/openid-configuration",
            client_kwargs={
                "scope": scopes(),
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": setting("EID_OIDC_TOKEN_AUTH_METHOD"),
                "default_timeout": setting("EID_OIDC_TIMEOUT"),
            },
        )
    return state["client"]


def issuer(oauth_client) -> str:
    """The provider's issuer from its discovery document, which must be the configured one
    (OpenID Connect Discovery 1.0, section 4.3): ID tokens are then checked against it."""
    metadata = oauth_client.load_server_metadata()
    found = str(metadata.get("issuer") or "")
    if not found or found.rstrip("/") != str(setting("EID_OIDC_ISSUER")).rstrip("/"):
        current_app.logger.error("eid: the discovery document names another issuer; refused")
        raise EidError("provider_error", 502)
    return found


def claims_options(oauth_client, expected_issuer: str) -> dict:
    """ID token checks beyond Authlib's defaults: ``iss`` is the provider's and ``aud`` contains
    this client (Authlib on its own accepts another audience when ``azp`` names this client)."""
    return {
        "iss": {"essential": True, "value": expected_issuer},
        "aud": {"essential": True, "value": oauth_client.client_id},
    }


# --- claims → basic 4 info ---------------------------------------------------------------------

_DATE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")
_SEX = {"male": "1", "female": "2", "1": "1", "2": "2", "9": "9"}


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _birth_date(value: Any) -> str | None:
    m = _DATE.fullmatch(_text(value) or "")
    if m is None or m.group(1) == "0000":  # 0000-MM-DD: the provider withheld the year
        return None
    return "".join(m.groups())


def _address(value: Any) -> str | None:
    if isinstance(value, Mapping):
        formatted = _text(value.get("formatted"))
        if formatted:
            return formatted
        parts = [_text(value.get(k)) for k in ("region", "locality", "street_address")]
        return "".join(p for p in parts if p) or None
    return _text(value)


def _sex(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    return _SEX.get(text.lower(), "0")  # ISO 5218 0: not known; agrees with no register record


def basic4_from_claims(claims: Mapping[str, Any], custom_claim: str | None = None) -> Basic4 | None:
    """The basic 4 info the provider asserted, or None when any of the four is missing."""
    custom = claims.get(custom_claim) if custom_claim else None
    if isinstance(custom, Mapping):
        name = _text(custom.get("name"))
        address = _address(custom.get("address"))
        birth = _birth_date(custom.get("birth_date"))
        sex = _sex(custom.get("sex"))
    else:
        name = _text(claims.get("name"))
        if name is None:
            family, given = _text(claims.get("family_name")), _text(claims.get("given_name"))
            name = family + given if family and given else None
        address = _address(claims.get("address"))
        birth = _birth_date(claims.get("birthdate"))
        sex = _sex(claims.get("gender"))
    if not (name and address and birth and sex):
        return None
    return Basic4(name=name, address=address, birth_date=birth, sex=sex)


# --- who is it ---------------------------------------------------------------------------------


def actor(issuer_id: str) -> access.Actor:
    """The external eID provider, as the reader of the register when it is matched."""
    return access.Actor(
        kind="partner",
        id=(urlsplit(issuer_id).netloc or issuer_id)[:64],
        role="eid",
        organisation=str(setting("EID_NAME_JA"))[:120],
    )


def identify(
    issuer_id: str,
    id_claims: Mapping[str, Any],
    load_userinfo: Callable[[], Mapping[str, Any]] | None = None,
) -> Resident:
    """The resident a validated ID token stands for.

    A known ``iss`` + ``sub`` gives its resident. Otherwise the basic 4 info is matched against the
    register: exactly one active resident links the identity (and writes an access record).
    Flushes, does not commit."""
    subject = _text(id_claims.get("sub"))
    if subject is None:
        raise EidError("provider_error", 502)
    known = cardid.external_identity(issuer_id, subject)
    if known is not None:
        resident = db.session.get(Resident, known.resident_id)
        if resident is None or resident.status != "active":
            raise EidError("resident_not_active", 403)
        known.last_used_at = utcnow()
        return resident

    custom = setting("EID_OIDC_BASIC4_CLAIM")
    basic4 = basic4_from_claims(id_claims, custom)
    if basic4 is None and load_userinfo is not None:
        userinfo = load_userinfo()
        if userinfo.get("sub") != subject:  # OpenID Connect Core 1.0, section 5.3.2
            current_app.logger.warning("eid: userinfo names another subject; refused")
            raise EidError("provider_error", 502)
        basic4 = basic4_from_claims({**id_claims, **userinfo}, custom)
    if basic4 is None:
        raise EidError("claims_missing", 403)

    matches = cardid.match_basic4(basic4)
    if not matches:
        raise EidError("no_match", 403)
    if len(matches) > 1:
        raise EidError("ambiguous", 409)
    resident = matches[0]
    db.session.add(
        ExternalIdentity(issuer=issuer_id, subject=subject, resident_id=resident.id, last_used_at=utcnow())
    )
    access.record(
        actor(issuer_id),
        resident_id=resident.id,
        data_items=["basic4"],
        purpose="eid_link",
    )
    db.session.flush()
    current_app.logger.info("eid: identity linked to resident %s", resident.id)
    return resident


def quiet_library_logs() -> None:
    """Authlib logs the PKCE code verifier at DEBUG; keep its loggers at INFO or above."""
    logger = logging.getLogger("authlib")
    if logger.getEffectiveLevel() < logging.INFO:
        logger.setLevel(logging.INFO)
