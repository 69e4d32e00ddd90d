import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import select

from portal.access import service as access
from portal.access.models import AccessRecord
from portal.vault import service as vault
from portal.vault.models import IndividualNumberRecord
from tests.factories import fake_number, make_resident

ACTOR = access.Actor(kind="staff", id="counter9", role="counter", organisation="中央区役所 市民課")


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
