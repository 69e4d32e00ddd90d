"""A real BER-TLV parser (ISO/IEC 8825-1 as used by ISO 7816): multi-byte tags, short and long lengths.

The text-input-support AP (券面事項入力補助AP) returns its basic 4 info as ``FF 20 {DF 21 … DF 25}``; the
outer length is seen in both short and long form, so nothing here relies on fixed offsets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from card.errors import MalformedResponseError


class TlvError(MalformedResponseError):
    """Bytes that are not well-formed BER-TLV."""

    reason = "malformed_tlv"


@dataclass(frozen=True, slots=True)
class Tlv:
    tag: int
    value: bytes

    @property
    def constructed(self) -> bool:
        first = self.tag.to_bytes((self.tag.bit_length() + 7) // 8 or 1, "big")[0]
        return bool(first & 0x20)

    def children(self) -> list[Tlv]:
        """Parse the value as nested TLVs (on demand: the card's ``FF 10`` holds plain digits)."""
        return list(iter_tlv(self.value, allow_padding=False))

    def find(self, tag: int) -> Tlv | None:
        return next((c for c in self.children() if c.tag == tag), None)


def _read_tag(buf: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(buf):
        raise TlvError("truncated tag")
    first = buf[pos]
    tag = first
    pos += 1
    if first & 0x1F == 0x1F:
        for _ in range(3):
            if pos >= len(buf):
                raise TlvError("truncated multi-byte tag")
            b = buf[pos]
            tag = (tag << 8) | b
            pos += 1
            if not b & 0x80:
                break
        else:
            raise TlvError("tag longer than 4 bytes")
    return tag, pos


def _read_length(buf: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(buf):
        raise TlvError("truncated length")
    first = buf[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    n = first & 0x7F
    if n == 0:
        raise TlvError("indefinite length is not allowed")
    if n > 4 or pos + n > len(buf):
        raise TlvError("bad long-form length")
    return int.from_bytes(buf[pos : pos + n], "big"), pos + n


def iter_tlv(buf: bytes, *, allow_padding: bool = True) -> Iterator[Tlv]:
    """Yield the top-level TLVs in ``buf`` (values are parsed further with :meth:`Tlv.children`).

    Trailing ``FF``/``00`` padding (card files are padded) ends the sequence when ``allow_padding``.
    """
    pos = 0
    while pos < len(buf):
        if allow_padding and all(b in (0x00, 0xFF) for b in buf[pos:]):
            return
        tag, pos = _read_tag(buf, pos)
        length, pos = _read_length(buf, pos)
        end = pos + length
        if end > len(buf):
            raise TlvError("value runs past the end of the data")
        yield Tlv(tag, bytes(buf[pos:end]))
        pos = end


def parse(buf: bytes) -> list[Tlv]:
    """Parse all top-level TLVs (raises :class:`TlvError`, never anything else)."""
    return list(iter_tlv(buf))


def encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def encode(tag: int, value: bytes) -> bytes:
    """Encode one TLV with the shortest length form."""
    t = tag.to_bytes((tag.bit_length() + 7) // 8 or 1, "big")
    return t + encode_length(len(value)) + value
