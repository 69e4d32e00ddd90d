"""The agent on a real PC/SC stack: pcscd with the vpcd driver and the virtual card served to it,
seen through the same PcscBackend a terminal uses."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from card.sim import VirtualCard
from card.sim.vpcd import VpcdClient
from kiosk.agent.api import AgentServer
from kiosk.agent.client import ServerClient
from kiosk.agent.reader import PcscBackend
from kiosk.agent.service import Agent
from tests.card.conftest import READER, pcscd, vpcd_lock, wait_present  # noqa: F401 (fixtures)

from .conftest import AUTH_PIN, TERMINAL, Running
from .standin import StandIn
from .test_events import EventStream

pytestmark = [pytest.mark.pcscd, pytest.mark.xdist_group("pcscd")]


@pytest.fixture
def on_pcscd(
    request: pytest.FixtureRequest, standin: StandIn, terminal_key: Ed25519PrivateKey, card_dir: Path
) -> Iterator[tuple[Running, VpcdClient]]:
    request.getfixturevalue("vpcd_lock")  # pcscd has two vpcd slots: one pcscd test at a time
    wait_present(READER, False)
    backend = PcscBackend(READER)
    agent = Agent(backend, ServerClient(standin.url, TERMINAL, terminal_key), poll_ms=50).start()
    httpd = AgentServer(agent, 0).start()
    client = VpcdClient(VirtualCard.from_profile(card_dir))
    try:
        yield Running(agent, httpd, backend), client  # type: ignore[arg-type]
    finally:
        httpd.close()
        client.stop()
        wait_present(READER, False)


def wait_card(running: Running, present: bool) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = running.call("GET", "/status")[2]
        if status["card"] is present and (not present or status["tries"]["auth"] is not None):
            return status
        time.sleep(0.05)
    raise AssertionError("the agent did not see the card change")


def test_agent_sees_the_reader_and_the_card(on_pcscd: tuple[Running, VpcdClient], standin: StandIn) -> None:
    running, card = on_pcscd
    assert running.call("GET", "/status")[2] == {
        "reader": True,
        "card": False,
        "tries": {"auth": None, "sign": None, "text": None},
    }
    events = EventStream(running.port)
    try:
        assert events.next() == ("status", running.call("GET", "/status")[2])
        card.start()
        assert card.wait_connected(10)
        assert events.next() == ("card-inserted", {"reader": READER})
        assert wait_card(running, True)["tries"] == {"auth": 3, "sign": 5, "text": 3}

        status, _, body = running.call("POST", "/login", {"purpose": "kiosk_login", "pin": "0000"})
        assert (status, body["error"]["code"], body["error"]["tries_left"]) == (400, "wrong_pin", 2)
        status, _, body = running.call("POST", "/login", {"purpose": "kiosk_login", "pin": AUTH_PIN})
        assert (status, body["status"]) == (200, "done")
        assert [r.terminal for r in standin.posted("/api/card/responses")] == [TERMINAL]

        card.remove()
        assert events.next() == ("card-removed", {"reader": READER})
        status, _, body = running.call("POST", "/login", {"purpose": "kiosk_login", "pin": AUTH_PIN})
        assert (status, body["error"]["code"]) == (409, "no_card")
        card.insert()
        assert events.next() == ("card-inserted", {"reader": READER})
    finally:
        events.close()


def test_card_pulled_during_a_signature(on_pcscd: tuple[Running, VpcdClient], standin: StandIn) -> None:
    running, card = on_pcscd
    card.start()
    wait_card(running, True)

    def pull_on_signature(apdu: bytes) -> None:
        if apdu[1] == 0x2A:  # COMPUTE SIGNATURE
            card.remove()

    card.on_apdu = pull_on_signature
    status, _, body = running.call("POST", "/login", {"purpose": "kiosk_login", "pin": AUTH_PIN})
    assert (status, body["error"]["code"]) == (409, "card_removed")
    assert standin.posted("/api/card/responses") == []
