"""OAuth2 for partners: the client-credentials grant (Authlib's authorization server) at
``POST /api/points/oauth/token`` and bearer tokens checked by Authlib's resource protector.
Client secrets and access tokens are stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import timedelta

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin, grants
from authlib.oauth2.rfc6750 import BearerTokenValidator
from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.extensions import db
from portal.models_base import utcnow
from portal.points.models import SCOPES, OAuthClient, OAuthToken, Partner


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Client(ClientMixin):
    """Authlib's view of a partner's client row."""

    def __init__(self, row: OAuthClient) -> None:
        self.row = row

    def get_client_id(self):
        return self.row.client_id

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        allowed = set(self.row.scopes.split())
        if not scope:
            return " ".join(s for s in SCOPES if s in allowed)
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri):
        return False

    def check_client_secret(self, client_secret):
        return hmac.compare_digest(digest(client_secret or ""), self.row.secret_hash)

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return False

    def check_grant_type(self, grant_type):
        return grant_type == "client_credentials"


class Token(TokenMixin):
    def __init__(self, row: OAuthToken, client: OAuthClient) -> None:
        self.row = row
        self.client = client

    @property
    def partner(self) -> Partner:
        return self.client.partner

    def check_client(self, client):
        return client.get_client_id() == self.row.client_id

    def get_scope(self):
        return self.row.scopes

    def get_expires_in(self):
        return self.row.expires_in

    def is_expired(self):
        return self.row.issued_at + timedelta(seconds=self.row.expires_in) <= utcnow()

    def is_revoked(self):
        return self.row.revoked or self.client.revoked_at is not None or not self.client.partner.active

    def get_user(self):
        return None

    def get_client(self):
        return Client(self.client)


def _query_client(client_id: str):
    row = db.session.scalar(
        select(OAuthClient).where(OAuthClient.client_id == client_id, OAuthClient.revoked_at.is_(None))
    )
    if row is None or not row.partner.active:
        return None
    return Client(row)


def _save_token(token: dict, request) -> None:
    db.session.add(
        OAuthToken(
            client_id=request.client.get_client_id(),
            token_hash=digest(token["access_token"]),
            scopes=token.get("scope", ""),
            expires_in=int(token["expires_in"]),
        )
    )
    db.session.commit()


class Validator(BearerTokenValidator):
    def authenticate_token(self, token_string):
        # One round trip for the token, its client and the client's partner (every API request).
        found = db.session.execute(
            select(OAuthToken, OAuthClient)
            .join(OAuthClient, OAuthClient.client_id == OAuthToken.client_id)
            .where(OAuthToken.token_hash == digest(token_string))
            .options(joinedload(OAuthClient.partner))
        ).first()
        return Token(found[0], found[1]) if found is not None else None


class ApiAuthError(Exception):
    def __init__(self, code: str, status: int, headers: list | None = None) -> None:
        super().__init__(code)
        self.code, self.status, self.headers = code, status, headers or []


class Protector(ResourceProtector):
    def raise_error_response(self, error):
        raise ApiAuthError(error.error, error.status_code, error.get_headers())


require_oauth = Protector()
require_oauth.register_token_validator(Validator())


def new_client(partner: Partner, scopes: list[str]) -> tuple[OAuthClient, str]:
    """A client for a partner; the secret is returned once and stored only hashed."""
    unknown = set(scopes) - set(SCOPES)
    if unknown or not scopes:
        raise ValueError(f"unknown scopes {sorted(unknown)}")
    secret = secrets.token_urlsafe(32)
    row = OAuthClient(
        partner_id=partner.id,
        client_id="pc_" + secrets.token_urlsafe(12),
        secret_hash=digest(secret),
        scopes=" ".join(s for s in SCOPES if s in scopes),
    )
    db.session.add(row)
    db.session.flush()
    return row, secret


def server() -> AuthorizationServer:
    return current_app.extensions["points_oauth"]


def init_app(app: Flask) -> None:
    app.config.setdefault(
        "OAUTH2_TOKEN_EXPIRES_IN", {"client_credentials": app.config["POINTS_TOKEN_SECONDS"]}
    )
    app.config.setdefault("OAUTH2_SCOPES_SUPPORTED", list(SCOPES))
    # Authlib refuses plain-http URLs. In production TLS ends at nginx (PUBLIC_ORIGIN is https) and
    # gunicorn sees http on the loopback; in development and tests there is no TLS at all.
    if app.config["NAME"] != "production" or str(app.config.get("PUBLIC_ORIGIN", "")).startswith("https://"):
        os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
    auth_server = AuthorizationServer(app, query_client=_query_client, save_token=_save_token)
    auth_server.register_grant(grants.ClientCredentialsGrant)
    app.extensions["points_oauth"] = auth_server
