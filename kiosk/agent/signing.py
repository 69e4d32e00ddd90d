"""Terminal request signatures (Ed25519), shared by the agent (to sign) and the server (to verify).

A terminal's request to the server carries::

    X-Terminal-Id: T-ID
    X-Terminal-Time: <unix seconds>
    X-Terminal-Signature: <base64 Ed25519 signature of canonical(...)>

and the signed bytes are ``METHOD\\nPATH?QUERY\\nTIME\\n<hex SHA-256 of the body>`` (docs/card-identity.md).
``PATH?QUERY`` is the path as sent; with an empty query it is the path alone (``/a?`` and ``/a`` sign
the same bytes, so Werkzeug's ``full_path``, which always ends in ``?``, may be passed as it is).
Behind a prefix (``SCRIPT_NAME``) the server passes ``script_root + full_path``: the terminal signs the
path it requested.

Pure functions over bytes and mappings: no Flask, no I/O, no clock (the caller passes ``now``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

HEADER_ID = "X-Terminal-Id"
HEADER_TIME = "X-Terminal-Time"
HEADER_SIGNATURE = "X-Terminal-Signature"
DEFAULT_SKEW = 60
MAX_ID_LENGTH = 64


class TerminalSignatureError(ValueError):
    """A terminal request is not acceptably signed.

    ``code`` is the protocol's error code (always ``terminal_signature``, what the server answers);
    ``reason`` says which check failed, for the server's log: ``missing_header``, ``bad_terminal_id``,
    ``bad_time``, ``clock_skew``, ``malformed_signature``, ``bad_signature``.
    """

    code = "terminal_signature"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical(method: str, path_qs: str, time: int | str, body: bytes) -> bytes:
    """The exact bytes a terminal signs for one request."""
    if "\n" in method or "\n" in path_qs or "\r" in path_qs:
        raise ValueError("method and path must be one line each")
    if path_qs.endswith("?"):
        path_qs = path_qs[:-1]
    return f"{method.upper()}\n{path_qs}\n{time}\n{body_digest(body)}".encode()


def sign_request(
    key: Ed25519PrivateKey, terminal_id: str, method: str, path_qs: str, body: bytes, now: int
) -> dict[str, str]:
    """Headers to add to a request to the server (``now``: unix seconds)."""
    signature = key.sign(canonical(method, path_qs, now, body))
    return {
        HEADER_ID: terminal_id,
        HEADER_TIME: str(now),
        HEADER_SIGNATURE: base64.b64encode(signature).decode("ascii"),
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # a plain dict is case-sensitive; Werkzeug's Headers is not
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def terminal_id(headers: Mapping[str, str]) -> str:
    """The claimed terminal id (look up its public key with it, then call :func:`verify_request`)."""
    value = _header(headers, HEADER_ID)
    if not value:
        raise TerminalSignatureError("missing_header", f"{HEADER_ID} is missing")
    value = value.strip()
    if not value or len(value) > MAX_ID_LENGTH or not value.isascii() or not value.isprintable():
        raise TerminalSignatureError("bad_terminal_id", f"{HEADER_ID} is malformed")
    return value


def verify_request(
    public_key: Ed25519PublicKey | bytes | str,
    headers: Mapping[str, str],
    method: str,
    path_qs: str,
    body: bytes,
    now: float,
    skew: int = DEFAULT_SKEW,
) -> str:
    """Check a terminal's signature; return its terminal id or raise :class:`TerminalSignatureError`.

    ``public_key`` is the terminal's registered key (object or PEM). A time more than ``skew``
    seconds from ``now`` is refused either way.
    """
    key = load_public_key(public_key) if isinstance(public_key, bytes | str) else public_key
    tid = terminal_id(headers)
    time_text = _header(headers, HEADER_TIME)
    signature_text = _header(headers, HEADER_SIGNATURE)
    if time_text is None or signature_text is None:
        raise TerminalSignatureError("missing_header", "terminal signature headers are missing")
    time_text = time_text.strip()
    if not (time_text.isascii() and time_text.isdigit()) or len(time_text) > 12:
        raise TerminalSignatureError("bad_time", f"{HEADER_TIME} is not unix seconds")
    if abs(now - int(time_text)) > skew:
        raise TerminalSignatureError("clock_skew", f"{HEADER_TIME} is more than {skew} s off")
    try:
        signature = base64.b64decode(signature_text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise TerminalSignatureError("malformed_signature", "signature is not base64") from None
    if len(signature) != 64:
        raise TerminalSignatureError("malformed_signature", "signature has the wrong length")
    try:
        key.verify(signature, canonical(method, path_qs, time_text, body))
    except InvalidSignature:
        raise TerminalSignatureError("bad_signature", "terminal signature does not verify") from None
    return tid


# -- keys -------------------------------------------------------------------------------------
def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode("ascii")


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the terminal key must be an Ed25519 private key")
    return key


def load_public_key(pem: bytes | str) -> Ed25519PublicKey:
    """A terminal's public key from PEM (what ``keygen`` prints and an admin registers)."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise ValueError("not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the terminal key must be an Ed25519 public key")
    return key
