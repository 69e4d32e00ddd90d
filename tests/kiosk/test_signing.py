"""Terminal request signatures: what is signed, and every tampering refused."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.agent import signing
from kiosk.agent.signing import TerminalSignatureError, canonical, sign_request, verify_request

NOW = 1_750_000_000
BODY = b'{"challenge":"c_1","certificate":"AAAA","signature":"BBBB"}'
PATH = "/api/card/responses"


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def headers(key: Ed25519PrivateKey) -> dict[str, str]:
    return sign_request(key, "T-1", "POST", PATH, BODY, NOW)


def refused(key: Ed25519PrivateKey, headers: dict[str, str], reason: str, **over: object) -> None:
    args: dict[str, object] = {"method": "POST", "path_qs": PATH, "body": BODY, "now": NOW, **over}
    with pytest.raises(TerminalSignatureError) as info:
        verify_request(key.public_key(), headers, **args)  # type: ignore[arg-type]
    assert info.value.reason == reason
    assert info.value.code == "terminal_signature"
    assert isinstance(info.value, ValueError)


def test_canonical_bytes_are_the_documented_ones() -> None:
    digest = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"  # sha256(b"hello")
    assert canonical("post", "/a/b?x=1&y=2", 42, b"hello") == f"POST\n/a/b?x=1&y=2\n42\n{digest}".encode()
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert canonical("GET", "/s", "7", b"") == f"GET\n/s\n7\n{empty}".encode()
    # Werkzeug's full_path ends in "?" when there is no query: it signs the same bytes
    assert canonical("GET", "/s?", 7, b"") == canonical("GET", "/s", 7, b"")
    with pytest.raises(ValueError):
        canonical("GET", "/s\nX-Injected: 1", 7, b"")


def test_sign_and_verify(key: Ed25519PrivateKey, headers: dict[str, str]) -> None:
    assert set(headers) == {"X-Terminal-Id", "X-Terminal-Time", "X-Terminal-Signature"}
    assert headers["X-Terminal-Time"] == str(NOW)
    assert len(base64.b64decode(headers["X-Terminal-Signature"])) == 64
    assert verify_request(key.public_key(), headers, "POST", PATH, BODY, NOW) == "T-1"
    # PEM works as well as a key object; header names in any case (a plain dict)
    pem = signing.public_key_pem(key)
    lowered = {k.lower(): v for k, v in headers.items()}
    assert verify_request(pem, lowered, "post", PATH + "?", BODY, NOW + 59.9) == "T-1"


def test_each_tampered_part_is_refused(key: Ed25519PrivateKey, headers: dict[str, str]) -> None:
    refused(key, headers, "bad_signature", method="PUT")
    refused(key, headers, "bad_signature", path_qs="/api/card/links")
    refused(key, headers, "bad_signature", path_qs=PATH + "?x=1")
    refused(key, headers, "bad_signature", body=BODY.replace(b"c_1", b"c_2"))
    refused(key, headers, "bad_signature", body=BODY + b" ")
    refused(key, {**headers, "X-Terminal-Time": str(NOW + 1)}, "bad_signature")
    signature = bytearray(base64.b64decode(headers["X-Terminal-Signature"]))
    signature[10] ^= 1
    refused(key, {**headers, "X-Terminal-Signature": base64.b64encode(signature).decode()}, "bad_signature")
    other = Ed25519PrivateKey.generate()
    refused(other, headers, "bad_signature")  # another terminal's key (the id header is not enough)


def test_clock_skew(key: Ed25519PrivateKey, headers: dict[str, str]) -> None:
    assert verify_request(key.public_key(), headers, "POST", PATH, BODY, NOW - 60) == "T-1"
    refused(key, headers, "clock_skew", now=NOW + 61)
    refused(key, headers, "clock_skew", now=NOW - 61)
    late = sign_request(key, "T-1", "POST", PATH, BODY, NOW - 300)
    refused(key, late, "clock_skew")
    assert verify_request(key.public_key(), late, "POST", PATH, BODY, NOW, skew=300) == "T-1"


def test_missing_and_malformed_headers(key: Ed25519PrivateKey, headers: dict[str, str]) -> None:
    for name in ("X-Terminal-Id", "X-Terminal-Time", "X-Terminal-Signature"):
        refused(key, {k: v for k, v in headers.items() if k != name}, "missing_header")
    refused(key, {**headers, "X-Terminal-Time": "1.75e9"}, "bad_time")
    refused(key, {**headers, "X-Terminal-Time": "-5"}, "bad_time")
    refused(key, {**headers, "X-Terminal-Signature": "not base64!"}, "malformed_signature")
    short = base64.b64encode(b"short").decode()
    refused(key, {**headers, "X-Terminal-Signature": short}, "malformed_signature")
    refused(key, {**headers, "X-Terminal-Id": "T\x01"}, "bad_terminal_id")
    refused(key, {**headers, "X-Terminal-Id": "T" * 65}, "bad_terminal_id")
    with pytest.raises(TerminalSignatureError):
        signing.terminal_id({})


def test_key_files_round_trip(key: Ed25519PrivateKey) -> None:
    loaded = signing.load_private_key(signing.private_key_pem(key))
    headers = sign_request(loaded, "T-1", "GET", "/x", b"", NOW)
    public = signing.load_public_key(signing.public_key_pem(key).encode())
    assert verify_request(public, headers, "GET", "/x", b"", NOW) == "T-1"
    with pytest.raises(ValueError):
        signing.load_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
