"""Through real pcscd + vpcd with the virtual card: the same operations a kiosk performs."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from card import errors
from card.pcsc import PcscTransport, ReaderEvent, ReaderMonitor, list_readers
from card.pin import PinKind
from card.session import CardSession
from card.sim import Profile
from card.sim.vpcd import VpcdClient
from card.verify import CrlIndex, TrustStore, verify_signature

from .conftest import EMPTY_READER, READER, ROOT, wait_present

pytestmark = pytest.mark.pcscd


def open_session() -> CardSession:
    return CardSession(PcscTransport(READER))


def test_lists_the_virtual_reader(vpcd_card: VpcdClient) -> None:
    assert READER in list_readers()


def test_read_sign_and_verify(vpcd_card: VpcdClient, profile: Profile) -> None:
    with open_session() as session:
        assert session.read_token() == "JPKIAPICCTOKEN2"
        assert session.transport.atr == bytes.fromhex("3BE000FF8131FE4514")
        cert = session.read_auth_certificate()
        assert cert == profile.certificate("auth")
        signature = session.sign_auth(b"server-challenge", "1234")
        sign_cert = session.read_sign_certificate("TEST1234")
        sign_sig = session.sign_sign(b"form", "TEST1234")
    trust = TrustStore.from_dir(profile.pki_dir)
    crl = CrlIndex([profile.pki_dir / "auth_crl.der", profile.pki_dir / "sign_crl.der"], trust)
    assert verify_signature(cert, signature, b"server-challenge", trust, crl).serial == profile.auth_serial
    assert verify_signature(sign_cert, sign_sig, b"form", trust, crl).kind == "sign"


def test_extended_length_through_pcscd(vpcd_card: VpcdClient, profile: Profile) -> None:
    with CardSession(PcscTransport(READER), extended_length=True) as session:
        assert session.read_auth_certificate() == profile.certificate("auth")


def test_wrong_pin_last_try_and_blocked(vpcd_card: VpcdClient) -> None:
    with open_session() as session:
        with pytest.raises(errors.WrongPinError) as info:
            session.sign_auth(b"x", "0000")
        assert info.value.tries_left == 2
        with pytest.raises(errors.WrongPinError):
            session.verify_pin(PinKind.AUTH, "0001")
        with pytest.raises(errors.LastTryRefusedError):
            session.verify_pin(PinKind.AUTH, "0002")
        assert session.pin_tries_left(PinKind.AUTH) == 1
        with pytest.raises(errors.PinBlockedError):
            session.verify_pin(PinKind.AUTH, "0002", allow_last_try=True)
        with pytest.raises(errors.PinBlockedError):
            session.sign_auth(b"x", "1234", allow_last_try=True)
        assert session.pin_tries_left(PinKind.SIGN) == 5


def test_text_ap_through_pcscd(vpcd_card: VpcdClient, profile: Profile) -> None:
    with open_session() as session:
        number, basic4 = session.read_text_ap("1234")
    assert number.reveal() == profile.my_number
    assert basic4 == profile.basic4


def test_card_removed_mid_read(vpcd_card: VpcdClient) -> None:
    reads = 0

    def pull_on_third_read(apdu: bytes) -> None:
        nonlocal reads
        if apdu[1] == 0xB0:
            reads += 1
            if reads == 3:
                vpcd_card.remove()

    session = open_session()
    vpcd_card.on_apdu = pull_on_third_read
    try:
        with pytest.raises(errors.CardRemovedError):
            session.read_auth_certificate()
    finally:
        session.close()
        vpcd_card.on_apdu = None
    vpcd_card.insert()
    wait_present(READER, True)
    with open_session() as session:
        assert session.read_token() == "JPKIAPICCTOKEN2"


def test_no_card_and_no_reader(vpcd_lock: None) -> None:
    with pytest.raises(errors.NoCardError):
        PcscTransport(EMPTY_READER)
    with pytest.raises(errors.NoReaderError):
        PcscTransport("No Such Reader 00 00")


def test_monitor_sees_insert_and_remove(vpcd_lock: None, profile: Profile) -> None:
    from card.sim import VirtualCard

    events: list[ReaderEvent] = []
    seen = threading.Condition()

    def record(event: ReaderEvent) -> None:
        with seen:
            events.append(event)
            seen.notify_all()

    def wait_for(kind: str) -> None:
        with seen:
            assert seen.wait_for(lambda: any(e.kind == kind and e.reader == READER for e in events), 10)

    with ReaderMonitor(record, poll_ms=50) as monitor:
        client = VpcdClient(VirtualCard.from_profile(profile.directory)).start()
        try:
            wait_for("inserted")
            client.remove()
            wait_for("removed")
        finally:
            client.stop()
    assert not monitor._thread.is_alive()
    wait_present(READER, False)


def test_serve_cli_remove_and_insert(vpcd_lock: None, profile: Profile) -> None:
    command = [sys.executable, "-m", "card.sim", "serve", str(profile.directory), "--no-persist"]
    with subprocess.Popen(
        command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None

        def say(line: str) -> None:
            assert proc.stdin is not None
            proc.stdin.write(line + "\n")
            proc.stdin.flush()

        try:
            assert "serving" in proc.stdout.readline()
            wait_present(READER, True)
            say("remove")
            assert proc.stdout.readline().strip() == "ok remove"
            wait_present(READER, False)
            say("insert")
            wait_present(READER, True)
            with open_session() as session:
                assert session.read_token() == "JPKIAPICCTOKEN2"
            say("quit")
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    wait_present(READER, False)
