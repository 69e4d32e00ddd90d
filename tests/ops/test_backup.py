"""Backup and restore: scripts/backup.sh dumps deploy-local's database (pg_dump -Fc), restore.sh
loads it into a FRESH PostgreSQL cluster and compares every table (row count and content hash)
and the access-record hash chain."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import ROOT, Deploy, free_port

# one worker runs every test here: they share one deployment and stop its services
pytestmark = pytest.mark.xdist_group("deploy")

CHANGE_ONE_ROW = "UPDATE addresses SET postal_code = '0000000' WHERE id = (SELECT min(id) FROM addresses)"
PGBIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]


def as_pg(*args: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args]


def test_backup_restores_into_a_fresh_cluster_identically(deploy: Deploy, tmp_path: Path) -> None:
    deploy.seed("accounts")
    deploy.seed("access-records")
    env = deploy.app_env()
    started = time.monotonic()
    dest = tmp_path / "backups"
    dump = Path(
        subprocess.run(
            ["bash", str(ROOT / "scripts/backup.sh"), str(dest)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    took_backup = time.monotonic() - started
    assert dump.exists() and (dest / (dump.name + ".sha256")).exists()
    tables = (dump.parent / (dump.name + ".tables")).read_text().splitlines()
    counts = {line.split("\t")[0]: int(line.split("\t")[1]) for line in tables}
    assert counts["access_records"] >= 50 and counts["residents"] > 100

    # a fresh cluster on its own port, as on a replacement host
    cluster = Path(f"{deploy.state}-restore")
    shutil.rmtree(cluster, ignore_errors=True)
    cluster.mkdir(mode=0o755)
    shutil.chown(cluster, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        as_pg(
            str(PGBIN / "initdb"),
            "-D",
            str(cluster / "pg"),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ),
        check=True,
        capture_output=True,
    )
    subprocess.run(
        as_pg(
            str(PGBIN / "pg_ctl"),
            "-D",
            str(cluster / "pg"),
            "-l",
            str(cluster / "pg.log"),
            "-w",
            "-o",
            f"-p {port} -k {cluster} -c listen_addresses=127.0.0.1",
            "start",
        ),
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            as_pg(
                str(PGBIN / "psql"), "-q", "-h", str(cluster), "-p", str(port), "-c", "CREATE DATABASE portal"
            ),
            check=True,
            capture_output=True,
        )
        target = f"postgresql://postgres@127.0.0.1:{port}/portal"
        started = time.monotonic()
        restore = subprocess.run(
            ["bash", str(ROOT / "scripts/restore.sh"), str(dump), target],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        took_restore = time.monotonic() - started
        assert restore.returncode == 0, restore.stderr[-3000:]
        assert "access records: " in restore.stdout and "chain intact" in restore.stdout
        assert f"{len(tables)} tables restored and identical" in restore.stdout

        # the comparison has teeth: one changed row in the restored copy is found
        subprocess.run(
            as_pg(
                str(PGBIN / "psql"),
                "-q",
                "-h",
                str(cluster),
                "-p",
                str(port),
                "-d",
                "portal",
                "-c",
                CHANGE_ONE_ROW,
            ),
            check=True,
            capture_output=True,
        )
        again = subprocess.run(
            [str(ROOT / ".venv/bin/flask"), "--app", "wsgi", "ops", "fingerprint"],
            cwd=ROOT,
            env={**env, "DATABASE_URL": target.replace("postgresql:", "postgresql+psycopg:")},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        changed = [line for line in again if line not in tables]
        assert changed == [line for line in again if line.startswith("addresses\t")]
        print(
            f"\nbackup: {len(tables)} tables, {sum(counts.values())} rows, "
            f"{dump.stat().st_size // 1024} KiB dump in {took_backup:.1f}s; restore into a fresh cluster "
            f"+ compare + audit verify in {took_restore:.1f}s: identical"
        )
    finally:
        subprocess.run(
            as_pg(str(PGBIN / "pg_ctl"), "-D", str(cluster / "pg"), "-m", "fast", "-w", "stop"),
            capture_output=True,
        )
        shutil.rmtree(cluster, ignore_errors=True)
