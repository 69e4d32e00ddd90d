"""Agent fixtures: a fresh copy of a virtual card per test, a terminal key, the stand-in server, and
the agent (in memory, ``--sim``) serving on a free loopback port."""

from __future__ import annotations

import http.client
import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from werkzeug.serving import WSGIRequestHandler, make_server

from card.sim import Profile, make_profile
from kiosk.agent.api import AgentServer
from kiosk.agent.client import ServerClient
from kiosk.agent.reader import SimBackend
from kiosk.agent.service import Agent

from .standin import StandIn

# test data only: a fake number with a valid check digit, and PINs that stand out in any text
TEST_NUMBER = "999912345677"
AUTH_PIN = "7391"
TEXT_PIN = "5820"
TERMINAL = "T-KIOSK-1"


@pytest.fixture(scope="session")
def kiosk_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kiosk-pki")


@pytest.fixture(scope="session")
def card_template(tmp_path_factory: pytest.TempPathFactory, kiosk_pki: Path) -> Profile:
    return make_profile(
        tmp_path_factory.mktemp("kiosk-card") / "card",
        name="試験 一郎",
        kana="シケン イチロウ",
        address="東京都千代田区霞が関一丁目1番1号",
        birth="19850701",
        sex="1",
        auth_pin=AUTH_PIN,
        sign_pin="TEST1234",
        text_pin=TEXT_PIN,
        my_number=TEST_NUMBER,
        pki_dir=kiosk_pki,
    )


@pytest.fixture
def card_dir(card_template: Profile, tmp_path: Path) -> Path:
    """A copy of the card for this test: PIN counters persist in the profile, as on a real card."""
    target = tmp_path / "card"
    shutil.copytree(card_template.directory, target)
    return target


@pytest.fixture(scope="session")
def terminal_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def standin(terminal_key: Ed25519PrivateKey, kiosk_pki: Path) -> Iterator[StandIn]:
    server = StandIn({TERMINAL: terminal_key.public_key()}, kiosk_pki)
    try:
        yield server
    finally:
        server.close()


@dataclass
class Running:
    agent: Agent
    httpd: AgentServer
    backend: SimBackend

    @property
    def port(self) -> int:
        return self.httpd.port

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        origin: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        all_headers = dict(headers or {})
        raw = None
        if body is not None:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        if origin is not None:
            all_headers["Origin"] = origin
        try:
            conn.request(method, path, body=raw, headers=all_headers)
            response = conn.getresponse()
            data = response.read()
            is_json = "json" in (response.getheader("Content-Type") or "")
            parsed = json.loads(data) if data and is_json else data
            return response.status, {k.lower(): v for k, v in response.getheaders()}, parsed
        finally:
            conn.close()


def start_agent(
    server_url: str, key: Ed25519PrivateKey, card_dir: Path, *, terminal: str = TERMINAL, **options: Any
) -> Running:
    backend = SimBackend(card_dir)
    agent = Agent(backend, ServerClient(server_url, terminal, key), poll_ms=20).start()
    httpd = AgentServer(agent, 0, options.get("allow_origin")).start()
    return Running(agent, httpd, backend)


@pytest.fixture
def running(standin: StandIn, terminal_key: Ed25519PrivateKey, card_dir: Path) -> Iterator[Running]:
    run = start_agent(standin.url, terminal_key, card_dir)
    try:
        yield run
    finally:
        run.httpd.close()


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@pytest.fixture
def live(app) -> Iterator[str]:
    """The app under test on http://127.0.0.1:<port>; challenges are bound to that origin."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_ORIGIN"] = url
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
