"""Check digits of the Individual Number (12 digits, check last) and the corporate number
(13 digits, check first), as published by the Cabinet Office and the National Tax Agency."""

from __future__ import annotations


def individual_number_check_digit(first11: str) -> int:
    if len(first11) != 11 or not first11.isascii() or not first11.isdigit():
        raise ValueError("need the first 11 digits")
    total = 0
    for n, ch in enumerate(reversed(first11), start=1):
        weight = n + 1 if n <= 6 else n - 5
        total += int(ch) * weight
    r = total % 11
    return 0 if r <= 1 else 11 - r


def is_valid_individual_number(text: str) -> bool:
    return (
        len(text) == 12
        and text.isascii()
        and text.isdigit()
        and individual_number_check_digit(text[:11]) == int(text[11])
    )


def corporate_number_check_digit(base12: str) -> int:
    if len(base12) != 12 or not base12.isascii() or not base12.isdigit():
        raise ValueError("need the 12-digit base")
    total = sum(int(ch) * (1 if n % 2 else 2) for n, ch in enumerate(reversed(base12), start=1))
    return 9 - total % 9


def is_valid_corporate_number(text: str) -> bool:
    return (
        len(text) == 13
        and text.isascii()
        and text.isdigit()
        and corporate_number_check_digit(text[1:]) == int(text[0])
    )
