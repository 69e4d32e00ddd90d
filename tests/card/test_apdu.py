"""APDU encoding and parsing (short and extended), and status words mapped to typed errors."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from card import errors
from card.apdu import Command, Response, parse_command


@given(st.binary(max_size=700), st.one_of(st.none(), st.integers(1, 65536)))
def test_round_trip(data: bytes, le: int | None) -> None:
    raw = Command(0x00, 0xB0, 0x01, 0x02, data, le).encode()
    parsed = parse_command(raw)
    assert parsed.data == data
    assert parsed.le == le
    assert parsed.extended == (len(data) > 255 or (le is not None and le > 256))


@given(st.binary(max_size=20))
def test_parse_never_crashes(raw: bytes) -> None:
    with contextlib.suppress(ValueError):
        parse_command(raw)


def test_response_needs_a_status_word() -> None:
    with pytest.raises(errors.MalformedResponseError):
        Response.decode(b"\x90")
    with pytest.raises(errors.MalformedResponseError):
        Response.decode(b"\x12\x34")
    assert Response.decode(b"\x01\x90\x00") == Response(b"\x01", 0x9000)


@pytest.mark.parametrize(
    ("sw", "error"),
    [
        (0x63C2, errors.WrongPinError),
        (0x63C0, errors.PinBlockedError),
        (0x6983, errors.PinBlockedError),
        (0x6984, errors.PinBlockedError),
        (0x6982, errors.PinRequiredError),
        (0x6A82, errors.FileNotFoundOnCardError),
        (0x6D00, errors.CardError),
        (0x6700, errors.CardError),
    ],
)
def test_status_words(sw: int, error: type[errors.CardError]) -> None:
    with pytest.raises(error) as info:
        errors.raise_for_sw(sw)
    assert info.value.sw == sw
    if isinstance(info.value, errors.WrongPinError):
        assert info.value.tries_left == 2
