"""A small but strict OpenID Connect provider for tests, served on 127.0.0.1 in a thread.

Discovery, JWKS (an RS256 key made at start), an authorize endpoint that auto-approves the
configured test user (it refuses a request without state, nonce or an S256 PKCE challenge), a token
endpoint (client_secret_basic or client_secret_post, single-use codes, PKCE checked) that issues an
ID token signed with the key and carrying the nonce, and a UserInfo endpoint.

Knobs a test may turn (``reset()`` puts them back): ``user`` (the claims of the person who logs in,
``sub`` included), ``claims_in`` ("id_token" or "userinfo": where the personal claims go),
``deny`` (an error code the authorize endpoint answers with), ``id_token_overrides`` (claims to
force into the ID token, e.g. a wrong ``nonce`` or ``aud``), ``userinfo_overrides``,
``discovery_overrides`` and ``signing_key`` (sign ID tokens with another key under the same kid).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from typing import Any
from urllib.parse import unquote_plus, urlencode

from flask import Flask, abort, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import WSGIRequestHandler, make_server

PERSONAL = ("name", "family_name", "given_name", "birthdate", "gender", "address")


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # keep codes and tokens out of the test logs
        pass


class OIDCProvider:
    def __init__(self, client_id: str, client_secret: str, redirect_uris: list[str]) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = redirect_uris
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-rs256", "use": "sig", "alg": "RS256"})
        self.codes: dict[str, dict] = {}
        self.access_tokens: dict[str, dict] = {}
        self.secrets_seen: list[str] = []  # every code, token and verifier that passed through
        self.authorize_requests: list[dict] = []
        self.token_requests = 0
        self.userinfo_requests = 0
        self._lock = threading.Lock()
        self.reset()
        self.app = self._make_app()
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=_QuietHandler)
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> OIDCProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        self.user: dict[str, Any] = {}
        self.claims_in = "id_token"
        self.deny: str | None = None
        self.id_token_overrides: dict[str, Any] = {}
        self.userinfo_overrides: dict[str, Any] = {}
        self.discovery_overrides: dict[str, Any] = {}
        self.signing_key: RSAKey | None = None  # sign ID tokens with another key (same kid)
        self.authorize_requests.clear()
        self.token_requests = 0
        self.userinfo_requests = 0

    # --- the provider ------------------------------------------------------------------------------

    def discovery(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "address"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", *PERSONAL],
            **self.discovery_overrides,
        }

    def _personal(self, scope: set[str]) -> dict:
        out = {}
        for k in PERSONAL:
            if k in self.user and ("address" if k == "address" else "profile") in scope:
                out[k] = self.user[k]
        # a custom basic 4 claim travels with the profile scope
        out.update({k: v for k, v in self.user.items() if k.startswith("https://") and "profile" in scope})
        return out

    def _id_token(self, grant: dict, access_token: str) -> str:
        now = int(time.time())
        digest = hashlib.sha256(access_token.encode()).digest()
        claims = {
            "iss": self.issuer,
            "sub": grant["sub"],
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "auth_time": now,
            "nonce": grant["nonce"],
            "at_hash": base64.urlsafe_b64encode(digest[:16]).decode().rstrip("="),
        }
        if self.claims_in == "id_token":
            claims.update(self._personal(grant["scope"]))
        claims.update(self.id_token_overrides)
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, self.signing_key or self.key)

    def _client_authenticated(self) -> bool:
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            cid, secret = unquote_plus(auth.username or ""), unquote_plus(auth.password or "")
        else:
            cid, secret = request.form.get("client_id", ""), request.form.get("client_secret", "")
        return secrets.compare_digest(cid, self.client_id) and secrets.compare_digest(
            secret, self.client_secret
        )

    def _make_app(self) -> Flask:
        app = Flask("oidc_provider")

        @app.get("/.well-known/openid-configuration")
        def well_known():
            return jsonify(self.discovery())

        @app.get("/jwks")
        def jwks():
            return jsonify(KeySet([self.key]).as_dict(private=False))

        @app.get("/authorize")
        def authorize():
            args = request.args.to_dict()
            self.authorize_requests.append(args)
            if args.get("client_id") != self.client_id or args.get("redirect_uri") not in self.redirect_uris:
                abort(400)  # never redirect to an unregistered address
            scope = set(args.get("scope", "").split())
            missing = [k for k in ("state", "nonce", "code_challenge") if not args.get(k)] + (
                [] if args.get("code_challenge_method") == "S256" else ["code_challenge_method"]
            )
            back = args["redirect_uri"]
            if args.get("response_type") != "code" or "openid" not in scope or missing:
                query = {"error": "invalid_request", "state": args.get("state", "")}
                return redirect(f"{back}?{urlencode(query)}")
            if self.deny:
                return redirect(f"{back}?{urlencode({'error': self.deny, 'state': args['state']})}")
            code = secrets.token_urlsafe(24)
            with self._lock:
                self.codes[code] = {
                    "sub": self.user["sub"],
                    "nonce": args["nonce"],
                    "challenge": args["code_challenge"],
                    "redirect_uri": back,
                    "scope": scope,
                    "at": time.time(),
                }
                self.secrets_seen.append(code)
            return redirect(f"{back}?{urlencode({'code': code, 'state': args['state']})}")

        @app.post("/token")
        def token():
            self.token_requests += 1
            if not self._client_authenticated():
                return jsonify(error="invalid_client"), 401
            form = request.form
            if form.get("grant_type") != "authorization_code":
                return jsonify(error="unsupported_grant_type"), 400
            with self._lock:
                grant = self.codes.pop(form.get("code", ""), None)  # single use
            verifier = form.get("code_verifier", "")
            self.secrets_seen.append(verifier)
            expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
            if (
                grant is None
                or time.time() - grant["at"] > 60
                or form.get("redirect_uri") != grant["redirect_uri"]
                or not secrets.compare_digest(expected.decode(), grant["challenge"])
            ):
                return jsonify(error="invalid_grant"), 400
            access_token = secrets.token_urlsafe(32)
            with self._lock:
                self.access_tokens[access_token] = grant
            id_token = self._id_token(grant, access_token)
            self.secrets_seen += [access_token, id_token]
            return jsonify(
                access_token=access_token,
                token_type="Bearer",
                expires_in=300,
                scope=" ".join(sorted(grant["scope"])),
                id_token=id_token,
            )

        @app.get("/userinfo")
        def userinfo():
            self.userinfo_requests += 1
            auth = request.headers.get("Authorization", "")
            grant = self.access_tokens.get(auth.removeprefix("Bearer ").strip())
            if not auth.startswith("Bearer ") or grant is None:
                return jsonify(error="invalid_token"), 401
            return jsonify({"sub": grant["sub"], **self._personal(grant["scope"]), **self.userinfo_overrides})

        return app
