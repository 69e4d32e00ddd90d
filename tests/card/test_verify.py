"""Server-side verification: signature, pinned chain, validity, key usage, CRL and OCSP."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp

from card.session import CardSession
from card.sim import Profile
from card.sim.pki import TestPki
from card.verify import (
    AllOf,
    CrlIndex,
    OcspChecker,
    TrustStore,
    VerificationError,
    load_crl,
    verify_certificate,
    verify_signature,
)

from .conftest import ADDRESS, NAME

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def card_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def trust(pki_dir: Path) -> TrustStore:
    return TrustStore.from_dir(pki_dir)


@pytest.fixture
def crl(pki_dir: Path, trust: TrustStore, profile: Profile) -> CrlIndex:
    return CrlIndex([pki_dir / "auth_crl.der", pki_dir / "sign_crl.der"], trust)


def issue(pki_dir: Path, key: rsa.RSAPrivateKey, kind: str = "auth", **kw: object) -> bytes:
    from card.models import Basic4

    basic4 = Basic4("n", "a", "20000101", "1") if kind == "sign" else None
    cert = TestPki.open(pki_dir).issue(kind, key.public_key(), basic4=basic4, **kw)  # type: ignore[arg-type]
    return cert.public_bytes(serialization.Encoding.DER)


def sign(key: rsa.RSAPrivateKey, message: bytes) -> bytes:
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def reason(func: Callable[[], object]) -> str:
    with pytest.raises(VerificationError) as info:
        func()
    return info.value.reason


def test_auth_signature_from_the_card(
    session: CardSession, trust: TrustStore, crl: CrlIndex, profile: Profile
) -> None:
    cert = session.read_auth_certificate()
    result = verify_signature(cert, session.sign_auth(b"nonce", "1234"), b"nonce", trust, crl)
    assert result.kind == "auth"
    assert result.serial == profile.auth_serial
    assert result.basic4 is None
    assert "JPKI for user authentication" in result.issuer
    assert result.not_after > NOW > result.not_before
    assert len(result.fingerprint_sha256) == 64
    assert result.key == (result.issuer, result.serial)


def test_sign_certificate_carries_basic4(session: CardSession, trust: TrustStore, crl: CrlIndex) -> None:
    cert = session.read_sign_certificate("TEST1234")
    result = verify_signature(
        cert, session.sign_sign(b"doc", "TEST1234"), b"doc", trust, crl, expected_kind="sign"
    )
    assert result.kind == "sign"
    assert result.basic4 is not None
    assert (result.basic4.name, result.basic4.address, result.basic4.birth_date) == (
        NAME,
        ADDRESS,
        "19900215",
    )


def test_bad_signature(pki_dir: Path, card_key: rsa.RSAPrivateKey, trust: TrustStore) -> None:
    cert = issue(pki_dir, card_key)
    assert reason(lambda: verify_signature(cert, sign(card_key, b"a"), b"b", trust)) == "bad_signature"
    assert reason(lambda: verify_signature(cert, b"\x00" * 7, b"b", trust)) == "bad_signature"


def test_untrusted_other_root(tmp_path: Path, card_key: rsa.RSAPrivateKey, trust: TrustStore) -> None:
    cert = issue(tmp_path / "other", card_key)
    assert reason(lambda: verify_signature(cert, sign(card_key, b"m"), b"m", trust)) == "untrusted"


def test_card_ca_is_never_trusted(session: CardSession, trust: TrustStore, tmp_path: Path) -> None:
    # a trust store built only from what the card says must still be configured explicitly
    other = TrustStore.from_dir(TestPki.open(tmp_path / "x").directory)
    cert = session.read_auth_certificate()
    assert reason(lambda: verify_certificate(cert, other)) == "untrusted"


def test_expired_and_not_yet_valid(pki_dir: Path, card_key: rsa.RSAPrivateKey, trust: TrustStore) -> None:
    old = issue(pki_dir, card_key, not_before=NOW - dt.timedelta(days=800), days=365)
    assert reason(lambda: verify_certificate(old, trust)) == "expired"
    fresh = issue(pki_dir, card_key)
    assert reason(lambda: verify_certificate(fresh, trust, at=NOW - dt.timedelta(days=30))) == "not_yet_valid"


def test_key_usage_and_kind(pki_dir: Path, card_key: rsa.RSAPrivateKey, trust: TrustStore) -> None:
    no_nonrepudiation = issue(pki_dir, card_key, kind="sign", key_usage="auth")
    assert reason(lambda: verify_certificate(no_nonrepudiation, trust)) == "wrong_key_usage"
    auth = issue(pki_dir, card_key)
    assert reason(lambda: verify_certificate(auth, trust, expected_kind="sign")) == "wrong_kind"


def test_malformed(trust: TrustStore) -> None:
    assert reason(lambda: verify_certificate(b"\x30\x03\x02\x01\x01", trust)) == "malformed"
    assert reason(lambda: verify_signature(b"garbage", b"", b"", trust)) == "malformed"


def test_revoked_by_crl_and_refresh(pki_dir: Path, card_key: rsa.RSAPrivateKey, trust: TrustStore) -> None:
    cert_der = issue(pki_dir, card_key)
    cert = x509.load_der_x509_certificate(cert_der)
    index = CrlIndex([pki_dir / "auth_crl.der"], trust)
    verify_certificate(cert_der, trust, index)
    TestPki.open(pki_dir).revoke("auth", cert.serial_number)
    assert index.refresh() == 1
    assert reason(lambda: verify_certificate(cert_der, trust, index)) == "revoked"


def test_background_refresh_on_schedule(
    pki_dir: Path, card_key: rsa.RSAPrivateKey, trust: TrustStore
) -> None:
    import time

    cert_der = issue(pki_dir, card_key)
    index = CrlIndex([pki_dir / "auth_crl.der"], trust, refresh_interval=0.0)
    TestPki.open(pki_dir).revoke("auth", x509.load_der_x509_certificate(cert_der).serial_number)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            verify_certificate(cert_der, trust, index)
        except VerificationError as exc:
            assert exc.reason == "revoked"
            return
        time.sleep(0.05)
    pytest.fail("scheduled refresh never picked up the new CRL")


def test_stale_or_missing_crl_fails_closed(
    pki_dir: Path, card_key: rsa.RSAPrivateKey, trust: TrustStore
) -> None:
    cert = issue(pki_dir, card_key)
    later = NOW + dt.timedelta(days=3)
    index = CrlIndex([pki_dir / "auth_crl.der"], trust)
    assert reason(lambda: verify_certificate(cert, trust, index, at=later)) == "revocation_unknown"
    verify_certificate(cert, trust, CrlIndex([pki_dir / "auth_crl.der"], trust, allow_stale=True), at=later)
    only_sign = CrlIndex([pki_dir / "sign_crl.der"], trust)
    assert reason(lambda: verify_certificate(cert, trust, only_sign)) == "revocation_unknown"


def test_crl_from_an_untrusted_issuer_is_refused(tmp_path: Path, trust: TrustStore) -> None:
    other = TestPki.open(tmp_path / "other")
    assert reason(lambda: load_crl(other.crl_path("auth").read_bytes(), trust)) == "untrusted"
    assert reason(lambda: load_crl(b"not a crl", trust)) == "malformed"


def test_trust_store_from_pem_files(pki_dir: Path) -> None:
    store = TrustStore.from_pem_files([pki_dir / "auth_root.pem", pki_dir / "sign_root.pem"])
    assert {a.kind for a in store.anchors} == {"auth", "sign"}
    with pytest.raises(ValueError, match="anchor"):
        TrustStore([])


# -- OCSP ------------------------------------------------------------------------------------
def responder(
    pki_dir: Path,
    status: ocsp.OCSPCertStatus,
    *,
    signer: rsa.RSAPrivateKey | None = None,
) -> Callable[[bytes], bytes]:
    pki = TestPki.open(pki_dir)

    def post(request_der: bytes) -> bytes:
        request = ocsp.load_der_ocsp_request(request_der)
        # a real responder looks the certificate up by serial; any certificate with it will do
        cert = pki.issue("auth", pki.root_key("auth").public_key(), serial=request.serial_number)
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=cert,
                issuer=pki.root("auth"),
                algorithm=hashes.SHA1(),  # noqa: S303 - OCSP CertID
                cert_status=status,
                this_update=NOW - dt.timedelta(minutes=1),
                next_update=NOW + dt.timedelta(hours=1),
                revocation_time=NOW - dt.timedelta(hours=1)
                if status == ocsp.OCSPCertStatus.REVOKED
                else None,
                revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, pki.root("auth"))
        )
        response = builder.sign(signer or pki.root_key("auth"), hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)

    return post


def test_ocsp_good_revoked_and_failures(
    pki_dir: Path, card_key: rsa.RSAPrivateKey, trust: TrustStore, crl: CrlIndex
) -> None:
    cert = issue(pki_dir, card_key)
    verify_certificate(cert, trust, OcspChecker(responder(pki_dir, ocsp.OCSPCertStatus.GOOD)))
    verify_certificate(cert, trust, AllOf(crl, OcspChecker(responder(pki_dir, ocsp.OCSPCertStatus.GOOD))))
    revoked = OcspChecker(responder(pki_dir, ocsp.OCSPCertStatus.REVOKED))
    assert reason(lambda: verify_certificate(cert, trust, revoked)) == "revoked"
    forged = OcspChecker(responder(pki_dir, ocsp.OCSPCertStatus.GOOD, signer=card_key))
    assert reason(lambda: verify_certificate(cert, trust, forged)) == "revocation_unknown"

    def down(_: bytes) -> bytes:
        raise ConnectionError("platform unreachable")

    assert reason(lambda: verify_certificate(cert, trust, OcspChecker(down))) == "revocation_unknown"
