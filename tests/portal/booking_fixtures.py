"""A small booking city for the tests: one or two offices open Monday to Friday, services, counters."""

from __future__ import annotations

from datetime import UTC, datetime, time

from portal.booking.models import Counter, Office, OpeningHours, Service
from portal.extensions import db

# Monday 16 November 2026, 09:00 in Tokyo: a week before 勤労感謝の日 (Monday 23 November).
MONDAY_9 = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)


def make_service(
    *,
    code: str = "certificate",
    capacity: int = 2,
    duration: int = 30,
    buffer: int = 0,
    lead_hours: int = 2,
    horizon_days: int = 60,
    cutoff_hours: int = 24,
) -> Service:
    svc = Service(
        code=code,
        name_ja="住民票の写し",
        name_en="Resident record",
        duration_min=duration,
        capacity=capacity,
        buffer_min=buffer,
        lead_hours=lead_hours,
        horizon_days=horizon_days,
        cutoff_hours=cutoff_hours,
    )
    db.session.add(svc)
    db.session.flush()
    return svc


def make_office(*, code: str = "chuo", services: list[Service], counters: int = 2) -> Office:
    office = Office(
        code=code, name_ja=f"{code}区役所", name_en=f"{code.title()} Ward Office", services=services
    )
    db.session.add(office)
    db.session.flush()
    for weekday in range(5):
        db.session.add(
            OpeningHours(office_id=office.id, weekday=weekday, opens=time(8, 30), closes=time(17, 15))
        )
    for n in range(1, counters + 1):
        db.session.add(
            Counter(
                office_id=office.id, number=n, name_ja=f"{n}番窓口", name_en=f"Counter {n}", services=services
            )
        )
    db.session.flush()
    return office
