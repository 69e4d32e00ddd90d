"""Pre-filing (issue 6): submit and the processing centre's queue with 100,000 pre-filings in PostgreSQL.

    python bench/prefiling.py [--prefilings 100000] [--residents 100000] [--url URL] [--requests 300]
                              [--reload]

Creates the database ``portal_bench_prefiling`` (a city of ``--residents`` from ``load_residents``,
then the pre-filings by COPY: a mix of the six catalogue procedures and of all statuses, over two
years, each with its history events), or reuses it when it was loaded with the same sizes, seed and
migration head (the figures are recorded on the database as in ``portal_pages.py``).

Timed, after a warm-up, in the same run:
  - submit, service level: ``create_draft`` + ``save`` + ``transition(→ submitted)`` + COMMIT,
    through the app's session; and, once the resident's pages exist, ``POST
    /me/prefilings/<id>/edit`` with ``action=submit`` (a certificate request started and pre-filled
    by ``POST /me/prefilings/start/…``, untimed; validation, save, submit, the PO box notice, the
    redirect: server time as in ``portal_pages.py``); limit for both: the same writes
    (INSERT pre-filing, UPDATE, UPDATE with the reservation number, 3 events) as raw SQL via psycopg
    in one transaction;
  - the centre's queue: ``GET /staff/prefilings`` when that page exists (a processing clerk logged
    in), else the page's query through the ORM (submitted, oldest first, 50+1 rows, resident and
    ward joined) — which one is printed; limit: the same query raw.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta

import _common
import load_residents
import psycopg
from _common import figure, num, percentile

DATABASE = "portal_bench_prefiling"
PREFILING_LOADER = 1
PROCEDURES = (  # code, share
    ("moving_in", 0.24),
    ("moving_out", 0.18),
    ("moving_within", 0.16),
    ("child_allowance", 0.08),
    ("seal_registration", 0.09),
    ("certificate_request", 0.25),
)
STATUSES = (  # status, share: most pre-filings of two years are done with
    ("completed", 0.66),
    ("withdrawn", 0.06),
    ("draft", 0.09),
    ("submitted", 0.08),
    ("correction_requested", 0.02),
    ("ready", 0.06),
    ("arrived", 0.03),
)
QUEUE_SQL = (  # the page's query: submitted, oldest first, one page (+1 to know there is more)
    "SELECT p.*, w.* FROM prefilings p JOIN residents r ON r.id = p.resident_id "
    "JOIN wards w ON w.id = r.ward_id WHERE p.status = %s ORDER BY p.submitted_at, p.id LIMIT 51"
)
EVENT_SQL = "INSERT INTO prefiling_events (prefiling_id, at, actor, action) VALUES (%s, %s, 'raw', '{}')"
PASSWORD = load_residents.BENCH_PASSWORD
PROCESSING_LOGIN = "bench-processing"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _values(code: str, rng: random.Random) -> dict:
    day = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if code in ("moving_in", "moving_out", "moving_within"):
        return {
            "moved_on": day,
            "address": f"本町{rng.randint(1, 9)}丁目{rng.randint(1, 30)}番{rng.randint(1, 20)}号",
            "members": [{"name": "山田 太郎", "relation": "child"}] * rng.randint(0, 3),
        }
    if code == "child_allowance":
        return {"children": rng.randint(1, 3), "bank": "0001", "account": f"{rng.randint(0, 9999999):07d}"}
    if code == "seal_registration":
        return {"seal_size_mm": rng.choice([10, 12, 15]), "guarantor": rng.random() < 0.3}
    return {"kind": rng.choice(["juminhyo", "kiroku"]), "copies": rng.randint(1, 3), "with_household": True}


def _choose(rng: random.Random, table) -> str:
    x, acc = rng.random(), 0.0
    for value, share in table:
        acc += share
        if x < acc:
            return value
    return table[-1][0]


def load_prefilings(url: str, n: int, seed: int) -> dict:
    from portal.prefiling.service import check_letter

    rng = random.Random(seed)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    with psycopg.connect(_common.libpq_url(url)) as conn:
        resident_ids = [r[0] for r in conn.execute("SELECT id FROM residents WHERE status = 'active'")]
        accounts = [r[0] for r in conn.execute("SELECT id FROM resident_accounts ORDER BY id")]
        numbers = rng.sample(range(10**8), n)
        rows, events = [], []
        for i in range(n):
            code = _choose(rng, PROCEDURES)
            status = _choose(rng, STATUSES)
            created = now - timedelta(seconds=rng.randint(600, 730 * 86400))
            submitted = ready = arrived = completed = None
            number = None
            history = [("created", created)]
            if status != "draft" and not (status == "withdrawn" and rng.random() < 0.5):
                submitted = created + timedelta(minutes=rng.randint(5, 600))
                digits = f"{numbers[i]:08d}"
                number = digits + check_letter(digits)
                history.append(("submitted", submitted))
            if status in ("ready", "arrived", "completed"):
                ready = (submitted or created) + timedelta(hours=rng.randint(1, 72))
                history.append(("ready", ready))
            if status in ("arrived", "completed"):
                arrived = ready + timedelta(days=rng.randint(0, 14))  # type: ignore[operator]
                history.append(("arrived", arrived))
            if status == "completed":
                completed = arrived + timedelta(minutes=rng.randint(3, 25))  # type: ignore[operator]
                history.append(("completed", completed))
            if status in ("withdrawn", "correction_requested"):
                history.append((status, (submitted or created) + timedelta(hours=rng.randint(1, 48))))
            updated = history[-1][1]
            if status in ("submitted", "correction_requested") and submitted:
                # the open queue is recent: weeks, not years
                submitted = now - timedelta(seconds=rng.randint(600, 21 * 86400))
                updated = submitted
            rid = rng.choice(resident_ids)
            data = json.dumps(_values(code, rng), ensure_ascii=False, sort_keys=True)
            rows.append(
                (
                    i + 1,
                    rid,
                    accounts[i % len(accounts)],
                    code,
                    1,
                    status,
                    data,
                    number,
                    created,
                    updated,
                    submitted,
                    ready,
                    arrived,
                    completed,
                    len(history),
                )
            )
            events.extend((i + 1, at, f"account:{accounts[i % len(accounts)]}", a) for a, at in history)
        with conn.cursor() as cur:
            with cur.copy(
                "COPY prefilings (id, resident_id, account_id, procedure_code, procedure_version, status, "
                "data, reservation_no, created_at, updated_at, submitted_at, ready_at, arrived_at, "
                "completed_at, version) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
            with cur.copy("COPY prefiling_events (prefiling_id, at, actor, action) FROM STDIN") as copy:
                for row in events:
                    copy.write_row(row)
            cur.execute("SELECT setval('prefilings_id_seq', %s)", (n,))
        conn.commit()
    seconds = time.perf_counter() - t0
    with psycopg.connect(_common.libpq_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE prefilings")
        conn.execute("VACUUM ANALYZE prefiling_events")
    return {"prefilings": n, "prefiling_events": len(events), "prefiling_seconds": seconds}


def ensure_database(server_url: str, residents: int, prefilings: int, seed: int, reload: bool) -> str:
    marker = _common.read_marker(server_url, DATABASE)
    wanted = {
        "loader": load_residents.LOADER_VERSION,
        "prefiling_loader": PREFILING_LOADER,
        "seed": seed,
        "revision": _common.alembic_head(),
        "residents": residents,
        "prefilings": prefilings,
    }
    if not reload and marker and all(marker.get(k) == v for k, v in wanted.items()):
        print(f"reusing database {DATABASE} ({num(residents)} residents, {num(prefilings)} pre-filings)")
        figure("load: pre-filings COPY (recorded)", f"{marker['prefiling_seconds']:.1f} s")
        return _common.database_url(server_url, DATABASE)
    url = load_residents.build(server_url, DATABASE, residents, seed=seed)
    loaded = load_prefilings(url, prefilings, seed)
    figure(
        f"load: {num(prefilings)} pre-filings + {num(loaded['prefiling_events'])} events COPY",
        f"{loaded['prefiling_seconds']:.1f} s",
    )
    marker = {**(_common.read_marker(server_url, DATABASE) or {}), **wanted, **loaded}
    _common.write_marker(url, DATABASE, marker)
    return url


SUBMIT_EXTRA = {  # what the register cannot pre-fill in a certificate request
    "phone": "043-123-4567",
    "certificate_type": "copy",
    "scope": "self",
    "copies": "1",
    "purpose": "employment",
    "purpose_detail": "勤務先への提出",
}


def _resident_pages(app) -> bool:
    """The resident's pre-filing pages, registered here when the factory does not yet."""
    if not any(rule.rule.startswith("/me/prefilings") for rule in app.url_map.iter_rules()):
        try:
            from portal.prefiling import views

            views.init_app(app)
        except Exception as exc:
            print(f"note: the resident's pre-filing pages cannot be registered ({type(exc).__name__})")
    return any(rule.rule == "/me/prefilings/<int:prefiling_id>/edit" for rule in app.url_map.iter_rules())


def _submit_over_http(app, n: int, warmup: int) -> list[float]:
    """POST /me/prefilings/<id>/edit with action=submit (a certificate request started and
    pre-filled by POST /me/prefilings/start/…, untimed); server time of the submit only."""
    from portal_pages import ServerTimer, csrf_from, login

    from portal.extensions import db
    from portal.prefiling import service
    from portal.prefiling.models import PreFiling

    timer = app.wsgi_app if isinstance(app.wsgi_app, ServerTimer) else ServerTimer(app.wsgi_app)
    app.wsgi_app = timer
    client = app.test_client()
    login(client, "/login", {"email": load_residents.ACCOUNT_EMAIL.format(1), "password": PASSWORD})
    token = csrf_from(client.get("/me/prefilings/").get_data(as_text=True))
    samples = []
    for i in range(warmup + n):
        resp = client.post("/me/prefilings/start/certificate_request", data={"csrf_token": token})
        if resp.status_code != 302:
            raise RuntimeError(f"start: HTTP {resp.status_code}")
        edit = resp.headers["Location"].split("://", 1)[-1]
        edit = edit[edit.index("/") :] if not edit.startswith("/") else edit
        pid = int(edit.rstrip("/").split("/")[-2])
        with app.app_context():
            p = db.session.get(PreFiling, pid)
            values, version = service.values(p), p.version
            db.session.remove()
        form = {k: ("y" if v is True else str(v)) for k, v in values.items() if v not in (None, False, [])}
        form.update(SUBMIT_EXTRA, csrf_token=token, version=str(version), action="submit")
        resp = client.post(edit, data=form)
        if resp.status_code != 302 or "/edit" in resp.headers.get("Location", "/edit"):
            raise RuntimeError(f"submit: HTTP {resp.status_code} {resp.get_data(as_text=True)[:300]}")
        if i >= warmup:
            samples.append(timer.last)
    return samples


def bench_submit(app, raw: psycopg.Connection, n: int, warmup: int) -> None:
    from portal.extensions import db
    from portal.prefiling import service

    resident_id, account_id = raw.execute(
        "SELECT resident_id, id FROM resident_accounts WHERE resident_id IS NOT NULL ORDER BY id LIMIT 1"
    ).fetchone()
    http = _submit_over_http(app, n, warmup) if _resident_pages(app) else None
    if http is None:
        print("note: the resident's pages have not landed; submit timed at the service level only")
    name = "submit (service level)"
    samples = []
    with app.app_context():
        for i in range(warmup + n):
            t0 = time.perf_counter()
            p = service.create_draft(
                resident_id=resident_id,
                account_id=account_id,
                code="moving_in",
                version=1,
                data={"moved_on": "2026-12-01"},
            )
            service.save(
                p,
                {"moved_on": "2026-12-01", "address": "本町1丁目1番1号"},
                expected_version=p.version,
                actor=f"account:{account_id}",
            )
            service.transition(p, "submitted", actor=f"account:{account_id}")
            db.session.commit()
            if i >= warmup:
                samples.append(time.perf_counter() - t0)
        db.session.remove()
    raw_samples = []
    now = datetime.now(UTC)
    for i in range(warmup + n):
        t0 = time.perf_counter()
        with raw.transaction():
            pid = raw.execute(
                "INSERT INTO prefilings (resident_id, account_id, procedure_code, procedure_version, status, "
                "data, created_at, updated_at, version) "
                "VALUES (%s, %s, 'moving_in', 1, 'draft', %s, %s, %s, 1) "
                "RETURNING id",
                (resident_id, account_id, '{"moved_on":"2026-12-01"}', now, now),
            ).fetchone()[0]
            raw.execute(
                EVENT_SQL.format("created"),
                (pid, now),
            )
            raw.execute(
                "UPDATE prefilings SET data = %s, updated_at = %s, version = 2 WHERE id = %s AND version = 1",
                ('{"address":"本町1丁目1番1号","moved_on":"2026-12-01"}', now, pid),
            )
            raw.execute(
                EVENT_SQL.format("saved"),
                (pid, now),
            )
            number = f"R{i:08d}"[-9:]
            raw.execute("SELECT id FROM prefilings WHERE reservation_no = %s", (number,)).fetchall()
            raw.execute(
                "UPDATE prefilings SET status = 'submitted', submitted_at = %s, reservation_no = %s, "
                "updated_at = %s, version = 3 WHERE id = %s AND version = 2",
                (now, f"X{pid:08d}"[-12:], now, pid),
            )
            raw.execute(
                "INSERT INTO prefiling_events (prefiling_id, at, actor, action) "
                "VALUES (%s, %s, 'raw', 'submitted')",
                (pid, now),
            )
        if i >= warmup:
            raw_samples.append(time.perf_counter() - t0)
    report(name, samples, raw_samples, "same writes raw")
    if http is not None:
        report("submit: POST /me/prefilings/<id>/edit action=submit", http, raw_samples, "same writes raw")


def report(name: str, samples: list[float], raw_samples: list[float], limit: str) -> None:
    p50, p95 = percentile(samples, 50), percentile(samples, 95)
    r50, r95 = percentile(raw_samples, 50), percentile(raw_samples, 95)
    figure(f"{name} p50", ms(p50))
    figure(f"{name} p95", ms(p95))
    figure(f"limit {name}: {limit} p50", ms(r50))
    figure(f"limit {name}: {limit} p95", ms(r95))
    figure(f"ratio {name}: p50 / raw p50", f"{p50 / r50:.1f}")
    figure(f"ratio {name}: p95 / raw p95", f"{p95 / r95:.1f}")


def _queue_page_exists(app) -> bool:
    """The staff queue page, registered here when the factory does not register it yet."""
    if not any(rule.rule == "/staff/prefilings" for rule in app.url_map.iter_rules()):
        try:
            from portal.prefiling import staff_views

            staff_views.init_app(app)
        except Exception as exc:
            print(f"note: the staff queue page cannot be registered ({type(exc).__name__})")
    return any(rule.rule == "/staff/prefilings" for rule in app.url_map.iter_rules())


def bench_queue(app, raw: psycopg.Connection, n: int, warmup: int) -> None:
    from portal_pages import ServerTimer, login

    samples = []
    if _queue_page_exists(app):
        from portal.accounts import service as accounts
        from portal.extensions import db

        with app.app_context():
            try:
                accounts.create_staff(PROCESSING_LOGIN, "審査 二郎", "事務センター", ["processing"], PASSWORD)
                db.session.commit()
            except Exception:
                db.session.rollback()
        timer = ServerTimer(app.wsgi_app)
        app.wsgi_app = timer
        staff = app.test_client()
        login(staff, "/staff/login", {"login_id": PROCESSING_LOGIN, "password": PASSWORD})
        name = "queue: GET /staff/prefilings"
        for i in range(warmup + n):
            resp = staff.get("/staff/prefilings")
            if resp.status_code != 200 or (i == 0 and "<table" not in resp.get_data(as_text=True)):
                raise RuntimeError(f"GET /staff/prefilings: HTTP {resp.status_code}")
            if i >= warmup:
                samples.append(timer.last)
    else:
        from sqlalchemy import select

        from portal.extensions import db
        from portal.prefiling.models import PreFiling
        from portal.registry.models import Resident, Ward

        print("note: /staff/prefilings has not landed; timing the queue's query through the ORM instead")
        name = "queue (ORM query)"
        with app.app_context():
            for i in range(warmup + n):
                t0 = time.perf_counter()
                rows = db.session.execute(
                    select(PreFiling, Ward)
                    .join(Resident, Resident.id == PreFiling.resident_id)
                    .join(Ward, Ward.id == Resident.ward_id)
                    .where(PreFiling.status == "submitted")
                    .order_by(PreFiling.submitted_at, PreFiling.id)
                    .limit(51)
                ).all()
                assert rows
                db.session.rollback()
                if i >= warmup:
                    samples.append(time.perf_counter() - t0)
    raw_samples = []
    for i in range(warmup + n):
        t0 = time.perf_counter()
        raw.execute(QUEUE_SQL, ("submitted",)).fetchall()
        if i >= warmup:
            raw_samples.append(time.perf_counter() - t0)
    queued = raw.execute("SELECT count(*) FROM prefilings WHERE status = 'submitted'").fetchone()[0]
    figure("queue: pre-filings waiting (status submitted)", num(queued))
    report(name, samples, raw_samples, "queue query raw")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefilings", type=int, default=100_000)
    parser.add_argument("--residents", type=int, default=100_000)
    parser.add_argument(
        "--url", default=_common.default_server_url(), help="PostgreSQL server ($TEST_POSTGRES_URL)"
    )
    parser.add_argument("--requests", type=int, default=300, help="timed operations of each kind (300)")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--reload", action="store_true")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error('no --url and no TEST_POSTGRES_URL: run eval "$(bash scripts/services.sh)" first')
    url = ensure_database(args.url, args.residents, args.prefilings, args.seed, args.reload)
    from portal.extensions import db
    from wsgi import create_app

    app = create_app({"NAME": "test", "SQLALCHEMY_DATABASE_URI": url, "RATELIMIT_ENABLED": False})
    _queue_page_exists(app), _resident_pages(app)  # register the pages before the first request
    with psycopg.connect(_common.libpq_url(url), autocommit=True) as raw:
        total = raw.execute("SELECT count(*) FROM prefilings").fetchone()[0]
        figure("pre-filings in the database", num(total))
        bench_queue(app, raw, args.requests, args.warmup)
        bench_submit(app, raw, args.requests, args.warmup)
        # the timed submits are removed again, so a reused database stays at its recorded size
        raw.execute("DELETE FROM prefiling_events WHERE prefiling_id > %s", (args.prefilings,))
        raw.execute("DELETE FROM prefilings WHERE id > %s", (args.prefilings,))
    with app.app_context():
        db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
