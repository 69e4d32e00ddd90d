"""Command and response APDUs (ISO/IEC 7816-4), short and extended length."""

from __future__ import annotations

from dataclasses import dataclass

from card.errors import MalformedResponseError


@dataclass(frozen=True, slots=True)
class Command:
    """A command APDU. ``le`` is the expected length (``None``: no Le; 256/65536 encode as 00)."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    sensitive: bool = False  # True when ``data`` is a PIN: tracers mask it

    def encode(self) -> bytes:
        extended = len(self.data) > 255 or (self.le is not None and self.le > 256)
        out = bytearray((self.cla, self.ins, self.p1, self.p2))
        if extended:
            if self.data:
                out += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
            if self.le is not None:
                le = self.le & 0xFFFF  # 65536 -> 0000
                out += (b"" if self.data else b"\x00") + le.to_bytes(2, "big")
        else:
            if self.data:
                out += bytes((len(self.data),)) + self.data
            if self.le is not None:
                out.append(self.le & 0xFF)  # 256 -> 00
        return bytes(out)


@dataclass(frozen=True, slots=True)
class Response:
    """A response APDU: data and the status word as one int (``0x9000``)."""

    data: bytes
    sw: int

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    @property
    def ok(self) -> bool:
        return self.sw == 0x9000

    @classmethod
    def decode(cls, raw: bytes) -> Response:
        if len(raw) < 2:
            raise MalformedResponseError(f"response of {len(raw)} bytes has no status word")
        sw = int.from_bytes(raw[-2:], "big")
        if not (0x61 <= raw[-2] <= 0x6F or 0x90 <= raw[-2] <= 0x9F):
            raise MalformedResponseError("response ends in an invalid status word")
        return cls(bytes(raw[:-2]), sw)


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    """A command APDU as a card parses it (used by the virtual card)."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    le: int | None  # None: no Le; otherwise 1..65536
    extended: bool


def parse_command(raw: bytes) -> ParsedCommand:
    """Parse the four ISO cases, short and extended. Raises ``ValueError`` on bad lengths."""
    if len(raw) < 4:
        raise ValueError("APDU shorter than a header")
    cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
    body = raw[4:]
    if not body:
        return ParsedCommand(cla, ins, p1, p2, b"", None, False)
    if len(body) == 1:
        return ParsedCommand(cla, ins, p1, p2, b"", body[0] or 256, False)
    if body[0] != 0 or len(body) < 3:  # short case 3 / 4
        lc = body[0]
        if lc == 0 or len(body) not in (1 + lc, 2 + lc):
            raise ValueError("short Lc does not match")
        le = (body[-1] or 256) if len(body) == 2 + lc else None
        return ParsedCommand(cla, ins, p1, p2, bytes(body[1 : 1 + lc]), le, False)
    if len(body) == 3:  # extended case 2
        return ParsedCommand(cla, ins, p1, p2, b"", int.from_bytes(body[1:3], "big") or 65536, True)
    lc = int.from_bytes(body[1:3], "big")
    if lc == 0 or len(body) not in (3 + lc, 5 + lc):
        raise ValueError("extended Lc does not match")
    data = bytes(body[3 : 3 + lc])
    le = (int.from_bytes(body[-2:], "big") or 65536) if len(body) == 5 + lc else None
    return ParsedCommand(cla, ins, p1, p2, data, le, True)
