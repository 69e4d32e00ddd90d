"""make deploy-local's shape: nginx (TLS, HTTP → HTTPS, static files, security headers) in front of
gunicorn, health and readiness, metrics for the monitor only, JSON logs with request ids."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import Deploy, wait_for

# one worker runs every test here: they share one deployment and stop its services
pytestmark = pytest.mark.xdist_group("deploy")


def test_health_and_readiness_through_nginx(deploy: Deploy) -> None:
    s = deploy.session()
    assert s.get(f"{deploy.url}/healthz").json() == {"status": "ok"}
    ready = s.get(f"{deploy.url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    assert deploy.flask("ops", "ready").stdout.splitlines() == ["database: ok", "redis: ok"]


def test_http_goes_to_https_and_static_files_come_from_nginx(deploy: Deploy) -> None:
    s = deploy.session()
    plain = s.get(f"http://127.0.0.1:{deploy.http_port}/login?next=/me", allow_redirects=False)
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"https://127.0.0.1:{deploy.https_port}/login?next=/me"

    page = s.get(f"{deploy.url}/login")
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "nonce-" in page.headers["Content-Security-Policy"]
    cookie = page.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie  # the app knows it is behind TLS (ProxyFix)

    css = s.get(f"{deploy.url}/static/css/app.css")
    assert css.status_code == 200 and css.headers["Server"].startswith("nginx")
    assert css.headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" in css.headers
    assert "X-Request-ID" in css.headers
    # nginx served it: gunicorn's log has no line for it
    assert "static" not in (deploy.state / "log" / "gunicorn.log").read_text()


def test_metrics_for_the_monitor_only(deploy: Deploy) -> None:
    s = deploy.session()
    for _ in range(3):
        s.get(f"{deploy.url}/healthz")
    s.get(f"{deploy.url}/no-such-page")
    text = s.get(f"{deploy.url}/metrics").text  # nginx and the app both allow loopback
    counts = {
        m.group(1): float(m.group(2))
        for m in re.finditer(
            r'^portal_http_requests_total\{endpoint="ops.healthz",method="GET",status="(\d+)"\} (\S+)$',
            text,
            re.M,
        )
    }
    assert counts["200"] >= 3  # summed over both gunicorn workers (multiprocess)
    assert re.search(
        r'^portal_http_requests_total\{endpoint="unmatched",method="GET",status="404"\} ', text, re.M
    )
    assert re.search(
        r'^portal_http_request_duration_seconds_bucket\{endpoint="ops.healthz",le="0.1"\} ', text, re.M
    )
    assert re.search(r'^portal_queue_depth\{queue="portal"\} \d+\.0$', text, re.M)  # jobs may be waiting
    assert re.search(r'^portal_backend_up\{service="database"\} 1.0$', text, re.M)
    assert re.search(r'^portal_backend_up\{service="redis"\} 1.0$', text, re.M)


def test_json_logs_carry_the_request_id_and_no_personal_data(deploy: Deploy) -> None:
    s = deploy.session()
    page = s.get(f"{deploy.url}/login")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
    rid = "ops-test-request-0001"
    answer = s.post(
        f"{deploy.url}/login",
        data={"csrf_token": token, "email": "hanako.yamada@example.jp", "password": "wrong-password-123"},
        headers={"X-Request-ID": rid},
    )
    assert answer.headers["X-Request-ID"] == rid
    log = deploy.state / "log" / "gunicorn.log"
    lines = wait_for(
        lambda: [y for x in log.read_text().splitlines() if rid in x and "endpoint" in (y := json.loads(x))],
        what="the request's log line",
    )
    assert {(x["endpoint"], x["method"]) for x in lines} >= {("accounts.login", "POST")}
    assert all(x["request_id"] == rid and x["level"] for x in lines)
    text = log.read_text()
    assert "hanako" not in text and "wrong-password" not in text
    access = (deploy.state / "log" / "nginx-access.log").read_text()
    assert f'"request_id":"{rid}"' in access and '127.0.0.1"' not in access.replace(
        f":{deploy.https_port}", ""
    )
    # an id that does not look like one is replaced
    other = s.get(f"{deploy.url}/healthz", headers={"X-Request-ID": "<script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", other.headers["X-Request-ID"])
