"""ISO 7816-4 commands as the card understands them (CARD.md, Commands)."""

from __future__ import annotations

from card.apdu import Command
from card.errors import MalformedResponseError, raise_for_sw
from card.transport import Transport

MAX_EF_SIZE = 16 * 1024


def select_aid(t: Transport, aid: bytes) -> None:
    """SELECT DF by AID (``00 A4 04 0C``)."""
    r = t.transceive(Command(0x00, 0xA4, 0x04, 0x0C, aid))
    raise_for_sw(r.sw, "select application")


def select_ef(t: Transport, fid: int) -> None:
    """SELECT EF (``00 A4 02 0C 02 FID``)."""
    r = t.transceive(Command(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big")))
    raise_for_sw(r.sw, "select file")


def read_binary(t: Transport, offset: int, length: int, *, extended: bool = False) -> bytes:
    """READ BINARY of the selected EF, in chunks of ≤256 (or ≤65535 with extended Le)."""
    if not 0 <= offset <= 0x7FFF:
        raise ValueError("offset out of range")
    chunk_max = 0xFFFF if extended and t.supports_extended else 256
    out = bytearray()
    while len(out) < length:
        pos = offset + len(out)
        if pos > 0x7FFF:
            raise MalformedResponseError("file larger than READ BINARY can address")
        want = min(chunk_max, length - len(out))
        r = t.transceive(Command(0x00, 0xB0, pos >> 8, pos & 0xFF, le=want))
        raise_for_sw(r.sw, "read binary")
        if not r.data or len(r.data) > want:
            raise MalformedResponseError("READ BINARY returned a wrong length")
        out += r.data
        if r.sw == 0x6282:  # end of file reached
            break
    return bytes(out)


def der_length_from_header(header: bytes) -> int:
    """Total size of a DER object from its first bytes (``30 82 LL LL`` …)."""
    if len(header) < 2:
        raise MalformedResponseError("certificate header truncated")
    first = header[1]
    if first < 0x80:
        return 2 + first
    n = first & 0x7F
    if n == 0 or n > 3 or len(header) < 2 + n:
        raise MalformedResponseError("bad DER length in file header")
    return 2 + n + int.from_bytes(header[2 : 2 + n], "big")


def read_der_ef(t: Transport, fid: int, *, extended: bool = False) -> bytes:
    """Read a DER object (certificate) from an EF: 4 bytes first, then the whole, in chunks."""
    select_ef(t, fid)
    header = read_binary(t, 0, 4)
    if len(header) < 4 or header[0] != 0x30:
        raise MalformedResponseError("file does not hold a DER certificate")
    total = der_length_from_header(header)
    if total > MAX_EF_SIZE:
        raise MalformedResponseError("certificate length implausible")
    data = header + read_binary(t, len(header), total - len(header), extended=extended)
    if len(data) != total:
        raise MalformedResponseError("certificate truncated")
    return data


def verify_status(t: Transport) -> int:
    """VERIFY with no data against the selected PIN EF: returns the raw status word."""
    return t.transceive(Command(0x00, 0x20, 0x00, 0x80)).sw


def verify(t: Transport, pin: bytes) -> int:
    """VERIFY ``pin`` against the selected PIN EF; returns the status word (caller maps it)."""
    return t.transceive(Command(0x00, 0x20, 0x00, 0x80, pin, sensitive=True)).sw
