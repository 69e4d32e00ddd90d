"""Check digits for the Individual Number (個人番号, 12 digits) and the Corporate Number (法人番号, 13)."""

from __future__ import annotations


def my_number_check_digit(first11: str) -> int:
    """Check digit of an Individual Number from its first 11 digits (rule in CARD.md, Identifiers)."""
    if len(first11) != 11 or not first11.isascii() or not first11.isdigit():
        raise ValueError("expected 11 ASCII digits")
    total = 0
    for n, ch in enumerate(reversed(first11), start=1):
        q = n + 1 if n <= 6 else n - 5
        total += int(ch) * q
    r = total % 11
    return 0 if r <= 1 else 11 - r


def is_valid_my_number(number: str) -> bool:
    """True for 12 ASCII digits whose last digit is the right check digit."""
    if len(number) != 12 or not number.isascii() or not number.isdigit():
        return False
    return my_number_check_digit(number[:11]) == int(number[11])


def corporate_number_check_digit(base12: str) -> int:
    """Check digit (the leading digit) of a Corporate Number from its 12-digit base."""
    if len(base12) != 12 or not base12.isascii() or not base12.isdigit():
        raise ValueError("expected 12 ASCII digits")
    total = sum(int(ch) * (1 if n % 2 else 2) for n, ch in enumerate(reversed(base12), start=1))
    return 9 - total % 9


def is_valid_corporate_number(number: str) -> bool:
    if len(number) != 13 or not number.isascii() or not number.isdigit():
        return False
    return corporate_number_check_digit(number[1:]) == int(number[0])


class IndividualNumber:
    """The 12-digit Individual Number in a wrapper whose ``str``/``repr`` mask it.

    Call :meth:`reveal` only where the number is deliberately used (one module on the server reads it).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not is_valid_my_number(value):
            raise ValueError("not a valid Individual Number")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def masked(self) -> str:
        return "********" + self._value[-4:]

    def __str__(self) -> str:
        return "************"

    def __repr__(self) -> str:
        return "IndividualNumber(<masked>)"

    def __format__(self, spec: str) -> str:
        return str(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IndividualNumber) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("IndividualNumber", self._value))

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("IndividualNumber is not picklable")
