"""Terminal request signatures: a registered city terminal (kiosk, counter, library, shelter,
partner) signs each HTTP request to the server with its Ed25519 key; the server verifies with the
public key it registered. Pure functions, no web framework: the terminal agent signs, the server
verifies. Wire format: docs/card-identity.md ("Terminals")."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

HEADER_ID = "X-Terminal-Id"
HEADER_TIME = "X-Terminal-Time"
HEADER_SIGNATURE = "X-Terminal-Signature"
MAX_SKEW_SECONDS = 60


class TerminalSignatureError(ValueError):
    """The request's terminal signature does not hold; ``code`` says why."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def canonical(method: str, path_qs: str, timestamp: str, body: bytes) -> bytes:
    """The bytes a terminal signs: method, path with query, time, SHA-256 of the body."""
    return "\n".join((method.upper(), path_qs, timestamp, hashlib.sha256(body).hexdigest())).encode()


def sign_request(
    key: Ed25519PrivateKey, terminal_id: str, method: str, path_qs: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    stamp = str(int(time.time() if now is None else now))
    signature = key.sign(canonical(method, path_qs, stamp, body))
    return {
        HEADER_ID: terminal_id,
        HEADER_TIME: stamp,
        HEADER_SIGNATURE: base64.b64encode(signature).decode(),
    }


def verify_request(
    public_key: Ed25519PublicKey,
    headers: Mapping[str, str],
    method: str,
    path_qs: str,
    body: bytes,
    now: float | None = None,
    skew: int = MAX_SKEW_SECONDS,
) -> None:
    stamp = headers.get(HEADER_TIME, "")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        raise TerminalSignatureError("terminal_time")
    if abs(int(stamp) - (time.time() if now is None else now)) > skew:
        raise TerminalSignatureError("terminal_clock")
    try:
        signature = base64.b64decode(headers.get(HEADER_SIGNATURE, ""), validate=True)
        public_key.verify(signature, canonical(method, path_qs, stamp, body))
    except (ValueError, InvalidSignature):
        raise TerminalSignatureError("terminal_signature") from None


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, Ed25519PublicKey):
        raise TerminalSignatureError("terminal_key_type")
    return key


def public_pem(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
