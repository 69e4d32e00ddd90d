"""Fan-out of a notice to a whole city, and the inbox page over 10,000,000 deliveries (PostgreSQL).

    python bench/fanout.py [--residents 1000000] [--url URL] [--deliveries 10000000] [--requests 300]

Reuses (or loads) ``portal_bench`` as ``portal_pages.py`` does. Then:

1. **Fan-out.** ``service.fan_out`` of an approved notice with the rule ``{}`` (every active resident),
   timed end to end (the app's batches of INSERT … SELECT … ON CONFLICT DO NOTHING, one commit per
   batch, the final count), as recipients/s. The limit, in the same run: one raw ``INSERT … SELECT``
   of the same rows (``SELECT <notice>, id, now() FROM residents WHERE status = 'active'``) into a
   scratch table made ``LIKE deliveries`` with the same indexes, unique key and foreign keys, then
   dropped.
2. **Inbox.** The deliveries table is filled up to ``--deliveries`` rows (bulk notices, each to every
   resident in id order, the last one to a part; created over a year, about 60 % read) with one
   ``INSERT … SELECT`` over ``generate_series`` inside one transaction that drops and re-creates the
   table's secondary indexes and foreign keys (as ``pg_restore`` does), then ``VACUUM (ANALYZE)``.
   The filled rows are kept and reused by the next run; a run first deletes the previous run's
   fan-out notice, so the table holds ``--deliveries`` rows again after each run. A bench resident
   (an account holder with children: household proxy) logs in and ``GET /me/notices`` is timed,
   with its main query raw and all its queries replayed raw as the limits (``portal_pages.py``).
"""

from __future__ import annotations

import argparse
import sys
import time

import _common
import load_residents
import portal_pages
import psycopg
from _common import figure, num
from portal_pages import QueryLog, ServerTimer, login, report_page, time_page, time_raw, time_replay

FANOUT_AUTHOR = "bench-fanout"
BULK_AUTHOR = "bench-bulk"
SCRATCH = "bench_fanout_raw"
INBOX_SQL = (
    "SELECT d.id, d.notice_id, d.resident_id, d.created_at, d.read_at, d.read_by_account, n.id, n.category, "
    "n.title_ja, n.title_en, n.body_ja, n.body_en, n.rule, n.reply_kind, n.reply_options, n.reply_deadline, "
    "n.status, n.send_at, n.created_by, n.created_at, n.approved_by, n.approved_at, n.cancelled_by, "
    "n.cancelled_at, n.sent_at, n.targeted, n.trigger_key "
    "FROM deliveries d JOIN notices n ON n.id = d.notice_id WHERE d.resident_id = ANY(%s) "
    "ORDER BY d.read_at IS NOT NULL, d.created_at DESC, d.id DESC LIMIT 100"
)
RAW_FANOUT_SQL = (
    "INSERT INTO bench_fanout_raw (notice_id, resident_id, created_at) "
    "SELECT %s, id, now() FROM residents WHERE status = 'active'"
)


def remove_previous_fanouts(raw: psycopg.Connection) -> int:
    """The previous runs' fan-out notices and their deliveries; the scratch table."""
    raw.execute(f"DROP TABLE IF EXISTS {SCRATCH}")
    ids = [r[0] for r in raw.execute("SELECT id FROM notices WHERE created_by = %s", (FANOUT_AUTHOR,))]
    if not ids:
        return 0
    deleted = raw.execute("DELETE FROM deliveries WHERE notice_id = ANY(%s)", (ids,)).rowcount
    raw.execute("DELETE FROM notices WHERE id = ANY(%s)", (ids,))
    return deleted


def _secondary_definitions(conn: psycopg.Connection) -> tuple[list[tuple[str, str]], list[str]]:
    constraints = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'deliveries'::regclass AND contype IN ('f', 'u') ORDER BY contype DESC, conname"
    ).fetchall()
    indexes = [
        r[0]
        for r in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'deliveries' AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = 'deliveries'::regclass)"
        )
    ]
    return constraints, indexes


def fill_deliveries(raw: psycopg.Connection, target: int, reserved: int, residents: int) -> tuple[int, float]:
    """Bulk rows so that the table holds ``target`` once a fan-out of ``reserved`` rows is added.
    Returns (rows added, seconds); (0, 0) when the bulk rows are already there."""
    bulk = max(target - reserved, 0)
    have = raw.execute(
        "SELECT count(*) FROM deliveries d JOIN notices n ON n.id = d.notice_id WHERE n.created_by = %s",
        (BULK_AUTHOR,),
    ).fetchone()[0]
    if have == bulk:
        return 0, 0.0
    t0 = time.perf_counter()
    with raw.transaction():
        old = [r[0] for r in raw.execute("SELECT id FROM notices WHERE created_by = %s", (BULK_AUTHOR,))]
        if old:
            raw.execute("DELETE FROM deliveries WHERE notice_id = ANY(%s)", (old,))
            raw.execute("DELETE FROM notices WHERE id = ANY(%s)", (old,))
        top = raw.execute("SELECT max(id) FROM residents").fetchone()[0]
        count = -(-bulk // top)  # notices, each to residents 1..top in id order (the last to part)
        notice_ids = [
            raw.execute(
                "INSERT INTO notices (category, title_ja, title_en, body_ja, body_en, rule, reply_kind, "
                "reply_options, status, send_at, created_by, created_at, approved_by, approved_at, sent_at, "
                "targeted) VALUES (%s, %s, %s, %s, %s, '{}', 'none', '[]', 'sent', now() - %s * interval "
                "'1 day', %s, now() - %s * interval '1 day', 'bench-approver', now(), "
                "now() - %s * interval '1 day', %s) RETURNING id",
                (
                    ("tax", "health", "event", "disaster", "care", "child")[k % 6],
                    f"市からのお知らせ {k + 1}",
                    f"News from the city {k + 1}",
                    "{name}さん、市からのお知らせです。",
                    "Dear {name}, news from the city.",
                    (count - k) * 36,
                    BULK_AUTHOR,
                    (count - k) * 36,
                    (count - k) * 36,
                    top,
                ),
            ).fetchone()[0]
            for k in range(count)
        ]
        constraints, indexes = _secondary_definitions(raw)
        for name, _ in constraints:
            raw.execute(f"ALTER TABLE deliveries DROP CONSTRAINT {name}")
        for definition in indexes:
            raw.execute("DROP INDEX " + definition.split(" INDEX ", 1)[1].split(" ON ", 1)[0])
        raw.execute(
            "INSERT INTO deliveries (notice_id, resident_id, created_at, read_at) "
            "SELECT n.id, r, n.created_at + (r %% 600) * interval '1 minute', "
            "CASE WHEN (r * 7 + k) %% 10 < 6 THEN n.created_at + interval '2 days' END "
            "FROM unnest(%s::int[]) WITH ORDINALITY AS n0(id, k) JOIN notices n ON n.id = n0.id "
            "CROSS JOIN LATERAL "
            "generate_series(1, LEAST(%s::bigint, %s::bigint - (k - 1) * %s::bigint)) AS r",
            (notice_ids, top, bulk, top),
        )
        raw.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for definition in indexes:
            raw.execute(definition)
        for name, definition in constraints:
            raw.execute(f"ALTER TABLE deliveries ADD CONSTRAINT {name} {definition}")
    raw.execute("SELECT setval('deliveries_id_seq', (SELECT max(id) FROM deliveries))")
    raw.execute("VACUUM (ANALYZE) deliveries")
    raw.execute("VACUUM (ANALYZE) notices")
    return bulk, time.perf_counter() - t0


def bench_fanout(app, raw: psycopg.Connection) -> int:
    from portal.extensions import db
    from portal.notices import service
    from portal.notices.models import Notice

    # (Also the warm-up: the residents table read once before either timing.)
    active = raw.execute("SELECT count(*) FROM residents WHERE status = 'active'").fetchone()[0]
    # The limit: the same rows, one INSERT … SELECT, into a table like deliveries (empty).
    raw.execute(
        f"CREATE TABLE {SCRATCH} (LIKE deliveries INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)"
    )
    for name, definition in _secondary_definitions(raw)[0]:
        if definition.startswith("FOREIGN KEY"):
            raw.execute(f"ALTER TABLE {SCRATCH} ADD CONSTRAINT {name}_raw {definition}")
    with app.app_context():
        notice = Notice(
            category="event",
            title_ja="市民まつりのご案内",
            title_en="City festival",
            body_ja="{name}さん、市民まつりのご案内です。",
            body_en="Dear {name}, you are invited to the city festival.",
            rule="{}",
            status="approved",
            created_by=FANOUT_AUTHOR,
            approved_by="bench-approver",
        )
        db.session.add(notice)
        db.session.commit()
        notice_id = notice.id
    t0 = time.perf_counter()
    raw_rows = raw.execute(RAW_FANOUT_SQL, (notice_id,)).rowcount
    raw_seconds = time.perf_counter() - t0
    raw.execute(f"DROP TABLE {SCRATCH}")
    with app.app_context():
        t0 = time.perf_counter()
        total = service.fan_out(notice_id)
        seconds = time.perf_counter() - t0
    if total != active or raw_rows != active:
        raise RuntimeError(f"fan-out reached {total}, raw {raw_rows}, active residents {active}")
    rate, raw_rate = total / seconds, raw_rows / raw_seconds
    figure("fan-out: recipients (rule {}, every active resident)", num(total))
    figure("fan-out: service.fan_out time", f"{seconds:.1f} s")
    figure("fan-out: rate", f"{num(rate)} recipients/s")
    figure(
        "limit fan-out: one raw INSERT … SELECT into a like table",
        f"{num(raw_rate)} rows/s ({raw_seconds:.1f} s)",
    )
    figure(
        "ratio fan-out: rate / raw INSERT … SELECT rate", f"{rate / raw_rate:.2f} (goal ≥ 0.5, under 60 s)"
    )
    return total


def bench_inbox(app, raw: psycopg.Connection, requests: int, warmup: int) -> None:
    from portal.extensions import db
    from portal.notices import service
    from portal.registry.models import Resident

    if "notices.inbox" not in app.view_functions:  # until the factory registers the PO box pages
        from portal.notices import views

        views.init_app(app)
    timer = ServerTimer(app.wsgi_app)
    app.wsgi_app = timer
    log = QueryLog()
    with app.app_context():
        log.attach(db.engine)
    email = load_residents.ACCOUNT_EMAIL.format(1)
    resident_id = raw.execute(
        "SELECT resident_id FROM resident_accounts WHERE email = %s", (email,)
    ).fetchone()[0]
    with app.app_context():
        ids = service.visible_resident_ids(db.session.get(Resident, resident_id))
        db.session.remove()
    rows = raw.execute("SELECT count(*) FROM deliveries WHERE resident_id = ANY(%s)", (ids,)).fetchone()[0]
    client = app.test_client()
    login(client, "/login", {"email": email, "password": load_residents.BENCH_PASSWORD})
    print(
        f"resident #{resident_id} logged in; sees {len(ids)} residents' notices (household proxy), "
        f"{rows} deliveries"
    )
    samples, sql, statements = time_page(
        client, timer, log, "/me/notices/", requests, warmup, "市からのお知らせ"
    )
    raw_main = time_raw(raw, INBOX_SQL, (ids,), requests)
    raw_all = time_replay(raw, statements, requests)
    report_page("GET /me/notices/", samples, sql, raw_main, raw_all, statements)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=1_000_000, help="city size (1,000,000)")
    parser.add_argument("--url", default=_common.default_server_url(), help="PostgreSQL server URL")
    parser.add_argument("--database", default=_common.BENCH_DB)
    parser.add_argument("--deliveries", type=int, default=10_000_000, help="rows in deliveries (10,000,000)")
    parser.add_argument("--requests", type=int, default=300, help="timed inbox requests (300)")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--reload", action="store_true", help="load the city again even if it matches")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error('no --url and no TEST_POSTGRES_URL: run eval "$(bash scripts/services.sh)" first')

    url = portal_pages.ensure_database(args.url, args.database, args.residents, args.seed, args.reload)
    from portal.extensions import db
    from wsgi import create_app

    app = create_app({"NAME": "test", "SQLALCHEMY_DATABASE_URI": url, "RATELIMIT_ENABLED": False})
    with psycopg.connect(_common.libpq_url(url), autocommit=True) as raw:
        removed = remove_previous_fanouts(raw)
        if removed:
            raw.execute("VACUUM (ANALYZE) deliveries")
            print(f"removed the previous run's fan-out ({num(removed)} deliveries)")
        active = raw.execute("SELECT count(*) FROM residents WHERE status = 'active'").fetchone()[0]
        top = raw.execute("SELECT max(id) FROM residents").fetchone()[0]
        added, seconds = fill_deliveries(raw, args.deliveries, active, top)
        if added:
            figure(
                "setup: bulk deliveries (generate_series, indexes rebuilt)",
                f"{num(added)} rows in {seconds:.1f} s",
            )
        else:
            print(f"reusing the bulk deliveries ({num(args.deliveries - active)} rows)")

        bench_fanout(app, raw)
        raw.execute("ANALYZE deliveries")
        total = raw.execute("SELECT count(*) FROM deliveries").fetchone()[0]
        figure("inbox: rows in deliveries", num(total))
        bench_inbox(app, raw, args.requests, args.warmup)
        print(f"(left in {args.database} for the next run: {num(total)} deliveries; ms = milliseconds)")
    with app.app_context():
        db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
