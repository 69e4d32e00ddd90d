"""Load on the production shape: locust (bench/locustfile.py) headless against a deploy-local
instance — residents reading their PO box and booking, kiosks verifying cards — through nginx,
TLS, gunicorn, PostgreSQL and Redis on this machine. Prints requests/s, p95 and errors per
endpoint and in total, and the same stack's raw figure (/healthz only) measured in the same run.

The instance has its own state folder and ports (default /var/tmp/portal-load, https :8473) so
make deploy-local stays as it is; it keeps running for the next run (--stop stops it). Two
settings differ from make deploy-local: per-address rate limits are off (every simulated user
comes from 127.0.0.1) and a test PKI stands in for the JPKI roots (its cards are made here).

    .venv/bin/python bench/load.py [--users 40] [--seconds 60] [--stop]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv" / "bin"


def settings(state: Path) -> dict[str, str]:
    pki = state / "load-cards" / "pki"
    return {
        "PORTAL_DEPLOY_DIR": str(state),
        "PORTAL_DEPLOY_PG_PORT": os.environ.get("PORTAL_LOAD_PG_PORT", "55472"),
        "PORTAL_DEPLOY_REDIS_PORT": os.environ.get("PORTAL_LOAD_REDIS_PORT", "56419"),
        "PORTAL_DEPLOY_HTTPS_PORT": os.environ.get("PORTAL_LOAD_HTTPS_PORT", "8473"),
        "PORTAL_DEPLOY_HTTP_PORT": os.environ.get("PORTAL_LOAD_HTTP_PORT", "8110"),
        "PORTAL_DEPLOY_QUIET": "1",
        "PORTAL_DEPLOY_EXTRA_ENV": "\n".join(
            (
                "RATELIMIT_ENABLED=false",
                f"CARD_TRUST_DIR={pki}",
                f"CARD_CRL_FILES={pki / 'auth_crl.der'}",
            )
        ),
    }


def make_cards(state: Path, count: int) -> Path:
    from card.sim import make_profile

    folder = state / "load-cards"
    for i in range(count):
        if not (folder / f"card{i}" / "auth_cert.der").exists():
            make_profile(folder / f"card{i}", name=f"負荷 {i:03d}", pki_dir=folder / "pki")
    return folder


def deploy_env(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "TEST_"))}
    for line in (state / "portal.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = value.strip('"')
    return env


def locust(users: list[str], n: int, seconds: int, host: str, prefix: Path, fixture: Path) -> dict:
    env = {**os.environ, "PORTAL_LOAD_FIXTURE": str(fixture)}
    subprocess.run(
        [
            str(VENV / "locust"),
            "-f",
            str(ROOT / "bench" / "locustfile.py"),
            "--headless",
            "-u",
            str(n),
            "-r",
            str(max(1, n // 4)),
            "-t",
            f"{seconds}s",
            "--host",
            host,
            "--csv",
            str(prefix),
            "--only-summary",
            "--loglevel",
            "ERROR",
            *users,
        ],
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    with open(f"{prefix}_stats.csv") as fh:
        rows = list(csv.DictReader(fh))
    return {row["Name"]: row for row in rows}


def show(title: str, stats: dict) -> tuple[float, float, int]:
    total = stats["Aggregated"]
    print(f"== {title}")
    print(f"  {'endpoint':32} {'requests':>9} {'errors':>7} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7}")
    for name, row in stats.items():
        print(
            f"  {name:32} {row['Request Count']:>9} {row['Failure Count']:>7} "
            f"{float(row['Requests/s']):>8.1f} {row['50%']:>7} {row['95%']:>7}"
        )
    return float(total["Requests/s"]), float(total["95%"]), int(total["Failure Count"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--cards", type=int, default=8)
    parser.add_argument("--residents", type=int, default=200)
    parser.add_argument("--state", default=os.environ.get("PORTAL_LOAD_DIR", "/var/tmp/portal-load"))
    parser.add_argument("--stop", action="store_true", help="stop the load instance and exit")
    args = parser.parse_args()
    state = Path(args.state)
    local = ["bash", str(ROOT / "deploy" / "local.sh")]
    run_env = {**{k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}, **settings(state)}
    if args.stop:
        subprocess.run([*local, "down"], env=run_env, check=True)
        return 0

    sys.path.insert(0, str(ROOT))
    state.mkdir(parents=True, exist_ok=True)
    cards = make_cards(state, args.cards)
    subprocess.run([*local, "up"], env=run_env, check=True)
    env = deploy_env(state)
    setup = subprocess.run(
        [
            str(VENV / "python"),
            str(ROOT / "bench" / "load_setup.py"),
            str(cards),
            str(args.cards),
            str(args.residents),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    host = f"https://127.0.0.1:{run_env['PORTAL_DEPLOY_HTTPS_PORT']}"
    fixture = json.loads(setup.stdout.strip().splitlines()[-1])
    fixture.update(cert=str(state / "tls" / "cert.pem"), host=host)
    path = state / "load-fixture.json"
    path.write_text(json.dumps(fixture))
    path.chmod(0o600)

    workers = env.get("GUNICORN_WORKERS"), env.get("GUNICORN_THREADS")
    print(
        f"load: {args.users} users for {args.seconds}s against {host} "
        f"(gunicorn {workers[0]} workers x {workers[1]} threads, 2 RQ workers, 2 cores shared)"
    )
    raw = locust(["Health"], args.users, 15, host, state / "raw", path)
    raw_rps, raw_p95, _ = show("raw: GET /healthz through nginx + gunicorn (same users)", raw)
    stats = locust(["Resident", "Kiosk", "Partner"], args.users, args.seconds, host, state / "scenario", path)
    rps, p95, errors = show(
        "scenario: residents (inbox, notices, bookings), kiosks (cards), partners (points)", stats
    )
    print(
        f"load: {rps:.1f} requests/s, p95 {p95:.0f} ms, {errors} errors; "
        f"raw /healthz {raw_rps:.1f} requests/s (p95 {raw_p95:.0f} ms); ratio {rps / raw_rps:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
