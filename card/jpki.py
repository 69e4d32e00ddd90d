"""The JPKI application (公的個人認証AP): certificates, PINs and signatures (CARD.md, JPKI application)."""

from __future__ import annotations

import enum
import hashlib

from card.apdu import Command
from card.errors import MalformedResponseError, raise_for_sw
from card.transport import Transport

SHA256_DIGESTINFO_PREFIX = bytes.fromhex("3031300D060960864801650304020105000420")

EF_TOKEN = 0x0006
TOKEN_CARD = "JPKIAPICCTOKEN2"  # noqa: S105 - a token name, not a password  # マイナンバーカード
TOKEN_JUKI = "JPKIAPICCTOKEN"  # noqa: S105  # 住基カード
TOKEN_PHONE = "JPKIAPGPSETOKEN"  # noqa: S105  # スマホ用電子証明書


class CertKind(enum.Enum):
    AUTH = "auth"
    AUTH_CA = "auth-ca"
    SIGN = "sign"
    SIGN_CA = "sign-ca"

    @property
    def ef(self) -> int:
        return {"auth": 0x000A, "auth-ca": 0x000B, "sign": 0x0001, "sign-ca": 0x0002}[self.value]


KEY_EF = {"auth": 0x0017, "sign": 0x001A}


def digest_info_sha256(message: bytes | None = None, *, digest: bytes | None = None) -> bytes:
    """DER DigestInfo for SHA-256 of ``message`` (or of an already computed ``digest``)."""
    if digest is None:
        if message is None:
            raise ValueError("message or digest required")
        digest = hashlib.sha256(message).digest()
    if len(digest) != 32:
        raise ValueError("a SHA-256 digest is 32 bytes")
    return SHA256_DIGESTINFO_PREFIX + digest


def compute_signature(t: Transport, digest_info: bytes) -> bytes:
    """COMPUTE SIGNATURE (``80 2A 00 80``) with the key EF already selected; 256 bytes back."""
    r = t.transceive(Command(0x80, 0x2A, 0x00, 0x80, digest_info, le=256))
    raise_for_sw(r.sw, "compute signature")
    if len(r.data) != 256:
        raise MalformedResponseError("signature is not 256 bytes")
    return r.data


def parse_token(raw: bytes) -> str:
    text = raw.rstrip(b"\x00\xff ").decode("ascii", errors="replace")
    if not text.isprintable():
        raise MalformedResponseError("token is not text")
    return text
