"""The high-level session on the in-memory virtual card: reads, PINs, signatures, text AP."""

from __future__ import annotations

import logging

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from card import errors
from card.jpki import CertKind
from card.pin import PinKind
from card.session import CardSession
from card.sim import Profile, VirtualCard
from card.transport import PinMaskingTracer, SimTransport

from .conftest import ADDRESS, NAME, TEST_NUMBER


def _verify(cert_der: bytes, signature: bytes, message: bytes) -> None:
    key = x509.load_der_x509_certificate(cert_der).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())


def test_detects_card_and_reads_token(session: CardSession) -> None:
    assert session.read_token() == "JPKIAPICCTOKEN2"


def test_reads_certificates(session: CardSession, profile: Profile) -> None:
    assert session.read_auth_certificate() == profile.certificate("auth")
    ca = x509.load_der_x509_certificate(session.read_auth_ca_certificate())
    assert ca.subject == profile.pki.root("auth").subject
    assert session.read_sign_ca_certificate() == session.read_certificate(CertKind.SIGN_CA)


def test_extended_length_read(card: VirtualCard, profile: Profile) -> None:
    transport = SimTransport(card)
    tracer = PinMaskingTracer()
    transport.add_observer(tracer)
    session = CardSession(transport, extended_length=True)
    assert session.read_auth_certificate() == profile.certificate("auth")
    assert sum(" 00 B0 " in f" {line[2:]}" for line in tracer.lines) == 2  # header + one read


def test_sign_certificate_needs_its_pin(session: CardSession, profile: Profile) -> None:
    with pytest.raises(ValueError, match="PIN"):
        session.read_certificate(CertKind.SIGN)
    assert session.read_sign_certificate("test1234") == profile.certificate("sign")


def test_sign_auth_verifies(session: CardSession) -> None:
    signature = session.sign_auth(b"challenge-123", "1234")
    _verify(session.read_auth_certificate(), signature, b"challenge-123")


def test_sign_prehashed(session: CardSession) -> None:
    import hashlib

    digest = hashlib.sha256(b"document").digest()
    signature = session.sign_sign(digest, "TEST1234", prehashed=True)
    _verify(session.read_sign_certificate("TEST1234"), signature, b"document")


def test_signature_key_needs_a_pin_per_signature(session: CardSession, card: VirtualCard) -> None:
    session.sign_sign(b"one", "TEST1234")
    # the card dropped the signature PIN's security status after one signature
    from card import iso

    iso.select_ef(session.transport, 0x001A)
    with pytest.raises(errors.PinRequiredError):
        from card.jpki import compute_signature, digest_info_sha256

        compute_signature(session.transport, digest_info_sha256(b"two"))


def test_tries_left_for_every_pin(session: CardSession) -> None:
    assert [(s.kind, s.tries_left, s.max_tries) for s in session.pin_status()] == [
        ("auth", 3, 3),
        ("sign", 5, 5),
        ("text", 3, 3),
    ]


def test_wrong_pin_counts_down_and_correct_pin_resets(session: CardSession) -> None:
    with pytest.raises(errors.WrongPinError) as info:
        session.sign_auth(b"x", "9999")
    assert info.value.tries_left == 2
    assert session.pin_tries_left(PinKind.AUTH) == 2
    session.verify_pin(PinKind.AUTH, "1234")
    assert session.pin_tries_left(PinKind.AUTH) == 3


def test_last_try_is_refused_unless_allowed(session: CardSession) -> None:
    for left in (2, 1):
        with pytest.raises(errors.WrongPinError) as info:
            session.verify_pin(PinKind.AUTH, "0000")
        assert info.value.tries_left == left
    with pytest.raises(errors.LastTryRefusedError):
        session.sign_auth(b"x", "1234")
    assert session.pin_tries_left(PinKind.AUTH) == 1  # nothing was sent
    assert session.sign_auth(b"x", "1234", allow_last_try=True)
    assert session.pin_tries_left(PinKind.AUTH) == 3


def test_blocked_pin(session: CardSession) -> None:
    for _ in range(2):
        with pytest.raises(errors.WrongPinError):
            session.verify_pin(PinKind.AUTH, "0000")
    with pytest.raises(errors.PinBlockedError):  # 63 C0 on the last wrong try means blocked
        session.verify_pin(PinKind.AUTH, "0000", allow_last_try=True)
    with pytest.raises(errors.PinBlockedError):
        session.verify_pin(PinKind.AUTH, "1234", allow_last_try=True)
    assert session.pin_tries_left(PinKind.AUTH) == 0


@pytest.mark.parametrize(
    ("kind", "pin"),
    [
        (PinKind.AUTH, "123"),
        (PinKind.AUTH, "12345"),
        (PinKind.AUTH, "12a4"),
        (PinKind.AUTH, "１２３４"),
        (PinKind.SIGN, "ABCDEF"),
        (PinKind.SIGN, "123456"),
        (PinKind.SIGN, "AB12"),
        (PinKind.SIGN, "A" * 16 + "1"),
        (PinKind.SIGN, "ABC-123"),
        (PinKind.TEXT, ""),
    ],
)
def test_malformed_pin_never_costs_a_try(
    session: CardSession, card: VirtualCard, kind: PinKind, pin: str
) -> None:
    before = card.apdu_count
    with pytest.raises(errors.PinFormatError) as info:
        session.verify_pin(kind, pin)
    assert card.apdu_count == before
    assert pin not in str(info.value) or not pin


def test_signature_pin_is_upper_cased(session: CardSession) -> None:
    session.verify_pin(PinKind.SIGN, "test1234")


def test_text_ap(session: CardSession, tracer: PinMaskingTracer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    number, basic4 = session.read_text_ap("1234")
    assert number.reveal() == TEST_NUMBER
    assert (basic4.name, basic4.address, basic4.birth_date, basic4.sex) == (NAME, ADDRESS, "19900215", "2")
    logged = caplog.text + "\n".join(tracer.lines)
    assert TEST_NUMBER not in logged
    assert TEST_NUMBER.encode().hex(" ").upper() not in logged
    assert "31 32 33 34" not in logged  # the PIN "1234" in hex
    assert NAME.encode().hex(" ").upper()[:20] not in logged


def test_text_ap_wrong_pin(session: CardSession) -> None:
    with pytest.raises(errors.WrongPinError) as info:
        session.read_text_ap("4321")
    assert info.value.tries_left == 2
    assert "4321" not in str(info.value)


def test_long_form_basic4(tmp_path, pki_dir) -> None:  # type: ignore[no-untyped-def]
    from card.sim import make_profile

    long_address = "北海道" + "テスト町" * 40
    p = make_profile(tmp_path, address=long_address, pki_dir=pki_dir)
    session = CardSession(SimTransport(VirtualCard.from_profile(p.directory)))
    assert session.read_basic4("1234").address == long_address


def test_not_an_individual_number_card() -> None:
    with pytest.raises(errors.NotIndividualNumberCardError):
        CardSession(SimTransport(VirtualCard([])))


def test_card_removed(session: CardSession, card: VirtualCard) -> None:
    card.remove()
    with pytest.raises(errors.CardRemovedError):
        session.read_auth_certificate()
    card.insert()
    session.detect()
    assert session.read_token() == "JPKIAPICCTOKEN2"


def test_card_removed_mid_read(session: CardSession, card: VirtualCard) -> None:
    reads = 0

    def pull_after_two_reads(command: bytes, response: bytes) -> bytes:
        nonlocal reads
        if command[1] == 0xB0:
            reads += 1
            if reads == 2:
                card.remove()
        return response

    card.fault = pull_after_two_reads
    with pytest.raises(errors.CardRemovedError):
        session.read_auth_certificate()


def test_pin_state_lost_on_reset(session: CardSession, card: VirtualCard) -> None:
    session.verify_pin(PinKind.SIGN, "TEST1234")
    card.power_off()
    session.detect()
    from card import iso

    iso.select_ef(session.transport, 0x0001)
    with pytest.raises(errors.PinRequiredError):
        iso.read_binary(session.transport, 0, 4)


def test_persisted_counters(tmp_path, pki_dir) -> None:  # type: ignore[no-untyped-def]
    from card.sim import make_profile

    p = make_profile(tmp_path, pki_dir=pki_dir)
    s1 = CardSession(SimTransport(VirtualCard.from_profile(p.directory, persist=True)))
    with pytest.raises(errors.WrongPinError):
        s1.verify_pin(PinKind.AUTH, "0000")
    s2 = CardSession(SimTransport(VirtualCard.from_profile(p.directory, persist=True)))
    assert s2.pin_tries_left(PinKind.AUTH) == 2
