"""The terminal's key and its request signatures.

The signature itself — ``canonical``, ``sign_request``, ``verify_request``,
``TerminalSignatureError`` (a ``ValueError`` with a ``code``) — is :mod:`card.termsig`, one
implementation that the server also verifies with (``portal`` may not import ``kiosk``, and both may
import ``card``). This module adds what only a terminal needs: making, writing and loading its key.

Signed bytes: ``METHOD\\nPATH?QUERY\\nTIME\\n<hex SHA-256 of the body>``; with an empty query the
path alone (the server strips the ``?`` Werkzeug's ``full_path`` always ends with).
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from card.termsig import (
    HEADER_ID,
    HEADER_SIGNATURE,
    HEADER_TIME,
    MAX_SKEW_SECONDS,
    TerminalSignatureError,
    canonical,
    load_public_key,
    sign_request,
    verify_request,
)

__all__ = [
    "HEADER_ID",
    "HEADER_SIGNATURE",
    "HEADER_TIME",
    "MAX_SKEW_SECONDS",
    "Ed25519PrivateKey",
    "Ed25519PublicKey",
    "TerminalSignatureError",
    "canonical",
    "generate_key",
    "load_private_key",
    "load_public_key",
    "private_key_pem",
    "public_key_pem",
    "sign_request",
    "verify_request",
]


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted: the file is protected by its mode (0600) on the terminal."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """What an admin registers for the terminal on the server."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode("ascii")


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the terminal key must be an Ed25519 private key")
    return key
