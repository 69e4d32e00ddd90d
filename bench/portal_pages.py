"""Server time of the resident's pages over a city of N residents on PostgreSQL.

    python bench/portal_pages.py [--residents 1000000] [--url URL] [--requests 300] [--reload]

Creates the database ``portal_bench`` and loads it with ``load_residents`` (or reuses it when it was
already loaded with the same N, seed and migration head), then drives the real app (``wsgi.
create_app``) with the Flask test client: a resident logs in (CSRF token taken from the login page),
and GET ``/me/`` (home) and GET ``/me/access-history`` are timed, after a warm-up. Server time is
measured around the WSGI call, from the request entering the app to the last byte of the body.

Limits measured in the same run, on the same server:
  - the raw SQL round trip of each page's main query (psycopg, no ORM), and
  - every query the page ran, replayed raw (what the database alone costs the page).
A counter's staff name search (``/staff/residents?q=…&purpose=identity_check``) is timed too.
"""

from __future__ import annotations

import argparse
import re
import sys
import time

import _common
import load_residents
import psycopg
from _common import figure, num, percentile
from sqlalchemy import event

# Name searches a counter clerk types: family name in kanji, full name, kana (hiragana and
# half-width katakana, which the search folds), and a given name.
STAFF_LOGIN = load_residents.STAFF[0][0]  # a counter clerk
SEARCHES = ("山田", "山田花子", "やまだ", "ﾔﾏﾀﾞﾊﾅｺ", "はなこ", "佐々木", "たなかけん")
HOME_SQL = (
    "SELECT id, atena_no, family_name, given_name, family_name_kana, given_name_kana, name_search, "
    "birth_date, sex, ward_id, address_id, household_id, relationship_to_head, status, moved_in_on, "
    "moved_out_on, deceased_on, pregnancy_due_on, care_level, disability_certificate, disability_grade "
    "FROM residents WHERE id = %s"
)
HISTORY_SQL = (
    "SELECT id, at, resident_id, actor_kind, actor_id, actor_role, organisation, terminal_id, data_items, "
    "purpose, prev_hash, row_hash FROM access_records WHERE resident_id = %s "
    "ORDER BY at DESC, id DESC LIMIT 200"
)
SEARCH_SQL = "SELECT * FROM residents WHERE name_search LIKE %s ESCAPE '\\' ORDER BY name_search, id LIMIT 50"


class ServerTimer:
    """WSGI middleware: the time from the request entering the app to the body being produced and
    the response closed (the app's own teardown included)."""

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app
        self.last = 0.0

    def __call__(self, environ, start_response):
        t0 = time.perf_counter()
        result = self.wsgi_app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        self.last = time.perf_counter() - t0
        return [body]


class QueryLog:
    """Statements the app sends during one request (to count them and replay them raw)."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, object]] = []
        self.durations: list[float] = []
        self._t0 = 0.0

    def attach(self, engine) -> None:
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.statements.append((statement, parameters))
        self._t0 = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.durations.append(time.perf_counter() - self._t0)

    @property
    def seconds(self) -> float:
        return sum(self.durations)

    def seconds_where(self, test) -> float:
        return sum(d for (s, _), d in zip(self.statements, self.durations, strict=False) if test(s))

    def reset(self) -> None:
        self.statements = []
        self.durations = []


def csrf_from(html: str) -> str:
    m = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    if not m:
        raise RuntimeError("no CSRF token in the page")
    return m.group(1)


def login(client, page: str, data: dict) -> None:
    token = csrf_from(client.get(page).get_data(as_text=True))
    resp = client.post(page, data={"csrf_token": token, **data})
    if resp.status_code != 302:
        raise RuntimeError(f"login at {page} failed: HTTP {resp.status_code}")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def stats(samples: list[float]) -> tuple[float, float]:
    return percentile(samples, 50), percentile(samples, 95)


def time_page(client, timer: ServerTimer, log: QueryLog, path: str, n: int, warmup: int, expect: str):
    """Server times of ``n`` GETs of ``path`` after ``warmup``; the queries of the last one."""
    for _ in range(warmup):
        resp = client.get(path)
        if resp.status_code != 200 or expect not in resp.get_data(as_text=True):
            raise RuntimeError(f"GET {path}: HTTP {resp.status_code}, or the page lacks {expect!r}")
    samples, sql = [], []
    for _ in range(n):
        log.reset()
        resp = client.get(path)
        if resp.status_code != 200:
            raise RuntimeError(f"GET {path}: HTTP {resp.status_code}")
        samples.append(timer.last)
        sql.append(log.seconds)
    return samples, sql, list(log.statements)


def time_raw(
    conn: psycopg.Connection, sql: str, params, n: int, warmup: int = 20, prepare: bool | None = None
) -> list[float]:
    """Round trips of one statement through psycopg (by default prepared after a few runs, as the
    app's are; ``prepare=False`` plans each run for its own parameters)."""
    out = []
    for i in range(warmup + n):
        t0 = time.perf_counter()
        conn.execute(sql, params, prepare=prepare).fetchall()
        if i >= warmup:
            out.append(time.perf_counter() - t0)
    return out


def time_replay(conn: psycopg.Connection, statements, n: int, warmup: int = 20) -> list[float]:
    """All of a page's statements, replayed raw in one transaction, rolled back (reads only here)."""
    out = []
    for i in range(warmup + n):
        t0 = time.perf_counter()
        with conn.transaction(force_rollback=True):
            for sql, params in statements:
                cur = conn.execute(sql, params or None)
                if cur.description is not None:
                    cur.fetchall()
        if i >= warmup:
            out.append(time.perf_counter() - t0)
    return out


def bench_search(app, timer: ServerTimer, log: QueryLog, raw: psycopg.Connection, rounds: int) -> None:
    """A counter clerk's name searches, each term ``rounds`` times (after one untimed round)."""
    from portal.registry.names import normalise
    from portal.registry.service import escape_like

    staff = app.test_client()
    login(staff, "/staff/login", {"login_id": STAFF_LOGIN, "password": load_residents.BENCH_PASSWORD})
    samples, like_app, writes, records, raw_mix = [], [], [], [], []
    per_term: dict[str, list[float]] = {q: [] for q in SEARCHES}
    for r in range(rounds + 1):
        for q in SEARCHES:
            log.reset()
            resp = staff.get("/staff/residents", query_string={"q": q, "purpose": "identity_check"})
            if resp.status_code != 200:
                raise RuntimeError(f"staff search: HTTP {resp.status_code}")
            if r == 0:
                continue
            samples.append(timer.last)
            per_term[q].append(timer.last)
            like_app.append(log.seconds_where(lambda s: " LIKE " in s))
            writes.append(log.seconds_where(lambda s: " LIKE " not in s))
            records.append(sum(1 for s, _ in log.statements if s.lstrip().startswith("INSERT")))
    for q in SEARCHES:
        pattern = f"%{escape_like(normalise(q))}%"
        like_raw = time_raw(raw, SEARCH_SQL, (pattern,), 5, warmup=1, prepare=False)
        plan = raw.execute("EXPLAIN " + SEARCH_SQL, (pattern,)).fetchall()
        scan = (
            next((p[0] for p in plan if "Scan" in p[0]), "?")
            .split("(cost")[0]
            .strip(" ->")
            .replace(" on residents", "")
        )
        raw_mix += [percentile(like_raw, 50)] * len(per_term[q])
        figure(
            f"search q={q}: server p50 / raw LIKE p50",
            f"{ms(percentile(per_term[q], 50))} / {ms(percentile(like_raw, 50))}  [{scan}]",
        )
    p50, p95 = stats(samples)
    name = "search: GET /staff/residents?q=…&purpose=identity_check"
    figure(f"{name} p50", ms(p50))
    figure(f"{name} p95", ms(p95))
    figure("search: access records written per search (mean)", f"{sum(records) / len(records):.0f}")
    figure("search: time in the LIKE query (app side) p50", ms(percentile(like_app, 50)))
    figure("search: time in the other queries (access records) p50", ms(percentile(writes, 50)))
    figure("limit search: raw LIKE query of the same terms p50", ms(percentile(raw_mix, 50)))
    figure("ratio search: p50 / raw LIKE p50", f"{p50 / percentile(raw_mix, 50):.1f}")


def ensure_database(server_url: str, database: str, n: int, seed: int, reload: bool) -> str:
    marker = _common.read_marker(server_url, database)
    wanted = {"loader": load_residents.LOADER_VERSION, "seed": seed, "revision": _common.alembic_head()}
    if (
        not reload
        and marker
        and marker.get("residents") == n
        and all(marker.get(k) == v for k, v in wanted.items())
    ):
        url = _common.database_url(server_url, database)
        print(f"reusing database {database} (already loaded with {num(n)} residents; --reload to redo)")
        load_residents.print_report(
            load_residents.LoadReport.from_marker(marker),
            settings=_common.server_settings(url),
            recorded=True,
        )
        return url
    return load_residents.build(server_url, database, n, seed=seed)


def report_page(name: str, samples, sql, raw_main, raw_all, statements) -> None:
    p50, p95 = stats(samples)
    m50, m95 = stats(raw_main)
    a50, _ = stats(raw_all)
    figure(f"{name}: server time p50", ms(p50))
    figure(f"{name}: server time p95", ms(p95))
    figure(f"{name}: queries per request", str(len(statements)))
    figure(f"{name}: time in SQL (app side) p50", ms(stats(sql)[0]))
    figure(f"limit {name}: main query raw round trip p50", ms(m50))
    figure(f"limit {name}: main query raw round trip p95", ms(m95))
    figure(f"limit {name}: all its queries replayed raw p50", ms(a50))
    figure(f"ratio {name}: p50 / main query raw p50", f"{p50 / m50:.1f}")
    figure(f"ratio {name}: p95 / main query raw p95", f"{p95 / m95:.1f}")
    figure(f"ratio {name}: p50 / all queries raw p50", f"{p50 / a50:.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=1_000_000, help="city size (1,000,000)")
    parser.add_argument(
        "--url", default=_common.default_server_url(), help="PostgreSQL server URL ($TEST_POSTGRES_URL)"
    )
    parser.add_argument("--database", default=_common.BENCH_DB)
    parser.add_argument("--requests", type=int, default=300, help="timed requests per page (300)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed requests per page first (30)")
    parser.add_argument(
        "--search-rounds", type=int, default=5, help=f"timed rounds of the {len(SEARCHES)} staff searches (5)"
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--reload", action="store_true", help="load again even if the database matches")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error('no --url and no TEST_POSTGRES_URL: run eval "$(bash scripts/services.sh)" first')

    url = ensure_database(args.url, args.database, args.residents, args.seed, args.reload)
    from portal.extensions import db
    from wsgi import create_app

    app = create_app({"NAME": "test", "SQLALCHEMY_DATABASE_URI": url, "RATELIMIT_ENABLED": False})
    timer = ServerTimer(app.wsgi_app)
    app.wsgi_app = timer
    log = QueryLog()
    with app.app_context():
        log.attach(db.engine)

    with psycopg.connect(_common.libpq_url(url), autocommit=True) as raw:
        email = load_residents.ACCOUNT_EMAIL.format(1)
        resident_id, family, given = raw.execute(
            "SELECT r.id, r.family_name, r.given_name FROM resident_accounts a "
            "JOIN residents r ON r.id = a.resident_id WHERE a.email = %s",
            (email,),
        ).fetchone()
        history_rows = raw.execute(
            "SELECT count(*) FROM access_records WHERE resident_id = %s", (resident_id,)
        ).fetchone()[0]

        resident = app.test_client()
        login(resident, "/login", {"email": email, "password": load_residents.BENCH_PASSWORD})
        print(f"resident #{resident_id} logged in; {min(history_rows, 200)} access-history rows shown")
        pages = (
            ("GET /me/", "/me/", f"{family} {given}", HOME_SQL),
            ("GET /me/access-history", "/me/access-history", "<table", HISTORY_SQL),
        )
        for name, path, expect, main_sql in pages:
            samples, sql, statements = time_page(
                resident, timer, log, path, args.requests, args.warmup, expect
            )
            raw_main = time_raw(raw, main_sql, (resident_id,), args.requests)
            raw_all = time_replay(raw, statements, args.requests)
            report_page(name, samples, sql, raw_main, raw_all, statements)

        bench_search(app, timer, log, raw, args.search_rounds)
    with app.app_context():
        db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
