"""The demo city's ward offices: counters, services, opening hours, and a few bookings for
``resident1@demo.city.example.jp``. Called once by ``portal.demo`` when it builds the city."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import select

from portal.booking import service
from portal.booking.models import Counter, Office, OpeningHours, Service
from portal.extensions import db
from portal.registry.models import Ward

SERVICES = (
    # code, ja, en, minutes, capacity, buffer, lead hours, horizon days, cut-off hours, pre-filings
    ("moving", "転入・転出・転居", "Moving in, out or within the city", 30, 2, 0, 2, 60, 24,
     "moving_in,moving_out,moving_within"),
    ("certificate", "住民票の写し・証明書", "Resident record (住民票), certificates", 15, 2, 0, 1, 30, 2,
     "certificate_request"),
    ("mynumber_card", "マイナンバーカード受取", "Collecting your My Number Card", 30, 1, 0, 24, 90, 24, ""),
    ("childcare", "子育て（児童手当・保育）", "Child-rearing (child allowance, day care)",
     45, 1, 15, 24, 60, 24, "child_allowance"),
)  # fmt: skip
OFFICES = (
    # ward code, office code, ja, en, address, late weekday (open until 19:00)
    ("01", "chuo", "中央区役所", "Chuo Ward Office", "みなと市中央区本町1丁目1番1号", 3),
    ("02", "kita", "北区役所", "Kita Ward Office", "みなと市北区緑町2丁目3番4号", None),
    ("03", "minami", "南区役所", "Minami Ward Office", "みなと市南区浜野町5丁目6番7号", None),
)
COUNTERS = (
    (1, "1番窓口（住民異動）", "Counter 1 (moving)", ("moving",)),
    (2, "2番窓口（住民異動・証明書）", "Counter 2 (moving, certificates)", ("moving", "certificate")),
    (3, "3番窓口（証明書・カード）", "Counter 3 (certificates, cards)", ("certificate", "mynumber_card")),
    (4, "4番窓口（子育て）", "Counter 4 (child-rearing)", ("childcare",)),
)
OPENS, CLOSES, LATE = time(8, 30), time(17, 15), time(19, 0)
RESIDENT_EMAIL = "resident1@demo.city.example.jp"


def build(now: datetime | None = None) -> None:
    """Offices, counters, services and hours; slots for the horizon; resident1's bookings."""
    services = {}
    for code, ja, en, minutes, capacity, buffer, lead, horizon, cutoff, prefilings in SERVICES:
        services[code] = Service(
            code=code,
            name_ja=ja,
            name_en=en,
            duration_min=minutes,
            capacity=capacity,
            buffer_min=buffer,
            lead_hours=lead,
            horizon_days=horizon,
            cutoff_hours=cutoff,
            prefiling_codes=prefilings,
        )
    db.session.add_all(services.values())
    wards = {w.code: w for w in db.session.scalars(select(Ward))}
    for ward_code, code, ja, en, address, late in OFFICES:
        office = Office(
            code=code,
            name_ja=ja,
            name_en=en,
            address_ja=address,
            ward_id=wards[ward_code].id if ward_code in wards else None,
            services=list(services.values()),
        )
        db.session.add(office)
        db.session.flush()
        for weekday in range(5):
            db.session.add(
                OpeningHours(
                    office_id=office.id,
                    weekday=weekday,
                    opens=OPENS,
                    closes=LATE if weekday == late else CLOSES,
                )
            )
        for number, cja, cen, codes in COUNTERS:
            db.session.add(
                Counter(
                    office_id=office.id,
                    number=number,
                    name_ja=cja,
                    name_en=cen,
                    services=[services[c] for c in codes],
                )
            )
    db.session.flush()
    service.ensure_slots(service.horizon_day(now), now=now)
    _bookings(now)


def _bookings(now: datetime | None) -> None:
    from portal.accounts.models import ResidentAccount

    account = db.session.scalar(select(ResidentAccount).where(ResidentAccount.email == RESIDENT_EMAIL))
    if account is None or account.resident_id is None:
        return
    office = db.session.scalar(select(Office).where(Office.code == "chuo"))
    wanted = (("certificate", 3, 0), ("moving", 10, 2), ("childcare", 20, 1))
    made = []
    for code, days_ahead, nth in wanted:
        svc = db.session.scalar(select(Service).where(Service.code == code))
        slots = service.search(
            svc,
            office_id=office.id,
            on=service.today_in_tokyo(now) + timedelta(days=days_ahead),
            days=7,
            now=now,
        )
        if len(slots) > nth:
            made.append(
                service.book(
                    resident_id=account.resident_id, account_id=account.id, slot_id=slots[nth].id, now=now
                )
            )
    if len(made) == 3:
        service.cancel(made[2], now=now)  # one cancelled, to show the status
    db.session.flush()
