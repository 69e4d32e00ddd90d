"""The city application in the card's free space (IC空き領域), as the virtual card runs it.

Records 1..8 (≤ 64 bytes of UTF-8 each) are readable without a PIN; writing needs mutual
authentication with the city's issuer key (see :mod:`card.citycrypto`).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable

from card.apdu import ParsedCommand
from card.citycrypto import (
    CHALLENGE_LEN,
    WRITE_MAC_LEN,
    AesIssuerKey,
    card_cryptogram,
    host_cryptogram,
    session_key,
    write_mac,
)

MAX_RECORDS = 8
MAX_RECORD_LEN = 64


class CityApplet:
    name = "city"

    def __init__(
        self,
        aid: bytes,
        key: bytes,
        records: dict[int, bytes],
        on_change: Callable[[dict[int, bytes]], None] | None = None,
    ) -> None:
        self.aid = aid
        self._key = AesIssuerKey(key)
        self.records = dict(records)
        self.on_change = on_change
        self.reset()

    def reset(self) -> None:
        self._challenge: bytes | None = None
        self._session: bytes | None = None
        self._seq = 0

    def handle(self, c: ParsedCommand) -> tuple[bytes, int]:
        if c.cla != 0x00:
            return b"", 0x6E00
        if c.ins == 0xB2:
            return self._read(c)
        if c.ins == 0x84:
            if c.le != CHALLENGE_LEN:
                return b"", 0x6700
            self._challenge = secrets.token_bytes(CHALLENGE_LEN)
            self._session = None
            return self._challenge, 0x9000
        if c.ins == 0x82:
            return self._authenticate(c)
        if c.ins == 0xDC:
            return self._update(c)
        if c.ins == 0xA4:
            return b"", 0x6A82
        return b"", 0x6D00

    def _read(self, c: ParsedCommand) -> tuple[bytes, int]:
        if c.p2 != 0x04 or not 1 <= c.p1 <= MAX_RECORDS:
            return b"", 0x6A86
        value = self.records.get(c.p1)
        if not value:
            return b"", 0x6A83
        return value, 0x9000

    def _authenticate(self, c: ParsedCommand) -> tuple[bytes, int]:
        challenge, self._challenge = self._challenge, None  # one attempt per challenge
        if challenge is None:
            return b"", 0x6985
        if len(c.data) != 2 * CHALLENGE_LEN:
            return b"", 0x6700
        rnd_host, cryptogram = c.data[:CHALLENGE_LEN], c.data[CHALLENGE_LEN:]
        if not hmac.compare_digest(cryptogram, host_cryptogram(self._key, challenge, rnd_host)):
            return b"", 0x6300
        self._session = session_key(self._key, challenge, rnd_host)
        self._seq = 0
        return card_cryptogram(self._key, challenge, rnd_host), 0x9000

    def _update(self, c: ParsedCommand) -> tuple[bytes, int]:
        if c.p2 != 0x04 or not 1 <= c.p1 <= MAX_RECORDS:
            return b"", 0x6A86
        if self._session is None:
            return b"", 0x6982
        value, mac = c.data[:-WRITE_MAC_LEN], c.data[-WRITE_MAC_LEN:]
        if len(c.data) < WRITE_MAC_LEN or len(value) > MAX_RECORD_LEN:
            return b"", 0x6700
        if not hmac.compare_digest(mac, write_mac(self._session, self._seq, c.p1, value)):
            self._session = None
            return b"", 0x6988
        self._seq += 1
        self.records[c.p1] = value
        if self.on_change is not None:
            self.on_change(self.records)
        return b"", 0x9000
