"""Card test fixtures: a shared test PKI, profiles, in-memory cards, and pcscd + vpcd.

pcscd-bound tests carry ``@pytest.mark.pcscd`` and the xdist group ``pcscd`` (run with
``-n 2 --dist loadgroup``), and hold a file lock too, because pcscd has only two vpcd slots.
They skip when pcscd is genuinely absent, except under ``CI`` where that is a failure.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from card.session import CardSession
from card.sim import Profile, VirtualCard, make_profile
from card.sim.vpcd import VpcdClient
from card.transport import PinMaskingTracer, SimTransport

ROOT = Path(__file__).resolve().parents[2]
READER = "Virtual PCD 00 00"
EMPTY_READER = "Virtual PCD 00 01"
LOCK_PATH = Path(os.environ.get("TMPDIR", "/tmp")) / "card-tests-vpcd.lock"

# fake, with valid check digits: never a real person's number
TEST_NUMBER = "999912345677"
NAME, ADDRESS = "試験 花子", "東京都千代田区霞が関一丁目1番1号 テスト住宅101号"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("pcscd"):
            item.add_marker(pytest.mark.xdist_group("pcscd"))


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pki")


@pytest.fixture(scope="session")
def profile(tmp_path_factory: pytest.TempPathFactory, pki_dir: Path) -> Profile:
    return make_profile(
        tmp_path_factory.mktemp("card"),
        name=NAME,
        kana="シケン ハナコ",
        address=ADDRESS,
        birth="19900215",
        sex="2",
        auth_pin="1234",
        sign_pin="TEST1234",
        my_number=TEST_NUMBER,
        pki_dir=pki_dir,
        city_records={1: "L-000123"},
    )


@pytest.fixture
def card(profile: Profile) -> VirtualCard:
    """A fresh in-memory card (PIN counters full) for each test."""
    return VirtualCard.from_profile(profile.directory)


@pytest.fixture
def tracer() -> PinMaskingTracer:
    return PinMaskingTracer()


@pytest.fixture
def session(card: VirtualCard, tracer: PinMaskingTracer) -> CardSession:
    transport = SimTransport(card)
    transport.add_observer(tracer)
    return CardSession(transport)


# -- pcscd -----------------------------------------------------------------------------------
def _pcscd_available() -> bool:
    return shutil.which("pcscd") is not None and Path("/etc/reader.conf.d/vpcd").exists()


@pytest.fixture(scope="session")
def pcscd() -> None:
    if not _pcscd_available():
        if os.environ.get("CI"):
            pytest.fail("pcscd with the vpcd driver is required under CI")
        pytest.skip("pcscd / vsmartcard-vpcd not installed")
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "pcscd.sh")], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/pcscd.sh failed: {result.stderr.strip()}")


def wait_present(reader: str, present: bool, timeout: float = 10.0) -> None:
    from card.pcsc import card_present

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if card_present(reader) == present:
            return
        time.sleep(0.05)
    raise AssertionError(f"card did not become {'present' if present else 'absent'} in {reader}")


@pytest.fixture
def vpcd_lock(pcscd: None) -> Iterator[None]:
    with LOCK_PATH.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.fixture
def vpcd_card(vpcd_lock: None, card: VirtualCard) -> Iterator[VpcdClient]:
    """The virtual card inserted into "Virtual PCD 00 00" through pcscd, for one test."""
    client = VpcdClient(card).start()
    try:
        assert client.wait_connected(10), "vpcd did not accept the card"
        wait_present(READER, True)
        yield client
    finally:
        client.stop()
        wait_present(READER, False)
