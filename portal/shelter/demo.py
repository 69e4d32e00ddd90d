"""Demo data for shelters: a typhoon with two shelters open and a third ready to open, and a
member of the first demo resident's household checked in (so the family page shows it)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from portal.accounts.models import ResidentAccount
from portal.extensions import db
from portal.models_base import utcnow
from portal.shelter import service
from portal.shelter.models import DisasterEvent, Shelter, ShelterStay

SHELTERS = (
    ("S01", "中央小学校 体育館", "Chuo Elementary School gym", "みなと市中央区本町2丁目3番", 120),
    ("S02", "港町コミュニティセンター", "Minatomachi Community Centre", "みなと市中央区港町1丁目8番", 80),
    ("S03", "北中学校 体育館", "Kita Junior High School gym", "みなと市北区緑町4丁目1番", 150),
)


def load() -> None:
    from portal.library import demo as library_demo

    library_demo.load()
    event = DisasterEvent(
        code="2026-TY21",
        name_ja="台風第21号",
        name_en="Typhoon No. 21",
        started_at=utcnow() - timedelta(hours=6),
    )
    db.session.add(event)
    shelters = []
    for code, ja, en, address, capacity in SHELTERS:
        shelter = Shelter(code=code, name_ja=ja, name_en=en, address_ja=address, default_capacity=capacity)
        db.session.add(shelter)
        shelters.append(shelter)
    db.session.flush()
    first = service.open_shelter(event, shelters[0], shelters[0].default_capacity, by="shelter1")
    service.open_shelter(event, shelters[1], shelters[1].default_capacity, by="shelter1")
    account = db.session.scalar(
        select(ResidentAccount).where(ResidentAccount.email == "resident1@demo.city.example.jp")
    )
    if account is None or account.resident is None or account.resident.household is None:
        return
    others = [
        m for m in account.resident.household.members if m.id != account.resident.id and m.status == "active"
    ]
    if others:
        # Recorded as shelter staff would, but written directly: loading the demo reads nobody's
        # data, so it writes no access record.
        db.session.add(
            ShelterStay(
                uuid=str(uuid.uuid4()),
                opening_id=first.id,
                resident_id=others[0].id,
                method="hand",
                status="active",
                checked_in_at=utcnow() - timedelta(hours=2),
                recorded_by="shelter1",
                allergy="えび・かに",
            )
        )
        db.session.flush()
