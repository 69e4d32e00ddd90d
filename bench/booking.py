"""Counter booking on PostgreSQL: the free-slot search over a year of slots for 20 offices, and
bookings per second under 50 concurrent clients with zero overbookings.

    python bench/booking.py [--url URL] [--offices 20] [--days 365] [--searches 400]
                            [--clients 50] [--attempts 40] [--hot-slots 300]

A scratch database ``portal_bench_booking`` is made afresh (migrations, then the offices), so the
run does not touch ``portal_bench``. Then:

1. **Slots.** 20 offices × 4 services (15 to 45 minutes, Monday to Friday 08:30–17:15), a year
   of slots materialised by the app (``service.ensure_slots``), national holidays and 29 Dec–3 Jan
   left out; about 60 % of the slots are made full (a busy calendar, so the search skips rows).
2. **Search.** ``service.search`` (one service, one office or all, a week from a random day of the
   year, earliest 200 free slots — what the resident's page runs) timed ``--searches`` times: p50,
   p95, max. The limit, in the same run: the same SELECT through psycopg with no ORM (prepared),
   as many times; the ratio is p95(app) / p95(raw).
3. **Bookings.** ``--clients`` threads, each with its own app context, session and connection,
   wait at a barrier and then each makes ``--attempts`` booking attempts for random residents on
   ``--hot-slots`` slots (capacity 2: more attempts than seats, so many are "taken" and get their
   nearest free slots). Figures: attempts/s and bookings/s. The limit: the same conditional
   ``UPDATE … WHERE booked < capacity`` + ``INSERT`` per attempt through psycopg, same threads,
   on another set of hot slots. Afterwards every slot's ``booked`` is checked against its active
   bookings and against its capacity: overbookings must be 0.
"""

from __future__ import annotations

import argparse
import random
import secrets
import sys
import threading
import time
from datetime import time as dtime
from datetime import timedelta

import _common
import psycopg
from _common import figure, num, percentile

DB = "portal_bench_booking"
SERVICES = (("moving", 30, 2), ("certificate", 15, 2), ("mynumber_card", 30, 1), ("childcare", 45, 1))
SEARCH_SQL = (
    "SELECT id, office_id, service_id, starts_at, ends_at, capacity, booked, closed FROM booking_slots "
    "WHERE service_id = %s AND starts_at >= %s AND starts_at < %s AND NOT closed AND booked < capacity "
    "{office} ORDER BY starts_at, office_id LIMIT 200"
)


def build(url: str, offices: int, days: int) -> tuple[object, dict]:
    from flask_migrate import upgrade

    from wsgi import create_app

    app = create_app(
        {
            "NAME": "test",
            "SQLALCHEMY_DATABASE_URI": url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 60, "max_overflow": 0},
            "JOBS_INLINE": True,
        }
    )
    with app.app_context():
        upgrade(directory=str(_common.ROOT / "migrations"))
        from portal.booking import service
        from portal.booking.models import Office, OpeningHours, Service
        from portal.extensions import db

        svcs = [
            Service(
                code=code,
                name_ja=code,
                name_en=code,
                duration_min=minutes,
                capacity=capacity,
                lead_hours=0,
                horizon_days=days,
                cutoff_hours=24,
            )
            for code, minutes, capacity in SERVICES
        ]
        db.session.add_all(svcs)
        for i in range(offices):
            office = Office(code=f"o{i:02d}", name_ja=f"庁舎{i}", name_en=f"Office {i}", services=svcs)
            db.session.add(office)
            db.session.flush()
            for weekday in range(5):
                db.session.add(
                    OpeningHours(
                        office_id=office.id, weekday=weekday, opens=dtime(8, 30), closes=dtime(17, 15)
                    )
                )
        db.session.commit()
        started = time.perf_counter()
        made = service.ensure_slots(service.today_in_tokyo() + timedelta(days=days))
        took = time.perf_counter() - started
        db.session.execute(db.text("UPDATE booking_slots SET booked = capacity WHERE random() < 0.6"))
        db.session.execute(
            db.text(
                "INSERT INTO wards (code, name_ja, name_en) VALUES ('99', '試験区', 'Bench');"
                "INSERT INTO addresses (ward_id, postal_code, town, block) "
                "SELECT id, '2600001', '本町', '1' FROM wards WHERE code = '99';"
                "INSERT INTO residents (atena_no, family_name, given_name, family_name_kana, given_name_kana,"
                " name_search, birth_date, sex, ward_id, address_id, relationship_to_head, status) "
                "SELECT 'B' || lpad(g::text, 9, '0'), '試験', '太郎', 'シケン', 'タロウ', 'しけん たろう',"
                " date '1980-01-01', 1, w.id, a.id, 'head', 'active' "
                "FROM generate_series(1, 20000) g, wards w JOIN addresses a ON a.ward_id = w.id "
                "WHERE w.code = '99'"
            )
        )
        db.session.commit()
    raw = psycopg.connect(_common.libpq_url(url), autocommit=True)
    raw.execute("VACUUM (ANALYZE)")
    slots = raw.execute("SELECT count(*) FROM booking_slots").fetchone()[0]
    free = raw.execute("SELECT count(*) FROM booking_slots WHERE booked < capacity").fetchone()[0]
    residents = [r[0] for r in raw.execute("SELECT id FROM residents ORDER BY id")]
    raw.close()
    return app, {"slots": slots, "free": free, "made": made, "materialise_s": took, "residents": residents}


def bench_search(app, url: str, n: int, days: int) -> None:
    from portal.booking import service
    from portal.booking.models import Office, Service
    from portal.extensions import db

    rng = random.Random(7)
    with app.app_context():
        svcs = list(db.session.scalars(db.select(Service)))
        offices = [o.id for o in db.session.scalars(db.select(Office))]
        today = service.today_in_tokyo()
        cases = []
        for _ in range(n):
            svc = rng.choice(svcs)
            office_id = None if rng.random() < 0.25 else rng.choice(offices)
            cases.append((svc, office_id, today + timedelta(days=rng.randrange(days - 7))))
        for svc, office_id, day in cases[:20]:  # warm up
            service.search(svc, office_id=office_id, on=day, days=7)
        app_ms, found = [], 0
        for svc, office_id, day in cases:
            started = time.perf_counter()
            result = service.search(svc, office_id=office_id, on=day, days=7)
            app_ms.append((time.perf_counter() - started) * 1000)
            found += len(result)
            db.session.rollback()
        bounds = []
        for svc, office_id, day in cases:
            earliest, latest = service.bookable_window(svc, service.utcnow())
            start = max(service.day_bounds(day)[0], earliest)
            end = min(service.day_bounds(day + timedelta(days=6))[1], latest)
            bounds.append((svc.id, office_id, start, end))
    raw_ms = []
    with psycopg.connect(_common.libpq_url(url), autocommit=True) as conn:
        for _ in range(2):  # warm up (and let psycopg prepare the statements)
            for sid, office_id, start, end in bounds[:20]:
                _raw_search(conn, sid, office_id, start, end)
        for sid, office_id, start, end in bounds:
            started = time.perf_counter()
            _raw_search(conn, sid, office_id, start, end)
            raw_ms.append((time.perf_counter() - started) * 1000)
    p95, raw95 = percentile(app_ms, 95), percentile(raw_ms, 95)
    figure("search: runs", num(n))
    figure("search: free slots returned (mean per search)", f"{found / n:.0f}")
    figure(
        "search: app p50 / p95 / max (ms)", f"{percentile(app_ms, 50):.2f} / {p95:.2f} / {max(app_ms):.2f}"
    )
    figure("search: raw SQL p50 / p95 (ms)", f"{percentile(raw_ms, 50):.2f} / {raw95:.2f}")
    figure("search: ratio p95 app / raw", f"{p95 / raw95:.1f}x")


def _raw_search(conn, sid, office_id, start, end):
    if office_id is None:
        return conn.execute(SEARCH_SQL.format(office=""), (sid, start, end), prepare=True).fetchall()
    return conn.execute(
        SEARCH_SQL.format(office="AND office_id = %s"), (sid, start, end, office_id), prepare=True
    ).fetchall()


def _hot_slots(url: str, k: int, offset: int) -> list[int]:
    with psycopg.connect(_common.libpq_url(url), autocommit=True) as conn:
        conn.execute(
            "UPDATE booking_slots SET capacity = 2, booked = 0 WHERE id IN (SELECT id FROM booking_slots "
            "WHERE starts_at > now() + interval '2 days' ORDER BY id OFFSET %s LIMIT %s)",
            (offset, k),
        )
        return [r[0] for r in conn.execute(
            "SELECT id FROM booking_slots WHERE starts_at > now() + interval '2 days' "
            "ORDER BY id OFFSET %s LIMIT %s",
            (offset, k),
        )]  # fmt: skip


def _run_threads(clients: int, work) -> tuple[float, list]:
    barrier = threading.Barrier(clients + 1)
    out: list = []
    lock = threading.Lock()

    def body(i: int) -> None:
        result = work(i, barrier)
        with lock:
            out.append(result)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - started, out


def bench_bookings(app, url: str, clients: int, attempts: int, hot: int, residents: list[int]) -> None:
    from portal.booking import service
    from portal.extensions import db

    app_slots = _hot_slots(url, hot, 0)
    raw_slots = _hot_slots(url, hot, hot)
    per_client = [residents[i * attempts : (i + 1) * attempts] for i in range(clients)]

    def app_client(i: int, barrier):
        rng = random.Random(i)
        ok = taken = dup = 0
        with app.app_context():
            db.session.execute(db.text("SELECT 1"))
            db.session.commit()
            barrier.wait()
            for resident_id in per_client[i]:
                try:
                    service.book(resident_id=resident_id, slot_id=rng.choice(app_slots))
                    db.session.commit()
                    ok += 1
                except service.SlotTaken:
                    taken += 1
                except service.BookingError:
                    dup += 1
            db.session.remove()
        return ok, taken, dup

    elapsed, results = _run_threads(clients, app_client)
    ok = sum(r[0] for r in results)
    taken = sum(r[1] for r in results)
    total = clients * attempts

    raw_offset = len(residents) // 2
    per_client_raw = [
        residents[raw_offset + i * attempts : raw_offset + (i + 1) * attempts] for i in range(clients)
    ]

    def raw_client(i: int, barrier):
        rng = random.Random(i)
        ok = 0
        with psycopg.connect(_common.libpq_url(url)) as conn:
            barrier.wait()
            for resident_id in per_client_raw[i]:
                slot_id = rng.choice(raw_slots)
                with conn.transaction():
                    row = conn.execute(
                        "UPDATE booking_slots SET booked = booked + 1 WHERE id = %s AND booked < capacity "
                        "AND NOT closed RETURNING id",
                        (slot_id,),
                        prepare=True,
                    ).fetchone()
                    if row is None:
                        continue
                    conn.execute(
                        "INSERT INTO bookings (reference, slot_id, active_slot_id, resident_id, status,"
                        " created_at, sequence) VALUES (%s, %s, %s, %s, 'booked', now(), 0)",
                        (secrets.token_hex(5).upper(), slot_id, slot_id, resident_id),
                        prepare=True,
                    )
                    ok += 1
        return ok, 0, 0

    raw_elapsed, raw_results = _run_threads(clients, raw_client)
    raw_ok = sum(r[0] for r in raw_results)

    with psycopg.connect(_common.libpq_url(url), autocommit=True) as conn:
        over = conn.execute("SELECT count(*) FROM booking_slots WHERE booked > capacity").fetchone()[0]
        mismatch = conn.execute(
            "SELECT count(*) FROM booking_slots s LEFT JOIN (SELECT active_slot_id, count(*) n FROM bookings "
            "WHERE active_slot_id IS NOT NULL GROUP BY active_slot_id) b ON b.active_slot_id = s.id "
            "WHERE s.id = ANY(%s) AND s.booked <> coalesce(b.n, 0)",
            (app_slots + raw_slots,),
        ).fetchone()[0]
        seats = conn.execute(
            "SELECT sum(capacity) FROM booking_slots WHERE id = ANY(%s)", (app_slots,)
        ).fetchone()[0]
    figure("bookings: clients x attempts", f"{clients} x {attempts} = {num(total)}")
    figure("bookings: seats on the hot slots", num(seats))
    figure("bookings: booked / taken (nearest offered)", f"{num(ok)} / {num(taken)}")
    figure("bookings: app attempts per second", f"{total / elapsed:,.0f}")
    figure("bookings: app bookings per second", f"{ok / elapsed:,.0f}")
    figure("bookings: raw SQL attempts per second", f"{total / raw_elapsed:,.0f} ({num(raw_ok)} booked)")
    figure(
        "bookings: ratio raw / app attempts per second", f"{(total / raw_elapsed) / (total / elapsed):.1f}x"
    )
    figure("bookings: overbooked slots (booked > capacity)", str(over))
    figure("bookings: slots whose counter != active bookings", str(mismatch))
    if over or mismatch:
        print("FAIL: overbooking or a counter out of step", file=sys.stderr)
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=_common.default_server_url())
    parser.add_argument("--offices", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--searches", type=int, default=400)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--attempts", type=int, default=40)
    parser.add_argument("--hot-slots", type=int, default=300)
    args = parser.parse_args()
    if not args.url:
        sys.exit('no PostgreSQL: eval "$(bash scripts/services.sh)" first, or pass --url')
    url = _common.recreate_database(args.url, DB)
    print(_common.durability_note(_common.server_settings(url)))
    app, facts = build(url, args.offices, args.days)
    figure("slots: offices x services", f"{args.offices} x {len(SERVICES)}")
    figure("slots: materialised for the year", num(facts["slots"]))
    figure("slots: materialise time (s)", f"{facts['materialise_s']:.1f}")
    figure("slots: free (the rest made full)", num(facts["free"]))
    bench_search(app, url, args.searches, args.days)
    bench_bookings(app, url, args.clients, args.attempts, args.hot_slots, facts["residents"])


if __name__ == "__main__":
    main()
