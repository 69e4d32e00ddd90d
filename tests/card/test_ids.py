"""Check digits: the Individual Number (12 digits, last) and the Corporate Number (13, first)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from card.ids import (
    IndividualNumber,
    corporate_number_check_digit,
    is_valid_corporate_number,
    is_valid_my_number,
    my_number_check_digit,
)

digits = st.text(alphabet="0123456789", min_size=11, max_size=11)


def test_documented_examples() -> None:
    assert my_number_check_digit("11111111111") == 8
    assert my_number_check_digit("12345678901") == 8
    assert is_valid_my_number("123456789018")
    assert is_valid_corporate_number("7123456789012")


@given(digits)
def test_exactly_one_check_digit_is_valid(first11: str) -> None:
    valid = [d for d in "0123456789" if is_valid_my_number(first11 + d)]
    assert valid == [str(my_number_check_digit(first11))]


@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_exactly_one_corporate_check_digit(base: str) -> None:
    valid = [d for d in "0123456789" if is_valid_corporate_number(d + base)]
    assert valid == [str(corporate_number_check_digit(base))]
    assert 1 <= corporate_number_check_digit(base) <= 9


@given(digits, st.integers(0, 10), st.integers(1, 9))
def test_single_digit_substitution_changes_the_sum(first11: str, pos: int, delta: int) -> None:
    # weights 2..7 are units mod 11: a one-digit typo always changes r (the r=0/1 clash aside)
    original = first11
    changed = original[:pos] + str((int(original[pos]) + delta) % 10) + original[pos + 1 :]
    number = original + str(my_number_check_digit(original))
    if my_number_check_digit(changed) != my_number_check_digit(original):
        assert not is_valid_my_number(changed + number[-1])


@pytest.mark.parametrize(
    "bad", ["", "12345678901", "1234567890181", "12345678901a", "１２３４５６７８９０１８"]
)
def test_rejects_malformed(bad: str) -> None:
    assert not is_valid_my_number(bad)


def test_wrapper_masks_everywhere() -> None:
    number = IndividualNumber("123456789018")
    for text in (str(number), repr(number), f"{number}", f"{number}", str([number])):
        assert "123456789018" not in text
    assert number.reveal() == "123456789018"
    assert number.masked().endswith("9018") and "1234567" not in number.masked()
    with pytest.raises(ValueError, match="valid"):
        IndividualNumber("123456789012")
