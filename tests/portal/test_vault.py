import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from portal.access import service as access
from portal.access.models import AccessRecord
from portal.vault import service as vault
from portal.vault.checkdigits import (
    corporate_number_check_digit,
    individual_number_check_digit,
    is_valid_corporate_number,
    is_valid_individual_number,
)
from portal.vault.models import IndividualNumberRecord
from tests.factories import fake_number, make_resident

ACTOR = access.Actor(kind="staff", id="counter9", role="counter", organisation="中央区役所 市民課")


def test_check_digit_examples_from_the_specification():
    assert individual_number_check_digit("11111111111") == 8
    assert individual_number_check_digit("12345678901") == 8
    assert is_valid_individual_number("123456789018")
    assert not is_valid_individual_number("123456789017")
    assert corporate_number_check_digit("123456789012") == 7
    assert is_valid_corporate_number("7123456789012")
    assert not is_valid_corporate_number("8123456789012")


@given(st.text(alphabet="0123456789", min_size=11, max_size=11), st.integers(1, 9))
def test_check_digit_round_trips_and_a_changed_check_digit_is_caught(first11, delta):
    check = individual_number_check_digit(first11)
    assert 0 <= check <= 9
    assert is_valid_individual_number(first11 + str(check))
    assert not is_valid_individual_number(first11 + str((check + delta) % 10))


@given(st.text(min_size=0, max_size=20))
def test_validators_never_crash(text):
    assert is_valid_individual_number(text) in (True, False)
    assert is_valid_corporate_number(text) in (True, False)


def test_store_encrypts_and_finds_by_keyed_hash(app, db):
    resident = make_resident()
    number = fake_number(1)
    vault.store(resident.id, number)
    db.session.commit()
    row = db.session.scalar(select(IndividualNumberRecord))
    assert number.encode() not in row.ciphertext
    assert number not in repr(row)
    assert vault.find_resident_id(number) == resident.id
    assert vault.find_resident_id(fake_number(2)) is None
    # spaces, hyphens and full-width digits are the same number
    spaced = f"{number[:4]}-{number[4:8]} {number[8:]}".translate(
        str.maketrans("0123456789", "０１２３４５６７８９")
    )
    assert vault.find_resident_id(spaced) == resident.id


def test_invalid_number_is_refused_without_echoing_it(app, db):
    resident = make_resident()
    bad = fake_number(3)[:11] + str((int(fake_number(3)[11]) + 1) % 10)
    with pytest.raises(vault.InvalidNumber) as info:
        vault.store(resident.id, bad)
    assert bad not in str(info.value)


def test_reveal_needs_purpose_and_writes_access_record(app, db):
    resident = make_resident()
    vault.store(resident.id, fake_number(4))
    db.session.commit()
    with pytest.raises(vault.PurposeRequired):
        vault.reveal(resident.id, purpose=" ", actor=ACTOR)
    assert vault.reveal(resident.id, purpose="child_allowance", actor=ACTOR) == fake_number(4)
    db.session.commit()
    rec = db.session.scalar(select(AccessRecord))
    assert rec.data_items == "individual_number"
    assert rec.actor_id == "counter9" and rec.purpose == "child_allowance"


def test_ciphertext_is_bound_to_its_resident(app, db):
    """Copying one resident's ciphertext onto another's row does not decrypt."""
    a, b = make_resident(), make_resident(given="太郎")
    vault.store(a.id, fake_number(5))
    vault.store(b.id, fake_number(6))
    db.session.flush()
    rows = {r.resident_id: r for r in db.session.scalars(select(IndividualNumberRecord))}
    rows[b.id].ciphertext = rows[a.id].ciphertext
    db.session.flush()
    with pytest.raises(InvalidTag):
        vault.reveal(b.id, purpose="moving", actor=ACTOR)
