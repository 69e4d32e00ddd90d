"""Server-side verification of what a card signed (CARD.md, Verifying on the server).

1. the PKCS#1 v1.5 SHA-256 signature with the certificate's key;
2. the chain to a pinned anchor; 3. validity period and key usage; 4. revocation;
5. for a signature certificate, the basic 4 info from its subjectAltName.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from card.models import Basic4
from card.verify.errors import VerificationError
from card.verify.revocation import RevocationChecker
from card.verify.san import basic4_from_certificate
from card.verify.trust import Anchor, TrustStore

MIN_RSA_BITS = 2048


@dataclass(frozen=True, slots=True)
class VerifiedCertificate:
    """What was verified. An auth certificate is keyed by ``(issuer, serial)``; it has no personal data."""

    kind: str  # "auth" (利用者証明用) | "sign" (署名用)
    issuer: str  # RFC 4514
    serial: int
    fingerprint_sha256: str
    not_before: dt.datetime
    not_after: dt.datetime
    basic4: Basic4 | None = None

    @property
    def key(self) -> tuple[str, int]:
        return self.issuer, self.serial


def _parse(cert_der: bytes) -> x509.Certificate:
    try:
        cert = x509.load_der_x509_certificate(bytes(cert_der))
        cert.extensions  # noqa: B018 - force extension parsing now
    except (ValueError, TypeError) as exc:
        raise VerificationError("malformed", "certificate cannot be parsed") from exc
    return cert


def _public_key(cert: x509.Certificate) -> rsa.RSAPublicKey:
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_BITS:
        raise VerificationError("unsupported_algorithm", "JPKI certificates carry RSA-2048 keys")
    return key


def _anchor_for(cert: x509.Certificate, trust: TrustStore) -> Anchor:
    for anchor in trust.issuers_of(cert):
        try:
            cert.verify_directly_issued_by(anchor.certificate)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return anchor
    raise VerificationError("untrusted", "certificate does not chain to a configured anchor")


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage:
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise VerificationError("wrong_key_usage", "certificate has no key usage") from exc
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if bc.ca:
            raise VerificationError("wrong_key_usage", "a CA certificate cannot log in")
    except x509.ExtensionNotFound:
        pass
    return ku


def verify_certificate(
    cert_der: bytes,
    trust: TrustStore,
    revocation: RevocationChecker | None = None,
    at: dt.datetime | None = None,
    *,
    expected_kind: str | None = None,
) -> VerifiedCertificate:
    """Verify a card certificate (chain, validity, key usage, revocation) without a signature."""
    return _verify_cert(_parse(cert_der), bytes(cert_der), trust, revocation, at, expected_kind)


def _verify_cert(
    cert: x509.Certificate,
    cert_der: bytes,
    trust: TrustStore,
    revocation: RevocationChecker | None,
    at: dt.datetime | None,
    expected_kind: str | None,
) -> VerifiedCertificate:
    now = at or dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise ValueError("`at` must be timezone-aware")
    if cert.signature_hash_algorithm is None or cert.signature_hash_algorithm.name != "sha256":
        raise VerificationError("unsupported_algorithm", "expected sha256WithRSAEncryption")
    _public_key(cert)
    anchor = _anchor_for(cert, trust)
    if not anchor.certificate.not_valid_before_utc <= now <= anchor.certificate.not_valid_after_utc:
        raise VerificationError("untrusted", "trust anchor is outside its validity period")
    if now < cert.not_valid_before_utc:
        raise VerificationError("not_yet_valid", "certificate is not yet valid")
    if now > cert.not_valid_after_utc:
        raise VerificationError("expired", "certificate has expired")
    ku = _key_usage(cert)
    basic4 = _basic4(cert)
    kind = anchor.kind or ("sign" if ku.content_commitment else "auth")
    if not ku.digital_signature or (kind == "sign" and not ku.content_commitment):
        raise VerificationError("wrong_key_usage", f"key usage does not allow {kind} signatures")
    if expected_kind is not None and kind != expected_kind:
        raise VerificationError("wrong_kind", f"expected a {expected_kind} certificate")
    if kind == "sign" and basic4 is None:
        raise VerificationError("malformed", "signature certificate lacks the basic 4 info")
    if revocation is not None:
        revocation.check(cert, anchor.certificate, now)
    return VerifiedCertificate(
        kind=kind,
        issuer=cert.issuer.rfc4514_string(),
        serial=cert.serial_number,
        fingerprint_sha256=hashlib.sha256(cert_der).hexdigest(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        basic4=basic4 if kind == "sign" else None,
    )


def _basic4(cert: x509.Certificate) -> Basic4 | None:
    try:
        return basic4_from_certificate(cert)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerificationError("malformed", "subjectAltName basic 4 info unreadable") from exc


def verify_signature(
    cert_der: bytes,
    signature: bytes,
    message: bytes,
    trust: TrustStore,
    revocation: RevocationChecker | None = None,
    at: dt.datetime | None = None,
    *,
    expected_kind: str | None = None,
    prehashed: bool = False,
) -> VerifiedCertificate:
    """Verify ``signature`` (PKCS#1 v1.5, SHA-256) over ``message`` and then the certificate.

    With ``prehashed=True``, ``message`` is the 32-byte SHA-256 digest.
    """
    cert = _parse(cert_der)
    key = _public_key(cert)
    algorithm: hashes.HashAlgorithm | Prehashed = Prehashed(hashes.SHA256()) if prehashed else hashes.SHA256()
    try:
        key.verify(bytes(signature), bytes(message), padding.PKCS1v15(), algorithm)
    except (InvalidSignature, ValueError) as exc:
        raise VerificationError("bad_signature", "signature does not verify") from exc
    return _verify_cert(cert, bytes(cert_der), trust, revocation, at, expected_kind)
