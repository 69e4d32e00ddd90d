"""The BER-TLV parser and the basic 4 info layout: short and long lengths, padding, garbage."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from card import textap, tlv
from card.errors import CardError, MalformedResponseError

tags = st.sampled_from([0x80, 0x5F20, 0xDF21, 0xDF8121, 0x04, 0x9F1F])


@given(st.lists(st.tuples(tags, st.binary(max_size=600)), max_size=5))
def test_encode_parse_round_trip(items: list[tuple[int, bytes]]) -> None:
    raw = b"".join(tlv.encode(t, v) for t, v in items)
    parsed = list(tlv.iter_tlv(raw, allow_padding=False))
    assert [(p.tag, p.value) for p in parsed] == items


@given(st.binary(max_size=300))
def test_garbage_never_crashes(raw: bytes) -> None:
    with contextlib.suppress(tlv.TlvError):
        tlv.parse(raw)


@given(st.binary(max_size=300))
def test_basic4_parser_only_raises_card_errors(raw: bytes) -> None:
    for candidate in (raw, b"\xff\x20" + raw, b"\xff\x20\x82" + raw):
        with contextlib.suppress(CardError):
            textap.parse_basic4(candidate)


@given(st.text(min_size=1, max_size=200), st.text(min_size=1, max_size=400), st.booleans())
def test_basic4_short_and_long_form(name: str, address: str, long_form: bool) -> None:
    inner = (
        tlv.encode(0xDF21, bytes(8))
        + tlv.encode(0xDF22, name.encode())
        + tlv.encode(0xDF23, address.encode())
        + tlv.encode(0xDF24, b"19800401")
        + tlv.encode(0xDF25, b"9")
    )
    long_raw = b"\xff\x20\x82" + len(inner).to_bytes(2, "big") + inner
    raw = long_raw if long_form else tlv.encode(0xFF20, inner)
    basic4 = textap.parse_basic4(raw + b"\xff" * 5)
    assert (basic4.name, basic4.address, basic4.sex) == (name, address, "9")
    assert textap.tlv_total_length(raw[:8]) == len(raw)


def test_known_layout_short_form() -> None:
    raw = bytes.fromhex("FF2014DF2108000B00100014001ADF220141DF230142DF2408") + b"2000010" + b"1"
    with pytest.raises(MalformedResponseError):  # truncated on purpose
        textap.parse_basic4(raw)


def test_multi_byte_tag_and_long_length() -> None:
    value = b"x" * 300
    raw = tlv.encode(0xDF8121, value)
    assert raw[:6] == bytes.fromhex("DF8121 82012C".replace(" ", ""))
    assert tlv.parse(raw)[0].value == value


@pytest.mark.parametrize("raw", [b"\x80\x85\x00\x00\x00\x00\x00", b"\x80\x80", b"\x9f", b"\x80\x05ab"])
def test_rejects_bad_lengths(raw: bytes) -> None:
    with pytest.raises(tlv.TlvError):
        list(tlv.iter_tlv(raw, allow_padding=False))


def test_bad_utf8_is_a_card_error() -> None:
    inner = (
        tlv.encode(0xDF22, b"\xff\xfe")
        + tlv.encode(0xDF23, b"a")
        + tlv.encode(0xDF24, b"19800401")
        + tlv.encode(0xDF25, b"1")
    )
    with pytest.raises(MalformedResponseError):
        textap.parse_basic4(tlv.encode(0xFF20, inner))
