"""200 concurrent clients against PostgreSQL race for the last seats of a slot: each thread has its
own app context, session and database connection, all wait at a barrier, then book. Exactly the
seats left succeed; every other client gets the "taken" answer with the nearest free slots; the
slot ends exactly full and no resident holds a seat twice."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import func, select, text

from portal.booking import service
from portal.booking.models import Booking, Slot
from tests.factories import make_resident
from tests.portal.booking_fixtures import MONDAY_9, make_office, make_service

CLIENTS = 200
CAPACITY = 5
ALREADY = 2


@pytest.fixture
def app_config():
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": CLIENTS + 5, "max_overflow": 0, "pool_timeout": 60}}


def test_200_clients_race_for_the_last_seats(app, db):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the race is run against PostgreSQL (SQLite serialises every writer)")
    svc = make_service(capacity=CAPACITY)
    office = make_office(services=[svc])
    people = [make_resident(given=f"人{i}") for i in range(CLIENTS + ALREADY)]
    db.session.commit()
    slot = service.search(svc, office_id=office.id, on=date(2026, 11, 18), days=1, now=MONDAY_9)[4]
    slot_id = slot.id
    for person in people[:ALREADY]:
        service.book(resident_id=person.id, slot_id=slot_id, now=MONDAY_9)
    db.session.commit()
    racers = [p.id for p in people[ALREADY:]]
    db.session.remove()

    barrier = threading.Barrier(CLIENTS, timeout=120)
    results: list[tuple[str, list[int]]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(resident_id: int) -> None:
        with app.app_context():
            try:
                db.session.execute(text("SELECT 1"))  # hold this client's own connection
                db.session.commit()
                barrier.wait()
                try:
                    service.book(resident_id=resident_id, slot_id=slot_id, now=MONDAY_9)
                    db.session.commit()
                    outcome = ("booked", [])
                except service.SlotTaken as exc:
                    outcome = ("taken", [s.id for s in exc.nearest])
                with lock:
                    results.append(outcome)
            except BaseException as exc:  # reported below
                with lock:
                    errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=client, args=(rid,)) for rid in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not errors, repr(errors[:3])
    assert len(results) == CLIENTS
    booked = [r for r in results if r[0] == "booked"]
    taken = [r for r in results if r[0] == "taken"]
    assert len(booked) == CAPACITY - ALREADY
    assert len(taken) == CLIENTS - (CAPACITY - ALREADY)
    for _, nearest in taken:
        assert nearest and slot_id not in nearest and len(nearest) == service.NEAREST
    final = db.session.get(Slot, slot_id)
    assert final.booked == final.capacity == CAPACITY
    holders = db.session.scalars(select(Booking.resident_id).where(Booking.active_slot_id == slot_id)).all()
    assert len(holders) == len(set(holders)) == CAPACITY
    assert db.session.scalar(select(func.count()).select_from(Booking)) == CAPACITY
