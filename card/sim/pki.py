"""A test JPKI: an auth root and a signature root (RSA-2048, sha256WithRSA), CRLs, card certificates.

Root keys are cached in the PKI directory, so many test cards can share one test root and making a
profile costs only the card's two key pairs.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from card.models import Basic4
from card.sim.keys import load_key

OID_NAME = "1.2.392.200149.8.5.5.1"
OID_NAME_SUBST = "1.2.392.200149.8.5.5.2"
OID_SEX = "1.2.392.200149.8.5.5.3"
OID_BIRTH = "1.2.392.200149.8.5.5.4"
OID_ADDRESS = "1.2.392.200149.8.5.5.5"
OID_ADDRESS_SUBST = "1.2.392.200149.8.5.5.6"

ROOT_OU = {"auth": "JPKI for user authentication", "sign": "JPKI for digital signature"}
TEST_AGENCY = "TEST Agency for Local Authority Information Systems"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _root_name(kind: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "JPKI"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ROOT_OU[kind]),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, TEST_AGENCY),
        ]
    )


def _der_utf8(text: str) -> bytes:
    raw = text.encode("utf-8")
    length = bytes((len(raw),)) if len(raw) < 0x80 else b"\x82" + len(raw).to_bytes(2, "big")
    return b"\x0c" + length + raw


@dataclass
class TestPki:
    """The roots, keys and CRLs in one directory (``auth_root.pem``, ``sign_crl.der``, …)."""

    __test__ = False  # not a pytest class

    directory: Path

    @classmethod
    def open(cls, directory: str | Path) -> TestPki:
        pki = cls(Path(directory))
        pki.directory.mkdir(parents=True, exist_ok=True)
        for kind in ("auth", "sign"):
            if not (pki.directory / f"{kind}_root.pem").exists():
                pki._make_root(kind)
        return pki

    def _make_root(self, kind: str) -> None:
        key = new_key()
        name = _root_name(kind)
        now = _utcnow()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=3 * 365))  # old enough for back-dated tests
            .not_valid_after(now + dt.timedelta(days=10 * 365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        (self.directory / f"{kind}_root_key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (self.directory / f"{kind}_root.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.write_crl(kind)

    def city_key(self) -> bytes:
        """The city's AES-128 issuer key for the city application (test key, made once)."""
        path = self.directory / "city_key.hex"
        if not path.exists():
            path.write_text(secrets.token_hex(16))
        return bytes.fromhex(path.read_text().strip())

    def root(self, kind: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.directory / f"{kind}_root.pem").read_bytes())

    def root_key(self, kind: str) -> rsa.RSAPrivateKey:
        return load_key(self.directory / f"{kind}_root_key.pem")

    def root_paths(self) -> list[Path]:
        return [self.directory / "auth_root.pem", self.directory / "sign_root.pem"]

    def crl_path(self, kind: str) -> Path:
        return self.directory / f"{kind}_crl.der"

    # -- revocation --------------------------------------------------------------------------
    def _revoked_path(self, kind: str) -> Path:
        return self.directory / f"{kind}_revoked.json"

    def revoked(self, kind: str) -> list[int]:
        path = self._revoked_path(kind)
        return json.loads(path.read_text()) if path.exists() else []

    def revoke(self, kind: str, serial: int) -> None:
        """Revoke a card certificate and reissue that root's CRL (失効)."""
        serials = sorted(set(self.revoked(kind)) | {serial})
        self._revoked_path(kind).write_text(json.dumps(serials))
        self.write_crl(kind)

    def write_crl(self, kind: str, *, next_update_days: int = 1) -> None:
        now = _utcnow()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(_root_name(kind))
            .last_update(now - dt.timedelta(minutes=1))
            .next_update(now + dt.timedelta(days=next_update_days))
        )
        for serial in self.revoked(kind):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(now - dt.timedelta(minutes=1))
                .build()
            )
        crl = builder.sign(self.root_key(kind), hashes.SHA256())
        self.crl_path(kind).write_bytes(crl.public_bytes(serialization.Encoding.DER))

    # -- card certificates -------------------------------------------------------------------
    def issue(
        self,
        kind: str,
        public_key: rsa.RSAPublicKey,
        *,
        basic4: Basic4 | None = None,
        not_before: dt.datetime | None = None,
        days: int = 365 * 5,
        serial: int | None = None,
        key_usage: str | None = None,
    ) -> x509.Certificate:
        """Issue a card certificate: ``auth`` (no personal data) or ``sign`` (basic 4 in SAN)."""
        start = not_before or (_utcnow() - dt.timedelta(days=1))
        serial = serial or secrets.randbits(40) | 1 << 39
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{serial:012X}"),
            ]
        )
        usage = key_usage or kind
        ku = x509.KeyUsage(True, usage == "sign", False, False, False, False, False, False, False)
        root = self.root(kind)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(root.subject)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(ku, critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.root_key(kind).public_key()),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        if kind == "sign":
            if basic4 is None:
                raise ValueError("a signature certificate carries the basic 4 info")
            values = [
                (OID_NAME, basic4.name),
                (OID_NAME_SUBST, basic4.name),
                (OID_SEX, basic4.sex),
                (OID_BIRTH, basic4.birth_date),
                (OID_ADDRESS, basic4.address),
                (OID_ADDRESS_SUBST, basic4.address),
            ]
            san = x509.SubjectAlternativeName(
                [x509.OtherName(x509.ObjectIdentifier(oid), _der_utf8(v)) for oid, v in values]
            )
            builder = builder.add_extension(san, critical=False)
        return builder.sign(self.root_key(kind), hashes.SHA256())
