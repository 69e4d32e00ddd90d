"""The card reader unplugged at a kiosk: the terminal agent (python -m kiosk.agent, pointed at the
deploy-local portal) reports it on /status and /events, refuses card work with ``no_reader``, and
recovers by itself when the reader returns.

The reader is a vpcd virtual reader behind a pcscd of this test's own (its own socket, in a private
mount namespace, and its own vpcd port), so stopping it — the reader vanishing from PC/SC, as when
the USB cable is pulled — touches neither the machine's pcscd nor other tests. The vpcd lock is
held all the same."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from card.sim import VirtualCard, make_profile
from card.sim.vpcd import VpcdClient
from tests.card.conftest import pcscd, vpcd_lock  # noqa: F401 (fixtures)

from .conftest import ROOT, Deploy, free_port, wait_for

# one worker runs every test here: they share one deployment and stop its services
pytestmark = pytest.mark.xdist_group("deploy")

READER = "Virtual PCD 00 00"
VPCD_CONF = Path("/etc/reader.conf.d/vpcd")


class PrivatePcscd:
    """pcscd with the vpcd driver on ``port``, its socket in ``folder`` (bind-mounted over
    /run/pcscd in a mount namespace of its own); clients find it through PCSCLITE_CSOCK_NAME."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        (folder / "run").mkdir(parents=True, exist_ok=True)
        (folder / "conf").mkdir(exist_ok=True)
        channel = f"0x{port:04X}"
        (folder / "conf" / "vpcd").write_text(
            VPCD_CONF.read_text().replace("0x8C7B", channel).replace("0x8c7b", channel)
        )
        self.socket = folder / "run" / "pcscd.comm"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.socket.unlink(missing_ok=True)
        script = f"mount --bind {self.folder / 'run'} /run/pcscd && exec pcscd -f -c {self.folder / 'conf'}"
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.socket.exists, timeout=10, what="the private pcscd's socket")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


class AgentProcess:
    def __init__(self, port: int) -> None:
        self.port = port

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(
                method, path, body=data, headers={"Content-Type": "application/json"} if data else {}
            )
            r = conn.getresponse()
            return r.status, json.loads(r.read() or b"{}")
        finally:
            conn.close()

    def status(self) -> dict:
        return self.call("GET", "/status")[1]


class Events:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        self.conn.request("GET", "/events")
        self.response = self.conn.getresponse()

    def next(self) -> tuple[str, dict]:
        fields: dict[str, str] = {}
        while True:
            text = self.response.readline().decode().rstrip("\n")
            if text.startswith(":"):
                continue
            if not text:
                if "event" in fields:
                    return fields["event"], json.loads(fields["data"])
                continue
            name, _, value = text.partition(": ")
            fields[name] = value

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def kiosk(request, deploy: Deploy, tmp_path: Path) -> Iterator[tuple[AgentProcess, PrivatePcscd, VpcdClient]]:
    if (
        os.geteuid() != 0
        or not shutil.which("unshare")
        or not shutil.which("pcscd")
        or not VPCD_CONF.exists()
    ):
        if os.environ.get("CI"):
            pytest.fail("the reader test needs root, unshare, pcscd and vsmartcard-vpcd")
        pytest.skip("needs root, unshare, pcscd and vsmartcard-vpcd")
    request.getfixturevalue("vpcd_lock")
    profile = make_profile(
        tmp_path / "card",
        name="試験 三郎",
        kana="シケン サブロウ",
        address="東京都千代田区霞が関一丁目1番1号",
        birth="19800101",
        sex="1",
        auth_pin="4826",
        sign_pin="TEST1234",
        my_number="999912345677",
        pki_dir=tmp_path / "pki",
    )
    daemon = PrivatePcscd(Path(f"{deploy.state}-pcscd"), free_port(pair=True))
    daemon.start()
    key = tmp_path / "terminal.key"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key.chmod(0o600)
    agent = AgentProcess(free_port())
    env = {**os.environ, "PCSCLITE_CSOCK_NAME": str(daemon.socket)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kiosk.agent",
            "--server",
            deploy.url,
            "--terminal",
            "T-OPS-KIOSK",
            "--key",
            str(key),
            "--port",
            str(agent.port),
            "--reader",
            READER,
            "--poll-ms",
            "100",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    card = VpcdClient(VirtualCard.from_profile(profile.directory), port=daemon.port)
    try:
        wait_for(lambda: _answers(agent), timeout=20, what="the agent to listen")
        yield agent, daemon, card
    finally:
        card.stop()
        proc.terminate()
        proc.wait(10)
        daemon.stop()
        shutil.rmtree(daemon.folder, ignore_errors=True)


def _answers(agent: AgentProcess) -> bool:
    try:
        agent.status()
        return True
    except OSError:
        return False


def test_reader_unplugged_and_back(kiosk: tuple[AgentProcess, PrivatePcscd, VpcdClient]) -> None:
    agent, daemon, card = kiosk
    card.start()
    assert card.wait_connected(15)
    status = wait_for(
        lambda: (s := agent.status())["card"] and s["tries"]["auth"] is not None and s, what="the card"
    )
    assert status == {"reader": True, "card": True, "tries": {"auth": 3, "sign": 5, "text": 3}}
    events = Events(agent.port)
    try:
        assert events.next()[0] == "status"

        pulled = time.monotonic()
        daemon.stop()  # the reader is gone from PC/SC
        assert events.next() == ("card-removed", {"reader": READER})
        assert events.next() == ("reader-lost", {"reader": READER})
        noticed = time.monotonic() - pulled
        assert agent.status() == {
            "reader": False,
            "card": False,
            "tries": {"auth": None, "sign": None, "text": None},
        }
        code, body = agent.call("POST", "/login", {"purpose": "kiosk_login", "pin": "4826"})
        assert (code, body["error"]["code"]) == (409, "no_reader")

        back = time.monotonic()
        daemon.start()  # plugged in again; the card is still in it
        assert events.next() == ("reader-found", {"reader": READER})
        assert events.next() == ("card-inserted", {"reader": READER})
        status = wait_for(
            lambda: (s := agent.status())["tries"]["auth"] is not None and s, what="the card again"
        )
        recovered = time.monotonic() - back
        assert status == {"reader": True, "card": True, "tries": {"auth": 3, "sign": 5, "text": 3}}
    finally:
        events.close()
    print(
        f"\nreader unplugged: the agent reported it in {noticed:.2f}s; "
        f"back and the card readable {recovered:.2f}s after it was plugged in again"
    )
