"""PIN kinds of the card and their formats; checked before anything is sent, so no try is burnt."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from card.errors import PinFormatError


@dataclass(frozen=True, slots=True)
class PinSpec:
    aid: bytes
    ef: int
    max_tries: int
    label: str


JPKI_AID = bytes.fromhex("D392F000260100000001")
TEXT_AID = bytes.fromhex("D3921000310001010408")
SURFACE_AID = bytes.fromhex("D3921000310001010402")


class PinKind(enum.Enum):
    """The card's PINs: 利用者証明用 (auth, 4 digits), 署名用 (sign, 6–16), 券面事項入力補助用 (text)."""

    AUTH = "auth"
    SIGN = "sign"
    TEXT = "text"

    @property
    def spec(self) -> PinSpec:
        return _SPECS[self]


_SPECS = {
    PinKind.AUTH: PinSpec(JPKI_AID, 0x0018, 3, "user authentication PIN (利用者証明用電子証明書暗証番号)"),
    PinKind.SIGN: PinSpec(JPKI_AID, 0x001B, 5, "signature PIN (署名用電子証明書暗証番号)"),
    PinKind.TEXT: PinSpec(TEXT_AID, 0x0011, 3, "text-input PIN (券面事項入力補助用暗証番号)"),
}

_FOUR_DIGITS = re.compile(r"[0-9]{4}")
_SIGN_PIN = re.compile(r"[A-Z0-9]{6,16}")


def normalize_pin(kind: PinKind, pin: str) -> bytes:
    """Return the PIN as the card expects it (ASCII; the signature PIN upper-cased) or raise.

    The error never contains the PIN.
    """
    if kind is PinKind.SIGN:
        candidate = pin.upper()
        if not (
            _SIGN_PIN.fullmatch(candidate)
            and any(c.isdigit() for c in candidate)
            and any(c.isalpha() for c in candidate)
        ):
            raise PinFormatError(
                "signature PIN must be 6-16 letters A-Z and digits, with at least one of each"
            )
        return candidate.encode("ascii")
    if not _FOUR_DIGITS.fullmatch(pin):
        raise PinFormatError(f"{kind.value} PIN must be exactly 4 digits")
    return pin.encode("ascii")
