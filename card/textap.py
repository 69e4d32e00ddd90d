"""The text-input-support application (券面事項入力補助AP): Individual Number and basic 4 info."""

from __future__ import annotations

from card import tlv
from card.errors import MalformedResponseError
from card.ids import IndividualNumber, is_valid_my_number
from card.models import Basic4

EF_MY_NUMBER = 0x0001
EF_BASIC4 = 0x0002
EF_SIGNATURE = 0x0003
MY_NUMBER_READ = 17

TAG_MY_NUMBER = 0xFF10
TAG_BASIC4 = 0xFF20
TAG_OFFSETS, TAG_NAME, TAG_ADDRESS, TAG_BIRTH, TAG_SEX = (
    0xDF21,
    0xDF22,
    0xDF23,
    0xDF24,
    0xDF25,
)


def parse_my_number(raw: bytes) -> IndividualNumber:
    """``FF 10 0C`` + 12 ASCII digits (+ padding). The number never appears in an error."""
    items = tlv.parse(raw)
    if not items or items[0].tag != TAG_MY_NUMBER:
        raise MalformedResponseError("Individual Number file has an unexpected layout")
    try:
        digits = items[0].value.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedResponseError("Individual Number is not ASCII") from None
    if not is_valid_my_number(digits):
        raise MalformedResponseError("Individual Number failed its check digit")
    return IndividualNumber(digits)


def _text(item: tlv.Tlv | None, what: str) -> str:
    if item is None:
        raise MalformedResponseError(f"basic 4 info lacks {what}")
    try:
        return item.value.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedResponseError(f"basic 4 info {what} is not UTF-8") from None


def parse_basic4(raw: bytes) -> Basic4:
    """Parse ``FF 20 {DF 21 offsets, DF 22 name, DF 23 address, DF 24 birth, DF 25 sex}``."""
    items = tlv.parse(raw)
    if not items or items[0].tag != TAG_BASIC4:
        raise MalformedResponseError("basic 4 info file has an unexpected layout")
    outer = items[0]
    children = {c.tag: c for c in outer.children()}
    birth = _text(children.get(TAG_BIRTH), "birth date")
    sex = _text(children.get(TAG_SEX), "sex")
    if len(birth) != 8 or not birth.isdigit():
        raise MalformedResponseError("birth date is not YYYYMMDD")
    if sex not in ("0", "1", "2", "9"):
        raise MalformedResponseError("sex is not an ISO 5218 code")
    return Basic4(
        name=_text(children.get(TAG_NAME), "name"),
        address=_text(children.get(TAG_ADDRESS), "address"),
        birth_date=birth,
        sex=sex,
    )


def tlv_total_length(header: bytes) -> int:
    """Size of the first TLV in a file from its leading bytes (tag + length)."""
    pos = 0
    if not header:
        raise MalformedResponseError("empty file")
    pos = 1
    if header[0] & 0x1F == 0x1F:
        while pos < len(header) and header[pos] & 0x80:
            pos += 1
        pos += 1
    if pos >= len(header):
        raise MalformedResponseError("TLV header truncated")
    first = header[pos]
    pos += 1
    if first < 0x80:
        return pos + first
    n = first & 0x7F
    if n == 0 or n > 3 or pos + n > len(header):
        raise MalformedResponseError("bad TLV length in file header")
    return pos + n + int.from_bytes(header[pos : pos + n], "big")
