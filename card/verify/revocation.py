"""Revocation (失効) sources: a large CRL loaded once into a serial index, and a pluggable OCSP client.

In production the revocation source is the city's contracted platform; anything with
``check(cert, issuer, at)`` that raises :class:`VerificationError` can stand in.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp

from card.verify.errors import VerificationError
from card.verify.trust import TrustStore

log = logging.getLogger("card.verify.revocation")


class RevocationChecker(Protocol):
    def check(self, cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime) -> None:
        """Return if ``cert`` is good at ``at``; raise ``VerificationError('revoked'|…)``."""


@dataclass(frozen=True)
class CrlSnapshot:
    issuer: bytes  # DER of the issuer Name
    serials: frozenset[int]
    this_update: dt.datetime
    next_update: dt.datetime | None
    source: str
    mtime: float


def load_crl(data: bytes, trust: TrustStore, source: str = "", mtime: float = 0.0) -> CrlSnapshot:
    """Parse a DER or PEM CRL, check its signature against a pinned anchor, index its serials."""
    try:
        crl = (
            x509.load_pem_x509_crl(data)
            if data.lstrip().startswith(b"-----")
            else x509.load_der_x509_crl(data)
        )
    except ValueError as exc:
        raise VerificationError("malformed", "CRL cannot be parsed") from exc
    anchors = trust.by_name(crl.issuer)
    if not any(crl.is_signature_valid(_rsa_key(a.certificate)) for a in anchors):
        raise VerificationError("untrusted", "CRL is not signed by a trust anchor")
    return CrlSnapshot(
        issuer=crl.issuer.public_bytes(),
        serials=frozenset(r.serial_number for r in crl),
        this_update=crl.last_update_utc,
        next_update=crl.next_update_utc,
        source=source,
        mtime=mtime,
    )


def _rsa_key(cert: x509.Certificate) -> rsa.RSAPublicKey:
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise VerificationError("unsupported_algorithm", "only RSA keys are used by JPKI")
    return key


class CrlIndex:
    """CRLs (one per issuer) held as serial sets; checks are a set lookup.

    ``refresh()`` reloads files that changed; with ``refresh_interval`` set, a check that finds the
    index older than the interval starts a background reload and keeps answering from the old one.
    A CRL past its nextUpdate fails closed (``revocation_unknown``) unless ``allow_stale``.
    """

    def __init__(
        self,
        paths: Iterable[str | Path],
        trust: TrustStore,
        *,
        refresh_interval: float | None = None,
        allow_stale: bool = False,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.trust = trust
        self.refresh_interval = refresh_interval
        self.allow_stale = allow_stale
        self._by_issuer: dict[bytes, CrlSnapshot] = {}
        self._loaded_at = 0.0
        self._lock = threading.Lock()
        self._reloading: threading.Thread | None = None
        self.refresh(force=True)

    def refresh(self, *, force: bool = False) -> int:
        """Reload CRL files whose mtime changed (all with ``force``); returns how many were loaded."""
        with self._lock:
            current = dict(self._by_issuer)
            by_source = {s.source: s for s in current.values()}
        loaded = 0
        for path in self.paths:
            mtime = path.stat().st_mtime
            old = by_source.get(str(path))
            if not force and old is not None and old.mtime == mtime:
                continue
            snapshot = load_crl(path.read_bytes(), self.trust, str(path), mtime)
            current[snapshot.issuer] = snapshot
            loaded += 1
        with self._lock:
            self._by_issuer = current  # atomic swap: checks never see a half-built index
            self._loaded_at = time.monotonic()
        return loaded

    def _maybe_refresh(self) -> None:
        if self.refresh_interval is None:
            return
        if time.monotonic() - self._loaded_at < self.refresh_interval:
            return
        with self._lock:
            if self._reloading is not None and self._reloading.is_alive():
                return
            self._reloading = threading.Thread(target=self._background_refresh, daemon=True)
            self._reloading.start()

    def _background_refresh(self) -> None:
        try:
            self.refresh()
        except Exception:  # keep serving from the old index; the next check retries
            log.exception("CRL refresh failed")
            self._loaded_at = time.monotonic()

    def snapshot(self, issuer: x509.Name) -> CrlSnapshot | None:
        return self._by_issuer.get(issuer.public_bytes())

    def __len__(self) -> int:
        return sum(len(s.serials) for s in self._by_issuer.values())

    def check(self, cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime) -> None:
        self._maybe_refresh()
        snapshot = self._by_issuer.get(cert.issuer.public_bytes())
        if snapshot is None:
            raise VerificationError("revocation_unknown", "no CRL for this issuer")
        if cert.serial_number in snapshot.serials:
            raise VerificationError("revoked", "certificate is revoked")
        if not self.allow_stale and snapshot.next_update is not None and at > snapshot.next_update:
            raise VerificationError("revocation_unknown", "CRL is past its next update")


# -- OCSP -----------------------------------------------------------------------------------
OcspPost = Callable[[bytes], bytes]
"""Sends a DER OCSP request to the responder and returns the DER response (HTTP is the caller's)."""


class OcspChecker:
    """Asks an OCSP responder (e.g. the city's platform) through a pluggable ``post`` function.

    The response must be signed by the issuer itself or by a responder certificate the issuer
    issued with the OCSPSigning extended key usage.
    """

    def __init__(self, post: OcspPost, *, max_age: dt.timedelta = dt.timedelta(days=1)) -> None:
        self.post = post
        self.max_age = max_age

    def check(self, cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime) -> None:
        # CertID uses SHA-1 as responders expect (RFC 5019); it is an identifier, not a signature
        cert_id_hash = hashes.SHA1()  # noqa: S303
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, cert_id_hash).build()
        try:
            raw = self.post(request.public_bytes(serialization.Encoding.DER))
            response = ocsp.load_der_ocsp_response(raw)
        except VerificationError:
            raise
        except Exception as exc:  # network or parse failure: fail closed
            raise VerificationError("revocation_unknown", "OCSP responder unavailable") from exc
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise VerificationError("revocation_unknown", "OCSP responder refused")
        self._check_signer(response, issuer)
        if response.serial_number != cert.serial_number:
            raise VerificationError("revocation_unknown", "OCSP answer is for another certificate")
        if response.this_update_utc > at + dt.timedelta(minutes=5) or (
            (response.next_update_utc or response.this_update_utc + self.max_age) < at
        ):
            raise VerificationError("revocation_unknown", "OCSP answer is not current")
        if response.certificate_status == ocsp.OCSPCertStatus.REVOKED:
            raise VerificationError("revoked", "certificate is revoked (OCSP)")
        if response.certificate_status != ocsp.OCSPCertStatus.GOOD:
            raise VerificationError("revocation_unknown", "OCSP status unknown")

    @staticmethod
    def _check_signer(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> None:
        signer = issuer
        for candidate in response.certificates:
            if candidate.subject != issuer.subject:
                try:
                    candidate.verify_directly_issued_by(issuer)
                    eku = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
                except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
                    continue
                if x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING in eku.value:
                    signer = candidate
        try:
            _rsa_key(signer).verify(
                response.signature, response.tbs_response_bytes, padding.PKCS1v15(), _hash_of(response)
            )
        except InvalidSignature as exc:
            raise VerificationError("revocation_unknown", "OCSP answer signature invalid") from exc


def _hash_of(response: ocsp.OCSPResponse) -> hashes.HashAlgorithm:
    algorithm = response.signature_hash_algorithm
    if algorithm is None:
        raise VerificationError("unsupported_algorithm", "OCSP signature algorithm")
    return algorithm


class AllOf:
    """Run several checkers (e.g. CRL then OCSP); the first failure wins."""

    def __init__(self, *checkers: RevocationChecker) -> None:
        self.checkers = checkers

    def check(self, cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime) -> None:
        for checker in self.checkers:
            checker.check(cert, issuer, at)
