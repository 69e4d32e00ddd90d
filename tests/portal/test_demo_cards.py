from sqlalchemy import select

from card.session import open_card
from portal import demo
from portal.access.models import AccessRecord
from portal.demo_cards import DEMO_AUTH_PIN, make_cards
from portal.registry.models import Resident
from portal.registry.names import normalise
from portal.vault import service as vault


def test_each_demo_resident_gets_a_card_once(app, db, tmp_path):
    demo.load(households=2)
    made, existing = make_cards(tmp_path, "みなと市", limit=2)
    assert (made, existing) == (2, 0)
    assert make_cards(tmp_path, "みなと市", limit=2) == (0, 2)
    records = db.session.scalars(select(AccessRecord)).all()
    assert len(records) == 2 and {r.data_items for r in records} == {"individual_number"}
    assert all(r.actor_kind == "job" for r in records)
    # the card's text application matches the register: number through the keyed hash, name normalised
    first = db.session.scalars(select(Resident).order_by(Resident.id)).first()
    with open_card("sim", profile=tmp_path / first.atena_no) as card:
        number, basic4 = card.read_text_ap(DEMO_AUTH_PIN)
    assert vault.find_resident_id(number) == first.id
    assert normalise(basic4.name) == normalise(first.family_name + first.given_name)
    assert basic4.birth_date == first.birth_date.strftime("%Y%m%d")
