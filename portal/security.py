"""Security headers with a per-request CSP nonce, server-side idle timeout, session checks."""

from __future__ import annotations

import secrets
import time

from flask import Flask, current_app, g, request, session
from flask_login import current_user, logout_user


def nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def add_headers(response):
    n = nonce()
    # A response may be shown in a frame of this site's own pages (the kiosk's printed PDF).
    frame_self = bool(g.get("frame_self"))
    ancestors = "'self'" if frame_self else "'none'"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{n}'; "
        "style-src 'self'; "
        "img-src 'self' data:; "
        f"connect-src 'self' {current_app.config['AGENT_ORIGIN']}; "
        "font-src 'self'; "
        "object-src 'none'; "
        "base-uri 'none'; "
        "form-action 'self'; "
        f"frame-ancestors {ancestors}"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "SAMEORIGIN" if frame_self else "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(self), geolocation=(), microphone=()"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    if current_user and current_user.is_authenticated:
        response.headers["Cache-Control"] = "no-store"
    return response


def enforce_idle_timeout():
    """Log out a session that has been idle longer than its kind allows (checked on the server)."""
    if not current_user.is_authenticated:
        return
    limit = current_app.config[
        "STAFF_IDLE_SECONDS" if current_user.kind == "staff" else "RESIDENT_IDLE_SECONDS"
    ]
    now = int(time.time())
    last = session.get("last_seen")
    if last is not None and now - last > limit:
        logout_user()
        session.clear()
        session["timed_out"] = True
        return
    if request.endpoint != "static":
        session["last_seen"] = now


def is_fresh() -> bool:
    """A login is fresh for FRESH_LOGIN_SECONDS after the password (and TOTP) were given."""
    at = session.get("auth_at")
    return at is not None and time.time() - at <= current_app.config["FRESH_LOGIN_SECONDS"]


def mark_fresh() -> None:
    session["auth_at"] = int(time.time())


def init_app(app: Flask) -> None:
    app.before_request(enforce_idle_timeout)
    app.after_request(add_headers)
    app.jinja_env.globals["csp_nonce"] = nonce
