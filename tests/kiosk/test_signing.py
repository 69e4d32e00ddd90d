"""Terminal request signatures (card.termsig, used through kiosk.agent.signing): what is signed,
every tampered part refused, clock skew, and the terminal's key files."""

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


def refused(key: Ed25519PrivateKey, headers: dict[str, str], code: str, **over: object) -> None:
    args: dict[str, object] = {"method": "POST", "path_qs": PATH, "body": BODY, "now": NOW, **over}
    with pytest.raises(TerminalSignatureError) as info:
        verify_request(key.public_key(), headers, **args)  # type: ignore[arg-type]
    assert info.value.code == code
    assert isinstance(info.value, ValueError)


def test_canonical_bytes_are_the_documented_ones() -> None:
    hello = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"  # sha256(b"hello")
    assert canonical("post", "/a/b?x=1&y=2", "42", b"hello") == f"POST\n/a/b?x=1&y=2\n42\n{hello}".encode()
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert canonical("GET", "/s", "7", b"") == f"GET\n/s\n7\n{empty}".encode()


def test_sign_and_verify(key: Ed25519PrivateKey, headers: dict[str, str]) -> None:
    assert set(headers) == {"X-Terminal-Id", "X-Terminal-Time", "X-Terminal-Signature"}
    assert headers["X-Terminal-Id"] == "T-1"
    assert headers["X-Terminal-Time"] == str(NOW)
    assert len(base64.b64decode(headers["X-Terminal-Signature"])) == 64
    verify_request(key.public_key(), headers, "POST", PATH, BODY, NOW)
    verify_request(key.public_key(), headers, "post", PATH, BODY, NOW + 59.9)  # method case


def test_each_tampered_part_is_refused(key: Ed25519PrivateKey, headers: dict[str, str]) -> None:
    refused(key, headers, "terminal_signature", method="PUT")
    refused(key, headers, "terminal_signature", path_qs="/api/card/links")
    refused(key, headers, "terminal_signature", path_qs=PATH + "?x=1")
    refused(key, headers, "terminal_signature", body=BODY.replace(b"c_1", b"c_2"))
    refused(key, headers, "terminal_signature", body=BODY + b" ")
    refused(key, {**headers, "X-Terminal-Time": str(NOW + 1)}, "terminal_signature")
    signature = bytearray(base64.b64decode(headers["X-Terminal-Signature"]))
    signature[10] ^= 1
    refused(
        key, {**headers, "X-Terminal-Signature": base64.b64encode(signature).decode()}, "terminal_signature"
    )
    # another terminal's key: claiming its id is not enough
    refused(Ed25519PrivateKey.generate(), headers, "terminal_signature")


def test_clock_skew(key: Ed25519PrivateKey, headers: dict[str, str]) -> None:
    verify_request(key.public_key(), headers, "POST", PATH, BODY, NOW - 60)
    verify_request(key.public_key(), headers, "POST", PATH, BODY, NOW + 60)
    refused(key, headers, "terminal_clock", now=NOW + 61)
    refused(key, headers, "terminal_clock", now=NOW - 61)
    late = sign_request(key, "T-1", "POST", PATH, BODY, NOW - 300)
    refused(key, late, "terminal_clock")
    verify_request(key.public_key(), late, "POST", PATH, BODY, NOW, skew=300)


def test_missing_and_malformed_headers(key: Ed25519PrivateKey, headers: dict[str, str]) -> None:
    without = {k: v for k, v in headers.items() if k != "X-Terminal-Time"}
    refused(key, without, "terminal_time")
    refused(key, {k: v for k, v in headers.items() if k != "X-Terminal-Signature"}, "terminal_signature")
    refused(key, {**headers, "X-Terminal-Time": "1.75e9"}, "terminal_time")
    refused(key, {**headers, "X-Terminal-Time": "-5"}, "terminal_time")
    refused(key, {**headers, "X-Terminal-Signature": "not base64!"}, "terminal_signature")
    short = base64.b64encode(b"short").decode()
    refused(key, {**headers, "X-Terminal-Signature": short}, "terminal_signature")


@pytest.mark.parametrize("stamp", ["\u00b2", "9" * 5000])
def test_odd_digits_are_a_signature_error_not_a_crash(
    key: Ed25519PrivateKey, headers: dict[str, str], stamp: str
) -> None:
    refused(key, {**headers, "X-Terminal-Time": stamp}, "terminal_time")


def test_key_files_round_trip(key: Ed25519PrivateKey) -> None:
    loaded = signing.load_private_key(signing.private_key_pem(key))
    headers = sign_request(loaded, "T-1", "GET", "/x", b"", NOW)
    public = signing.load_public_key(signing.public_key_pem(key))
    verify_request(public, headers, "GET", "/x", b"", NOW)
    assert signing.public_key_pem(key) == signing.public_key_pem(key.public_key())
    with pytest.raises(ValueError):
        signing.load_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
