"""A small ISO 7816-4 file-system applet: transparent EFs, PIN EFs and RSA key EFs.

Enough of a card operating system to be faithful to CARD.md: ``69 82`` before a PIN, ``6A 82`` for
unknown files, PIN counters that block, ``63 Cx`` tries left, COMPUTE SIGNATURE with the card's own
PKCS#1 v1.5 type-1 padding.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import rsa

from card.apdu import ParsedCommand

Reply = tuple[bytes, int]


@dataclass
class Pin:
    value: bytes
    max_tries: int
    tries: int
    pattern: str  # regex the card enforces on CHANGE REFERENCE DATA
    verified: bool = False

    @property
    def blocked(self) -> bool:
        return self.tries <= 0


@dataclass
class BinaryFile:
    data: bytes
    read_pin: int | None = None  # PIN EF that must be verified to read


@dataclass
class KeyFile:
    key: rsa.RSAPrivateKey
    pin: int
    consume_pin: bool = False  # signature key: one VERIFY per signature


def sign_raw_pkcs1(key: rsa.RSAPrivateKey, digest_info: bytes) -> bytes:
    """RSA with the card's own type-1 padding over whatever DigestInfo the host sends."""
    numbers = key.private_numbers()
    n = numbers.public_numbers.n
    k = (n.bit_length() + 7) // 8
    if len(digest_info) > k - 11:
        raise ValueError("DigestInfo too long")
    em = b"\x00\x01" + b"\xff" * (k - 3 - len(digest_info)) + b"\x00" + digest_info
    m = int.from_bytes(em, "big")
    # CRT: two half-size exponentiations
    s1 = pow(m, numbers.dmp1, numbers.p)
    s2 = pow(m, numbers.dmq1, numbers.q)
    h = (numbers.iqmp * (s1 - s2)) % numbers.p
    return (s2 + h * numbers.q).to_bytes(k, "big")


@dataclass
class FileApplet:
    """An application (DF) selected by AID, holding EFs addressed by 2-byte file IDs."""

    aid: bytes
    name: str
    files: dict[int, BinaryFile] = field(default_factory=dict)
    pins: dict[int, Pin] = field(default_factory=dict)
    keys: dict[int, KeyFile] = field(default_factory=dict)
    blocked_sw: int = 0x6983
    on_change: Callable[[], None] | None = None
    selected: int | None = None

    def reset(self) -> None:
        """Deselect: security status is lost when another application is selected or on reset."""
        self.selected = None
        for pin in self.pins.values():
            pin.verified = False

    def handle(self, c: ParsedCommand) -> Reply:
        if c.ins == 0xA4 and c.p1 == 0x02:
            return self._select_ef(c)
        if c.ins == 0xB0 and c.cla == 0x00:
            return self._read_binary(c)
        if c.ins == 0x20 and c.cla == 0x00:
            return self._verify(c)
        if c.ins == 0x24 and c.cla == 0x00:
            return self._change(c)
        if c.ins == 0x2A and c.cla == 0x80:
            return self._sign(c)
        return b"", 0x6D00

    def _select_ef(self, c: ParsedCommand) -> Reply:
        if len(c.data) != 2:
            return b"", 0x6700
        fid = int.from_bytes(c.data, "big")
        if fid in self.files or fid in self.pins or fid in self.keys:
            self.selected = fid
            return b"", 0x9000
        return b"", 0x6A82

    def _read_binary(self, c: ParsedCommand) -> Reply:
        if c.p1 & 0x80:
            return b"", 0x6A86  # short EF identifiers are not offered
        ef = self.files.get(self.selected) if self.selected is not None else None
        if ef is None:
            return b"", 0x6986  # no current EF / not a transparent EF
        if ef.read_pin is not None and not self.pins[ef.read_pin].verified:
            return b"", 0x6982
        offset = (c.p1 << 8) | c.p2
        if offset >= len(ef.data):
            return b"", 0x6B00
        le = c.le or 256
        chunk = ef.data[offset : offset + le]
        return chunk, 0x9000 if len(chunk) == le else 0x6282

    def _current_pin(self) -> Pin | None:
        return self.pins.get(self.selected) if self.selected is not None else None

    def _verify(self, c: ParsedCommand) -> Reply:
        if c.p1 != 0x00 or c.p2 != 0x80:
            return b"", 0x6A86
        pin = self._current_pin()
        if pin is None:
            return b"", 0x6A88  # referenced data not found: select a PIN EF first
        if pin.blocked:
            return b"", self.blocked_sw
        if not c.data:
            return b"", 0x63C0 | pin.tries
        if hmac.compare_digest(c.data, pin.value):
            pin.tries = pin.max_tries
            pin.verified = True
            self._changed()
            return b"", 0x9000
        pin.tries -= 1
        pin.verified = False
        self._changed()
        return b"", 0x63C0 | pin.tries

    def _change(self, c: ParsedCommand) -> Reply:
        if c.p1 != 0x01 or c.p2 != 0x80:
            return b"", 0x6A86
        pin = self._current_pin()
        if pin is None:
            return b"", 0x6A88
        if not pin.verified:
            return b"", 0x6982
        try:
            new = c.data.decode("ascii")
        except UnicodeDecodeError:
            return b"", 0x6A80
        if not re.fullmatch(pin.pattern, new):
            return b"", 0x6A80
        pin.value = c.data
        self._changed()
        return b"", 0x9000

    def _sign(self, c: ParsedCommand) -> Reply:
        if c.p1 != 0x00 or c.p2 != 0x80:
            return b"", 0x6A86
        key = self.keys.get(self.selected) if self.selected is not None else None
        if key is None:
            return b"", 0x6985  # conditions of use: select a key EF first
        pin = self.pins[key.pin]
        if not pin.verified:
            return b"", 0x6982
        try:
            signature = sign_raw_pkcs1(key.key, c.data)
        except ValueError:
            return b"", 0x6700
        if key.consume_pin:
            pin.verified = False
        return signature, 0x9000

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
