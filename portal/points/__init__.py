"""Citizen points (市民ポイント): ledger, earning rules, tiers, redemption and the partner API.

``init_app(app)`` registers the resident pages, the staff pages, the partner API (OAuth2 client
credentials) and the ``flask points`` commands.
"""

from __future__ import annotations

import os

from flask import Flask


def init_app(app: Flask) -> None:
    from portal.points import api, cli, oauth, staff_views, views

    app.config.setdefault("POINTS_EXPIRY_DAYS", 730)
    app.config.setdefault(
        "POINTS_API_RATE_LIMIT", os.environ.get("POINTS_API_RATE_LIMIT") or "600 per minute"
    )
    app.config.setdefault("POINTS_QR_SECONDS", 300)
    app.config.setdefault("POINTS_TOKEN_SECONDS", 3600)
    oauth.init_app(app)
    views.init_app(app)
    staff_views.init_app(app)
    api.init_app(app)
    cli.init_app(app)
