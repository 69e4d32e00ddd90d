"""Liveness, readiness and the metrics scrape.

``/healthz``  the process answers (no backing service is asked: a database outage must not make
             the orchestrator kill every web worker).
``/readyz``   the database answers, Redis answers (when configured), and the schema is at the
             migrations' head — otherwise 503 with which check failed, so a load balancer stops
             sending traffic here.
``/metrics``  Prometheus text, for the ``monitor`` principal only (loopback or METRICS_TOKEN).
"""

from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, Response, current_app, jsonify, request

from portal.authz import allow
from portal.ops import metrics

bp = Blueprint("ops", __name__)


def _migration_heads() -> set[str]:
    heads = current_app.extensions.get("ops_migration_heads")
    if heads is None:
        from alembic.script import ScriptDirectory

        config = current_app.extensions["migrate"].migrate.get_config()
        heads = set(ScriptDirectory.from_config(config).get_heads())
        current_app.extensions["ops_migration_heads"] = heads
    return heads


def check_database() -> tuple[bool, str]:
    from sqlalchemy import text

    from portal.extensions import db

    try:
        with db.engine.connect() as conn:
            current = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except Exception as exc:
        return False, "unreachable: " + type(exc).__name__
    if current != _migration_heads():
        return False, "schema not at the migrations' head"
    return True, "ok"


def check_redis() -> tuple[bool, str]:
    url = current_app.config.get("REDIS_URL")
    if not url:
        return True, "not configured"
    from redis import Redis

    try:
        Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping()
    except Exception as exc:
        return False, "unreachable: " + type(exc).__name__
    return True, "ok"


@bp.get("/healthz")
@allow("public")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
@allow("public")
def readyz():
    checks = {"database": check_database(), "redis": check_redis()}
    ok = all(passed for passed, _ in checks.values())
    body = {"status": "ok" if ok else "unavailable", "checks": {k: v for k, (_, v) in checks.items()}}
    response = jsonify(body)
    response.status_code = 200 if ok else 503
    if not ok:
        response.headers["Retry-After"] = "5"
    return response


def is_monitor() -> bool:
    """A scrape from this host (nginx also limits /metrics to loopback) or with the bearer token."""
    token = current_app.config.get("METRICS_TOKEN")
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


@bp.get("/metrics")
@allow("monitor")
def metrics_view():
    return Response(metrics.exposition(current_app), mimetype="text/plain; version=0.0.4; charset=utf-8")
