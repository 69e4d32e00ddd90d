"""Pinned trust anchors: the JPKI roots the city configures (never a CA certificate read from a card)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

PEM_MARK = b"-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True)
class Anchor:
    certificate: x509.Certificate
    fingerprint_sha256: str
    kind: str | None  # "auth" / "sign" from the root's OU, None if it says neither


def anchor_kind(cert: x509.Certificate) -> str | None:
    for attr in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME):
        value = str(attr.value).lower()
        if "user authentication" in value:
            return "auth"
        if "digital signature" in value:
            return "sign"
    return None


def _load_many(data: bytes) -> list[x509.Certificate]:
    if PEM_MARK in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


class TrustStore:
    """A fixed list of anchors, looked up by subject name and checked by signature."""

    def __init__(self, certificates: Iterable[x509.Certificate]) -> None:
        self.anchors: list[Anchor] = []
        self._by_subject: dict[bytes, list[Anchor]] = {}
        for cert in certificates:
            fp = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
            anchor = Anchor(cert, fp, anchor_kind(cert))
            self.anchors.append(anchor)
            self._by_subject.setdefault(cert.subject.public_bytes(), []).append(anchor)
        if not self.anchors:
            raise ValueError("a trust store needs at least one anchor")

    @classmethod
    def from_pem_files(cls, paths: Iterable[str | Path]) -> TrustStore:
        certs: list[x509.Certificate] = []
        for path in paths:
            certs.extend(_load_many(Path(path).read_bytes()))
        return cls(certs)

    @classmethod
    def from_dir(cls, directory: str | Path) -> TrustStore:
        """Every ``*.pem``, ``*.crt``, ``*.cer`` and ``*.der`` certificate in ``directory``."""
        d = Path(directory)
        paths = sorted(
            p
            for p in d.iterdir()
            if p.suffix.lower() in (".pem", ".crt", ".cer", ".der")
            and "key" not in p.name
            and "crl" not in p.name
        )
        return cls.from_pem_files(paths)

    def issuers_of(self, cert: x509.Certificate) -> list[Anchor]:
        return self._by_subject.get(cert.issuer.public_bytes(), [])

    def by_name(self, name: x509.Name) -> list[Anchor]:
        return self._by_subject.get(name.public_bytes(), [])

    def __len__(self) -> int:
        return len(self.anchors)
