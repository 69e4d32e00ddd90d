"""The city application's mutual authentication, shared by the card client and the virtual card.

AES-CMAC challenge–response (as smart-card issuers do):

1. host: GET CHALLENGE → ``RND.C`` (16 bytes from the card)
2. host: MUTUAL AUTHENTICATE with ``RND.H || CMAC(K, "H" || RND.C || RND.H)``
3. card: checks it, answers ``CMAC(K, "C" || RND.H || RND.C)``; the host checks that
4. both derive ``KS = CMAC(K, "S" || RND.C || RND.H)``; each UPDATE RECORD carries
   ``CMAC(KS, seq || record || value)[:8]`` so a write cannot be replayed or altered.
"""

from __future__ import annotations

from typing import Protocol

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import algorithms

CHALLENGE_LEN = 16
WRITE_MAC_LEN = 8


def aes_cmac(key: bytes, data: bytes) -> bytes:
    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


class IssuerKey(Protocol):
    """The city's issuer key; in production an HSM object computing AES-CMAC (SoftHSM2 in tests)."""

    def cmac(self, data: bytes) -> bytes: ...


class AesIssuerKey:
    """An issuer key held in memory (tests, or a key from the environment)."""

    def __init__(self, key: bytes) -> None:
        if len(key) not in (16, 24, 32):
            raise ValueError("AES key must be 16, 24 or 32 bytes")
        self._key = key

    def cmac(self, data: bytes) -> bytes:
        return aes_cmac(self._key, data)

    def __repr__(self) -> str:
        return "AesIssuerKey(<secret>)"


def host_cryptogram(key: IssuerKey, rnd_card: bytes, rnd_host: bytes) -> bytes:
    return key.cmac(b"H" + rnd_card + rnd_host)


def card_cryptogram(key: IssuerKey, rnd_card: bytes, rnd_host: bytes) -> bytes:
    return key.cmac(b"C" + rnd_host + rnd_card)


def session_key(key: IssuerKey, rnd_card: bytes, rnd_host: bytes) -> bytes:
    return key.cmac(b"S" + rnd_card + rnd_host)


def write_mac(ks: bytes, seq: int, record: int, value: bytes) -> bytes:
    return aes_cmac(ks, seq.to_bytes(2, "big") + bytes((record,)) + value)[:WRITE_MAC_LEN]
