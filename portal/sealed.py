"""Small secrets at rest (TOTP seeds): AES-256-GCM under a key derived from the vault key."""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app


def _key(purpose: str) -> bytes:
    master = base64.b64decode(current_app.config["VAULT_KEY"])
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(master)


def seal(purpose: str, plaintext: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(_key(purpose)).encrypt(nonce, plaintext, purpose.encode())


def unseal(purpose: str, sealed: bytes) -> bytes:
    return AESGCM(_key(purpose)).decrypt(sealed[:12], sealed[12:], purpose.encode())
