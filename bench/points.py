"""Partner API throughput: award and redeem requests per second through gunicorn (2 workers) on
PostgreSQL, with p95 latency, against a raw SQL transaction doing the same writes (account row
lock, lots, entry, lot moves, idempotency row) from the same number of client threads, in the same
run. Prints the ratio API / raw SQL (goal ≥ 0.3).

    eval "$(bash scripts/services.sh)"
    .venv/bin/python bench/points.py [--requests 2000] [--members 200] [--threads 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta

from _common import (
    ROOT,
    durability_note,
    figure,
    libpq_url,
    num,
    percentile,
    recreate_database,
    server_settings,
)

DB = "points_bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup(url: str, members: int) -> tuple[str, str, list[str]]:
    """Migrate, then one partner with an API client and ``members`` opted-in residents holding
    plenty of points (several lots each, so redeems walk more than one lot)."""
    from flask_migrate import upgrade

    from portal.extensions import db
    from portal.points import ledger, oauth, partners
    from portal.points.models import Partner
    from tests.factories import make_resident
    from wsgi import create_app

    app = create_app({"NAME": "test", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        partner = Partner(code="bench", name="ベンチ商店", holding_days=0)
        db.session.add(partner)
        db.session.flush()
        client, secret = oauth.new_client(partner, ["read", "award", "redeem"])
        ids = []
        for i in range(members):
            person = make_resident(given=f"花子{i}")
            for _ in range(3):
                ledger.earn(person.id, 1_000_000, source="rule", actor="bench")
            ids.append(partners.opt_in(person.id, partner.id).member_id)
        db.session.commit()
        client_id = client.client_id
        db.engine.dispose()
    return client_id, secret, ids


def start_gunicorn(url: str, port: int, log) -> subprocess.Popen:
    env = dict(
        os.environ,
        PORTAL_CONFIG="test",
        DATABASE_URL=url,
        POINTS_API_RATE_LIMIT="1000000 per minute",
        PYTHONPATH=str(ROOT),
    )
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/points/openapi.json")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("gunicorn did not start")


def get_token(port: int, client_id: str, secret: str) -> str:
    import base64

    conn = http.client.HTTPConnection("127.0.0.1", port)
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    conn.request(
        "POST",
        "/api/points/oauth/token",
        body="grant_type=client_credentials",
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    resp = conn.getresponse()
    body = json.loads(resp.read())
    if resp.status != 200:
        raise SystemExit(f"token: {resp.status} {body}")
    return body["access_token"]


def run_threads(threads: int, total: int, work) -> tuple[float, list[float], int]:
    """``work(thread, i)`` ``total`` times over ``threads`` threads; (seconds, latencies, failures)."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    counter = iter(range(total))

    def loop(t: int) -> None:
        state: dict = {}
        mine: list[float] = []
        bad = 0
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            start = time.perf_counter()
            ok = work(state, t, i)
            mine.append(time.perf_counter() - start)
            bad += 0 if ok else 1
        with lock:
            latencies.extend(mine)
            failures[0] += bad

    pool = [threading.Thread(target=loop, args=(t,)) for t in range(threads)]
    began = time.perf_counter()
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    return time.perf_counter() - began, latencies, failures[0]


def api_work(port: int, token: str, members: list[str], path: str):
    def work(state: dict, t: int, i: int) -> bool:
        conn = state.get("conn") or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        state["conn"] = conn
        member = members[(i * 7 + t) % len(members)]
        body = json.dumps({"points": 1, "reference": f"bench-{i}"})
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Idempotency-Key": f"{path}-{i}-{secrets.token_hex(4)}",
        }
        conn.request("POST", f"/api/points/members/{member}/{path}", body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status == 201

    return work


def raw_work(dsn: str, accounts: list[int], kind: str, tag: str):
    """The same writes the service makes, as hand-written SQL, one transaction per request."""
    import psycopg

    def work(state: dict, t: int, i: int) -> bool:
        conn = state.get("conn")
        if conn is None:
            conn = state["conn"] = psycopg.connect(dsn)
        account = accounts[(i * 7 + t) % len(accounts)]
        now = datetime.now(UTC)
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT id FROM points_accounts WHERE id = %s FOR UPDATE", (account,))
            cur.execute("SELECT 1 FROM points_idempotency WHERE partner_id = 1 AND key = %s", (f"{tag}-{i}",))
            if kind == "award":
                cur.execute(
                    "INSERT INTO points_entries (account_id, kind, points, at, source, partner_id, reference,"
                    " actor) VALUES (%s, 'earn', 1, %s, 'partner', 1, %s, 'raw') RETURNING id",
                    (account, now, f"raw-{i}"),
                )
                entry = cur.fetchone()[0]
                cur.execute(
                    "INSERT INTO points_lots (account_id, entry_id, points, remaining, earned_at,"
                    " available_at, expires_on, status)"
                    " VALUES (%s, %s, 1, 1, %s, %s, %s, 'active') RETURNING id",
                    (account, entry, now, now, date.today() + timedelta(days=730)),
                )
                lot = cur.fetchone()[0]
                cur.execute(
                    "INSERT INTO points_lot_moves (entry_id, lot_id, points) VALUES (%s, %s, 1)", (entry, lot)
                )
            else:
                cur.execute(
                    "SELECT id, remaining FROM points_lots WHERE account_id = %s AND remaining > 0"
                    " AND available_at <= %s AND expires_on >= %s ORDER BY expires_on, id",
                    (account, now, date.today()),
                )
                lot = cur.fetchone()[0]
                cur.execute(
                    "INSERT INTO points_entries (account_id, kind, points, at, source, partner_id, reference,"
                    " actor) VALUES (%s, 'redeem', -1, %s, 'partner', 1, %s, 'raw') RETURNING id",
                    (account, now, f"raw-{i}"),
                )
                entry = cur.fetchone()[0]
                cur.execute("UPDATE points_lots SET remaining = remaining - 1 WHERE id = %s", (lot,))
                cur.execute(
                    "INSERT INTO points_lot_moves (entry_id, lot_id, points) VALUES (%s, %s, -1)",
                    (entry, lot),
                )
            cur.execute(
                "INSERT INTO points_idempotency (partner_id, key, request_hash, status_code, response,"
                " created_at) VALUES (1, %s, %s, 201, '{}', %s)",
                (f"{tag}-{i}", secrets.token_hex(32), now),
            )
        return True

    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("TEST_POSTGRES_URL"))
    parser.add_argument("--database", default=DB)
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per operation")
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--threads", type=int, default=8, help="client threads (and raw SQL connections)")
    args = parser.parse_args()
    if not args.url:
        raise SystemExit('no PostgreSQL: eval "$(bash scripts/services.sh)" first, or pass --url')
    url = recreate_database(args.url, args.database)
    print(durability_note(server_settings(url)))
    client_id, secret, members = setup(url, args.members)
    port = _free_port()
    log = open(ROOT / "instance" / "bench-points-gunicorn.log", "w")  # noqa: SIM115 - closed below
    proc = start_gunicorn(url, port, log)
    try:
        token = get_token(port, client_id, secret)
        warm = api_work(port, token, members, "awards")
        run_threads(args.threads, 100, warm)
        results = {}
        for op in ("awards", "redemptions"):
            secs, lat, bad = run_threads(args.threads, args.requests, api_work(port, token, members, op))
            results[op] = (args.requests / secs, percentile(lat, 95) * 1000, bad)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        accounts = [row[0] for row in conn.execute(sa.text("SELECT id FROM points_accounts ORDER BY id"))]
    engine.dispose()
    dsn = libpq_url(url)
    # The raw limit at the server's parallelism (2 sync workers: at most 2 transactions in flight)
    # and at the client's (as many connections as client threads).
    raw: dict[tuple[str, int], tuple[float, float, int]] = {}
    for op, kind in (("awards", "award"), ("redemptions", "redeem")):
        for conns in (2, args.threads):
            tag = f"{kind}-{conns}"
            run_threads(conns, 50, raw_work(dsn, accounts, kind, f"warm-{tag}"))
            secs, lat, bad = run_threads(conns, args.requests, raw_work(dsn, accounts, kind, f"raw-{tag}"))
            raw[(op, conns)] = (args.requests / secs, percentile(lat, 95) * 1000, bad)
    figure("client threads / gunicorn workers", f"{args.threads} / 2 (sync)")
    for op in ("awards", "redemptions"):
        rps, p95, bad = results[op]
        figure(f"API {op}: requests per second", num(rps))
        figure(f"API {op}: p95 latency (ms)", f"{p95:.1f}")
        figure(f"API {op}: failed requests", str(bad))
        for conns in (2, args.threads):
            raw_rps, raw_p95, _ = raw[(op, conns)]
            figure(f"raw SQL {op}, {conns} connections: transactions per second", num(raw_rps))
            figure(f"raw SQL {op}, {conns} connections: p95 latency (ms)", f"{raw_p95:.1f}")
        figure(f"ratio API / raw SQL, 2 connections ({op}, goal >= 0.3)", f"{rps / raw[(op, 2)][0]:.2f}")
        figure(
            f"ratio API / raw SQL, {args.threads} connections ({op})",
            f"{rps / raw[(op, args.threads)][0]:.2f}",
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
