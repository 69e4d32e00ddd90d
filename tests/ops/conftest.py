"""The deploy-local shape, brought up once per test session on free ports in its own state folder
(``deploy/local.sh up``) and torn down at the end. Every test here runs against it: nginx with TLS,
gunicorn, PostgreSQL, Redis, RQ workers and the scheduler, each a real process.

Every module here is in the xdist group ``deploy`` (one worker runs them all, one after another)
because they stop and start the deployment's services.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import shutil
import socket
import socketserver
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "deploy" / "local.sh"


def free_port(pair: bool = False) -> int:
    """A port nothing listens on (and the next one too, with ``pair``)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not pair or port >= 65535:
            return port
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


# --- an SMTP sink that can be slowed down -----------------------------------------------------


class SmtpSink:
    """Just enough SMTP to take the portal's mail; each message is recorded by (To, Subject).
    ``delay`` seconds are spent before accepting each message, to make a fan-out take a while."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []
        self.delay = 0.0
        self._lock = threading.Lock()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self.wfile.write(b"220 sink ESMTP\r\n")
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    verb = line.split(b" ", 1)[0].strip().upper()
                    if verb in (b"EHLO", b"HELO"):
                        self.wfile.write(b"250-sink\r\n250 8BITMIME\r\n")
                    elif verb == b"DATA":
                        self.wfile.write(b"354 go ahead\r\n")
                        data = []
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            data.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                        time.sleep(sink.delay)
                        msg = email.message_from_bytes(b"".join(data), policy=email.policy.default)
                        with sink._lock:
                            sink.messages.append((str(msg["To"]), str(msg["Subject"])))
                        self.wfile.write(b"250 queued\r\n")
                    elif verb == b"QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:  # MAIL, RCPT, RSET, NOOP
                        self.wfile.write(b"250 ok\r\n")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received(self) -> Counter:
        with self._lock:
            return Counter(self.messages)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the deployment ---------------------------------------------------------------------------


@dataclass
class Deploy:
    state: Path
    https_port: int
    http_port: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def local(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(LOCAL), *args], env=self._shell_env(), capture_output=True, text=True, check=check
        )

    def _shell_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "TEST_"))}
        env.update(self.settings)
        return env

    settings: dict[str, str] = field(default_factory=dict)

    def app_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "TEST_"))}
        env.update(self.env)
        return env

    def flask(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(ROOT / ".venv/bin/flask"), "--app", "wsgi", *args],
            cwd=ROOT,
            env=self.app_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"flask {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
        return done

    def python(self, code: str) -> str:
        """Run ``code`` in the deployment's environment (its production app); returns stdout."""
        done = subprocess.run(
            [str(ROOT / ".venv/bin/python"), "-c", code],
            cwd=ROOT,
            env=self.app_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"python exited {done.returncode}: {done.stderr[-3000:]}")
        return done.stdout

    def seed(self, *args: str) -> str:
        """tests/ops/seed.py in the deployment's environment; its printed result."""
        done = subprocess.run(
            [str(ROOT / ".venv/bin/python"), "-m", "tests.ops.seed", *args],
            cwd=ROOT,
            env=self.app_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"seed {args} exited {done.returncode}: {done.stderr[-3000:]}")
        return done.stdout.strip()

    def login(self, login: str, password: str, *, staff: bool = False):
        """A requests session logged in through nginx (the form, its CSRF token, the cookie)."""
        s = self.session()
        path = "/staff/login" if staff else "/login"
        page = s.get(f"{self.url}{path}")
        field = "login_id" if staff else "email"
        answer = s.post(
            f"{self.url}{path}",
            data={"csrf_token": csrf_token(page.text), field: login, "password": password},
            allow_redirects=False,
        )
        assert answer.status_code == 302, f"login as {login}: {answer.status_code}"
        return s

    def db(self) -> psycopg.Connection:
        return psycopg.connect(
            self.env["DATABASE_URL"].replace("postgresql+psycopg:", "postgresql:"), autocommit=True
        )

    def scalar(self, sql: str, *params):
        with self.db() as conn:
            row = conn.execute(sql, params).fetchone()
            return row[0] if row else None

    def session(self):
        import requests

        s = requests.Session()
        s.trust_env = False  # no CA bundle or proxy from the environment
        s.verify = str(self.state / "tls" / "cert.pem")  # the self-signed certificate deploy-local made
        s.headers["Referer"] = f"{self.url}/"  # as a browser sends it (CSRF checks it over HTTPS)
        return s

    def pids(self, prefix: str) -> list[int]:
        out = []
        for f in sorted((self.state / "run").glob(f"{prefix}*.pid")):
            with contextlib.suppress(OSError, ValueError):
                out.append(int(f.read_text()))
        return out


def csrf_token(html: str) -> str:
    import re

    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'name="csrf-token" content="([^"]+)"', html
    )
    assert found, "no CSRF token on the page"
    return found.group(1)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.close()


@pytest.fixture(scope="session")
def deploy(smtp_sink: SmtpSink, worker_id: str) -> Iterator[Deploy]:
    if not shutil.which("nginx") or not shutil.which("redis-server"):
        if os.environ.get("CI"):
            pytest.fail("nginx and redis-server are needed (scripts/setup.sh installs them)")
        pytest.skip("nginx or redis-server missing")
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))[:8]
    state = Path(f"/var/tmp/portal-deploy-test-{run}-{worker_id}")
    settings = {
        "PORTAL_DEPLOY_DIR": str(state),
        "PORTAL_DEPLOY_PG_PORT": str(free_port()),
        "PORTAL_DEPLOY_REDIS_PORT": str(free_port()),
        "PORTAL_DEPLOY_HTTPS_PORT": str(free_port()),
        "PORTAL_DEPLOY_HTTP_PORT": str(free_port()),
        "PORTAL_DEPLOY_WEB_WORKERS": "2",
        "PORTAL_DEPLOY_RQ_WORKERS": "1",
        "PORTAL_DEPLOY_HOUSEHOLDS": "60",
        "PORTAL_DEPLOY_QUIET": "1",
        # SMTP to the sink; short leases and a quick scheduler, so a fault heals within the test
        "PORTAL_DEPLOY_EXTRA_ENV": "\n".join(
            (
                "MAIL_BACKEND=smtp",
                "SMTP_HOST=127.0.0.1",
                f"SMTP_PORT={smtp_sink.port}",
                "DELIVERY_LEASE_SECONDS=4",
                'PORTAL_SCHEDULE="notices run-scheduled@8,push deliver@8"',
                "METRICS_TOKEN=test-metrics-token",
            )
        ),
    }
    d = Deploy(
        state=state,
        https_port=int(settings["PORTAL_DEPLOY_HTTPS_PORT"]),
        http_port=int(settings["PORTAL_DEPLOY_HTTP_PORT"]),
        settings=settings,
    )
    shutil.rmtree(state, ignore_errors=True)
    try:
        up = d.local("up", check=False)
        if up.returncode != 0:
            logs = "\n".join(
                f"== {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                for p in sorted((state / "log").glob("*.log"))
            )
            pytest.fail(f"deploy/local.sh up failed: {up.stderr[-2000:]}\n{logs}")
        for line in (state / "portal.env").read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                d.env[key] = value.strip('"')
        yield d
    finally:
        d.local("down", check=False)
        if not os.environ.get("PORTAL_OPS_KEEP"):  # keep the logs to look at
            shutil.rmtree(state, ignore_errors=True)
