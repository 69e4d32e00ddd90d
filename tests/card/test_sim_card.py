"""The virtual card answers like CARD.md says (what OpenSC and our client rely on)."""

from __future__ import annotations

import pytest

from card.sim import VirtualCard

JPKI = "00A4040C0AD392F000260100000001"


def sw(card: VirtualCard, *apdus: str) -> list[str]:
    return [card.process(bytes.fromhex(a)).hex().upper()[-4:] for a in apdus]


def test_unknown_aid_and_file(card: VirtualCard) -> None:
    assert sw(card, "00A4040C07A0000000030000", JPKI, "00A4020C021234") == ["6A82", "9000", "6A82"]


def test_mf_and_path_selects_are_not_found(card: VirtualCard) -> None:
    assert sw(card, "00A40000023F00", "00A4080C020001") == ["6A82", "6A82"]


def test_pin_needed_before_signature_certificate(card: VirtualCard) -> None:
    assert sw(card, JPKI, "00A4020C020001", "00B0000004") == ["9000", "9000", "6982"]


def test_pin_status_without_using_a_try(card: VirtualCard) -> None:
    assert sw(card, JPKI, "00A4020C020018", "00208080", "0020008000") == ["9000", "9000", "6A86", "63C3"]
    assert sw(card, "00200080") == ["63C3"]


def test_unsupported_instruction_and_class(card: VirtualCard) -> None:
    assert sw(card, JPKI, "00CA000000", "A0B0000004") == ["9000", "6D00", "6E00"]


def test_wrong_lengths(card: VirtualCard) -> None:
    assert sw(card, "00A4040C0FD392", "00") == ["6700", "6700"]


def test_read_past_end(card: VirtualCard) -> None:
    assert sw(card, JPKI, "00A4020C020006", "00B0004000", "00B0001020") == ["9000", "9000", "6B00", "6282"]


@pytest.mark.parametrize("blocked_sw", [0x6983, 0x6984, 0x63C0])
def test_blocked_status_variants_are_all_blocked(card: VirtualCard, blocked_sw: int) -> None:
    from card import errors
    from card.pin import PinKind
    from card.session import CardSession
    from card.transport import SimTransport

    jpki = card.applets[bytes.fromhex("D392F000260100000001")]
    jpki.blocked_sw = blocked_sw  # type: ignore[attr-defined]
    jpki.pins[0x0018].tries = 0  # type: ignore[attr-defined]
    session = CardSession(SimTransport(card))
    assert session.pin_tries_left(PinKind.AUTH) == 0
    with pytest.raises(errors.PinBlockedError):
        session.sign_auth(b"x", "1234", allow_last_try=True)
