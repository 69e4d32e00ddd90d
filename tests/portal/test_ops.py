"""Operations endpoints and plumbing in the app itself (the deployed shape is tested in tests/ops):
health and readiness, the metrics scrape's principal, request ids, JSON logs, 503 when the
database is down, the scheduler's schedule."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import text

from portal.authz import allow
from portal.ops import scheduler
from portal.ops.requestlog import JsonFormatter


def test_health_and_readiness(client, db):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json["status"]) == (200, "ok")
    assert ready.json["checks"] == {"database": "ok", "redis": "not configured"}


def test_not_ready_when_the_schema_is_behind(app, client, db):
    current = db.session.scalar(text("SELECT version_num FROM alembic_version"))
    db.session.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    db.session.commit()
    try:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.headers["Retry-After"] == "5"
        assert ready.json["checks"]["database"] == "schema not at the migrations' head"
    finally:
        db.session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": current})
        db.session.commit()


@pytest.fixture
def app_config(request):
    return getattr(request, "param", {})


@pytest.mark.parametrize(
    "app_config", [{"REDIS_URL": "redis://127.0.0.1:9/0", "METRICS_TOKEN": "t0ken-for-tests"}], indirect=True
)
def test_not_ready_without_redis_and_metrics_principal(client):
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["checks"]["redis"].startswith("unreachable: ")
    assert ready.json["checks"]["database"] == "ok"

    client.get("/healthz")
    loopback = client.get("/metrics")
    assert loopback.status_code == 200
    assert 'portal_http_requests_total{endpoint="ops.healthz",method="GET",status="200"}' in loopback.text
    assert 'portal_backend_up{service="redis"} 0.0' in loopback.text
    remote = {"REMOTE_ADDR": "192.0.2.10"}
    assert client.get("/metrics", environ_base=remote).status_code == 403
    wrong = client.get("/metrics", environ_base=remote, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    right = client.get("/metrics", environ_base=remote, headers={"Authorization": "Bearer t0ken-for-tests"})
    assert right.status_code == 200


def test_request_id_in_and_out(client):
    given = client.get("/healthz", headers={"X-Request-ID": "abc-123-def-456"})
    assert given.headers["X-Request-ID"] == "abc-123-def-456"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert len(made.headers["X-Request-ID"]) == 32
    assert client.get("/no-such-page").headers["X-Request-ID"]


def test_json_log_lines_are_redacted():
    from tests.factories import fake_number

    record = logging.LogRecord(
        "portal", logging.WARNING, __file__, 1, "number %s seen", (fake_number(7),), None
    )
    record.request_id = "rid-00000001"
    record.status = 503
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "number [個人番号 redacted] seen"
    assert (line["request_id"], line["status"], line["level"]) == ("rid-00000001", 503, "warning")


@pytest.mark.parametrize(
    "app_config", [{"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:9/none"}], indirect=True
)
def test_database_down_is_a_retryable_503(app, client):
    from portal.extensions import db

    @allow("public")
    def needs_db():
        db.session.execute(text("SELECT 1"))
        return "never"

    app.add_url_rule("/api/needs-db", "needs_db_api", needs_db)
    app.add_url_rule("/needs-db", "needs_db_page", needs_db)
    api = client.get("/api/needs-db")
    assert api.status_code == 503
    assert api.headers["Retry-After"] == "5"
    assert api.json["error"]["code"] == 503
    page = client.get("/needs-db")
    assert page.status_code == 503 and page.headers["Retry-After"] == "5"
    assert "text/html" in page.content_type


def test_schedule_parsing_and_missing_commands(app):
    jobs = scheduler.parse("notices run-scheduled@300, push deliver@60,points daily@daily")
    assert [(j.name, j.every) for j in jobs] == [
        ("notices run-scheduled", 300),
        ("push deliver", 60),
        ("points daily", None),
    ]
    kept = scheduler.available(jobs + scheduler.parse("notices no-such@5"), app.cli.commands)
    names = [j.name for j in kept]
    assert names[:2] == ["notices run-scheduled", "push deliver"]
    assert "notices no-such" not in names
    assert ("points daily" in names) == ("points" in app.cli.commands)
    with pytest.raises(ValueError):
        scheduler.parse("no-interval")
    assert jobs[2].due(0.0)  # a daily job not yet run today is due
