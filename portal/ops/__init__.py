"""Operations: request ids and JSON logs, Prometheus metrics, health and readiness, 503 when a
backing service is down, and the scheduler that runs the timed jobs (``flask ops scheduler``)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from portal.ops import cli, health, requestlog, unavailable

    requestlog.init_app(app)
    unavailable.init_app(app)
    app.register_blueprint(health.bp)
    cli.init_app(app)
    if app.config.get("PROXY_COUNT"):
        # behind nginx: the client address and scheme as nginx saw them
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
