"""The city portal: app factory, resident web, staff console, shared domain."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from portal import config as config_module

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict | str | None = None) -> Flask:
    """Build the app. ``config``: a config name ('development', 'test', 'production'), or a dict
    of overrides on top of the class chosen by PORTAL_CONFIG."""
    app = Flask(
        __name__,
        static_folder=str(ROOT / "static"),
        static_url_path="/static",
        instance_relative_config=True,
    )
    name = config if isinstance(config, str) else (config or {}).get("NAME")
    app.config.from_object(config_module.choose(name))
    if isinstance(config, dict):
        app.config.update(config)
    config_module.finalise(app.config, app.instance_path)

    from portal import accounts, authz, cli, errors, i18n, logs, security
    from portal.extensions import babel, csrf, db, limiter, login_manager, migrate
    from portal.notices import models as _notice_tables  # noqa: F401 - tables known to migrations
    from portal.points import models as _points_tables  # noqa: F401
    from portal.prefiling import models as _prefiling_tables  # noqa: F401

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(ROOT / "portal" / "translations"))
    babel.init_app(app, locale_selector=i18n.select_locale)
    login_manager.init_app(app)
    accounts.init_login(app)

    logs.init_app(app)
    security.init_app(app)
    i18n.init_app(app)
    errors.init_app(app)
    app.before_request(authz.enforce)

    from portal.access.views import bp as access_bp
    from portal.accounts.views import bp as accounts_bp
    from portal.cardid.api import bp as cardid_api_bp
    from portal.cardid.views import bp as cardid_bp
    from portal.resident.views import bp as resident_bp
    from portal.staff.views import bp as staff_bp
    from portal.views import bp as site_bp

    for bp in (site_bp, accounts_bp, resident_bp, access_bp, staff_bp, cardid_bp, cardid_api_bp):
        app.register_blueprint(bp)
    from portal import eid
    from portal.notices import cli as notices_cli
    from portal.notices import push_api
    from portal.notices import views as notices_views

    eid.init_app(app)
    notices_views.init_app(app)
    push_api.init_app(app)
    notices_cli.init_app(app)

    from portal.prefiling import signing as prefiling_signing
    from portal.prefiling import staff_views as prefiling_staff
    from portal.prefiling import views as prefiling_views

    prefiling_views.init_app(app)
    prefiling_staff.init_app(app)
    prefiling_signing.init_app(app)
    from portal.kiosk import views as kiosk_views

    kiosk_views.init_app(app)
    from portal import booking

    booking.init_app(app)
    from portal.certificates import views as certificates_views

    certificates_views.init_app(app)
    from portal import points

    points.init_app(app)
    from portal.library import views as library_views
    from portal.shelter import views as shelter_views

    library_views.init_app(app)
    shelter_views.init_app(app)
    from portal import ops

    ops.init_app(app)
    cli.init_app(app)
    return app
