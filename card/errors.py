"""Typed card errors; status words become exceptions in exactly one place (:func:`raise_for_sw`).

No message here ever carries a PIN or an Individual Number (個人番号).
"""

from __future__ import annotations


class CardError(Exception):
    """Any failure talking to the card. ``reason`` is a stable machine-readable code."""

    reason = "card_error"

    def __init__(self, message: str = "", *, sw: int | None = None) -> None:
        super().__init__(message or self.reason)
        self.sw = sw

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (SW {self.sw:04X})" if self.sw is not None else text


class NoReaderError(CardError):
    """No PC/SC reader (or pcscd is not running)."""

    reason = "no_reader"


class NoCardError(CardError):
    """The reader is empty."""

    reason = "no_card"


class CardRemovedError(CardError):
    """The card was removed (or reset) during an operation."""

    reason = "card_removed"


class NotIndividualNumberCardError(CardError):
    """The card does not answer to the JPKI AID: not an Individual Number Card (マイナンバーカード)."""

    reason = "not_individual_number_card"


class MalformedResponseError(CardError):
    """The card's answer is truncated, has a wrong length or is garbage."""

    reason = "malformed_response"


class PinFormatError(CardError):
    """The PIN has the wrong format; it was not sent, so no try was used."""

    reason = "pin_format"


class WrongPinError(CardError):
    """The card rejected the PIN (暗証番号の誤り). ``tries_left`` counts what remains."""

    reason = "wrong_pin"

    def __init__(self, tries_left: int, *, sw: int | None = None) -> None:
        super().__init__(f"wrong PIN, {tries_left} tries left", sw=sw)
        self.tries_left = tries_left


class PinBlockedError(CardError):
    """The PIN is blocked (ロック); only the city counter can reset it."""

    reason = "pin_blocked"


class LastTryRefusedError(CardError):
    """One try is left and the caller did not explicitly allow using it; nothing was sent."""

    reason = "last_try_refused"

    def __init__(self) -> None:
        super().__init__("one PIN try left: confirm before using it")
        self.tries_left = 1


class PinRequiredError(CardError):
    """Security status not satisfied (``69 82``): the PIN must be verified first."""

    reason = "pin_required"


class FileNotFoundOnCardError(CardError):
    """``6A 82``: application or file not found."""

    reason = "not_found"


class AuthenticationFailedError(CardError):
    """Mutual authentication with the city application failed."""

    reason = "authentication_failed"


_SW_TEXT = {
    0x6700: "wrong length",
    0x6A86: "incorrect P1/P2",
    0x6B00: "wrong offset",
    0x6D00: "instruction not supported",
    0x6E00: "class not supported",
    0x6982: "security status not satisfied",
    0x6A82: "file or application not found",
}

BLOCKED_SW = frozenset({0x6983, 0x6984, 0x63C0})


def raise_for_sw(sw: int, what: str = "command") -> None:
    """Map a status word to a typed error; return silently for success (``90 00``, ``62 82``)."""
    if sw in (0x9000, 0x6282):
        return
    if sw in BLOCKED_SW:
        raise PinBlockedError(f"{what}: PIN blocked", sw=sw)
    if sw & 0xFFF0 == 0x63C0:
        raise WrongPinError(sw & 0x0F, sw=sw)
    if sw == 0x6982:
        raise PinRequiredError(f"{what}: PIN required", sw=sw)
    if sw == 0x6A82:
        raise FileNotFoundOnCardError(f"{what}: not found", sw=sw)
    raise CardError(f"{what} failed: {_SW_TEXT.get(sw, 'card error')}", sw=sw)
