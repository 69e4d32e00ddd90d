"""Write very large CRLs fast (DER by hand, signed with cryptography) — for benchmarks and tests.

JPKI CRLs hold hundreds of thousands of entries; cryptography's builder needs a Python object per
entry, so this assembles the TBSCertList directly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SHA256_RSA = bytes.fromhex("300D06092A864886F70D01010B0500")


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes((tag,)) + _len(len(value)) + value


def _time(t: dt.datetime) -> bytes:
    return _tlv(0x17, t.astimezone(dt.UTC).strftime("%y%m%d%H%M%SZ").encode())


def _int(n: int) -> bytes:
    return _tlv(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big"))


def build_crl(
    issuer: x509.Name,
    key: rsa.RSAPrivateKey,
    serials: Iterable[int],
    *,
    this_update: dt.datetime,
    next_update: dt.datetime,
) -> bytes:
    """A DER X.509 v2 CRL listing ``serials`` (all revoked at ``this_update``)."""
    date = _time(this_update)
    entries = b"".join(_tlv(0x30, _int(s) + date) for s in serials)
    body = (
        _tlv(0x02, b"\x01")
        + SHA256_RSA
        + issuer.public_bytes()
        + date
        + _time(next_update)
        + (_tlv(0x30, entries) if entries else b"")
    )
    tbs = _tlv(0x30, body)
    signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    return _tlv(0x30, tbs + SHA256_RSA + _tlv(0x03, b"\x00" + signature))
