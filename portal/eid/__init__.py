"""Log in with an external eID provider over OpenID Connect (optional; on when EID_OIDC_ISSUER is set).

``init_app(app)`` registers the blueprint (``/eid/login``, ``/eid/callback``) and the login page's
button helpers; the settings and their defaults are in ``portal.eid.service.DEFAULTS``.
"""

from __future__ import annotations

from flask import Flask

from portal.eid.views import bp

__all__ = ["bp", "init_app"]


def init_app(app: Flask) -> None:
    from portal.eid import service

    if bp.name not in app.blueprints:
        app.register_blueprint(bp)
    service.quiet_library_logs()
