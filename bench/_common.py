"""Shared helpers for the benchmarks: where the repository is, database URLs, figures output.

Not a benchmark itself (``make bench`` runs it too; it does nothing when run).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# The benchmarks run the real app with the Test configuration (fixed test keys, no mail out).
os.environ.setdefault("PORTAL_CONFIG", "test")

import sqlalchemy as sa  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

BENCH_DB = "portal_bench"


def default_server_url() -> str | None:
    """The local PostgreSQL that ``eval "$(bash scripts/services.sh)"`` announces."""
    return os.environ.get("TEST_POSTGRES_URL")


def database_url(server_url: str, database: str) -> str:
    """SQLAlchemy URL of ``database`` on the same server as ``server_url``."""
    url = make_url(server_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url.set(database=database).render_as_string(hide_password=False)


def libpq_url(sqlalchemy_url: str) -> str:
    """The same URL for psycopg directly (no ``+psycopg`` driver suffix)."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _admin(server_url: str) -> sa.Engine:
    return sa.create_engine(
        database_url(server_url, make_url(server_url).database or "postgres"), isolation_level="AUTOCOMMIT"
    )


def recreate_database(server_url: str, database: str) -> str:
    """Drop and create ``database``; return its SQLAlchemy URL."""
    engine = _admin(server_url)
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{database}"'))
    engine.dispose()
    return database_url(server_url, database)


def read_marker(server_url: str, database: str) -> dict | None:
    """What the loader recorded on the database (its COMMENT), or None if absent or unreadable."""
    engine = _admin(server_url)
    with engine.connect() as conn:
        text = conn.execute(
            sa.text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :d"),
            {"d": database},
        ).scalar()
    engine.dispose()
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def write_marker(sqlalchemy_url: str, database: str, marker: dict) -> None:
    engine = sa.create_engine(sqlalchemy_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        literal = json.dumps(marker, sort_keys=True).replace("'", "''")
        conn.execute(sa.text(f"COMMENT ON DATABASE \"{database}\" IS '{literal}'"))
    engine.dispose()


def server_settings(sqlalchemy_url: str) -> dict[str, str]:
    engine = sa.create_engine(sqlalchemy_url)
    with engine.connect() as conn:
        out = {
            name: conn.execute(sa.text(f"SHOW {name}")).scalar()
            for name in (
                "server_version",
                "fsync",
                "synchronous_commit",
                "full_page_writes",
                "shared_buffers",
            )
        }
    engine.dispose()
    return out


def durability_note(settings: dict[str, str]) -> str:
    off = [k for k in ("fsync", "synchronous_commit", "full_page_writes") if settings.get(k) == "off"]
    version = settings["server_version"].split()[0]
    text = f"note: PostgreSQL {version}, shared_buffers={settings['shared_buffers']}"
    if off:
        text += (
            f"; {', '.join(k + '=off' for k in off)} (the test server's settings): writes are not "
            "durable, so load figures are faster than on a production server"
        )
    return text


def alembic_head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    return ScriptDirectory.from_config(cfg).get_current_head() or ""


def percentile(values: list[float], q: float) -> float:
    """q in [0, 100], linear interpolation between closest ranks (numpy's default)."""
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    f = int(k)
    c = min(f + 1, len(s) - 1)
    return s[f] + (s[c] - s[f]) * (k - f)


def figure(name: str, value: str) -> None:
    """One metric per line: ``name: value``."""
    print(f"{name:<58} {value}", flush=True)


def num(n: float) -> str:
    return f"{n:,.0f}"


if __name__ == "__main__":
    pass
