"""Table fingerprints: row count and an MD5 over the rows' text, in a stable order, per table.
Two databases with equal fingerprints hold the same data (what a restore must show).

A backup takes them in the same snapshot as ``pg_dump`` (``pg_export_snapshot`` → ``pg_dump
--snapshot``), so writes landing during the backup change neither."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection

from portal.extensions import db


def _fingerprints(conn: Connection) -> list[tuple[str, int, str]]:
    out = []
    tables = conn.execute(
        text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    ).scalars()
    for table in list(tables):
        name = conn.dialect.identifier_preparer.quote(table)  # a name from pg_tables
        digest_sql = "coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '-')"
        sql = f"SELECT count(*), {digest_sql} FROM {name} AS t"  # noqa: S608
        count, digest = conn.execute(text(sql)).one()
        out.append((table, int(count), str(digest)))
    return out


def fingerprints() -> list[tuple[str, int, str]]:
    if db.engine.dialect.name != "postgresql":
        raise RuntimeError("fingerprints are taken on PostgreSQL")
    with db.engine.connect() as conn:
        return _fingerprints(conn)


def render(rows: list[tuple[str, int, str]]) -> str:
    return "".join(f"{table}\t{count}\t{digest}\n" for table, count, digest in rows)


def _pg_dump() -> str:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))
    return str(found[-1]) if found else (shutil.which("pg_dump") or "pg_dump")


def backup(dest: Path) -> Path:
    """``pg_dump -Fc`` of the database and its fingerprints, both of one snapshot; a .sha256 file."""
    url = db.engine.url
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / f"portal-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.dump"
    partial = out.with_suffix(".dump.partial")
    with db.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
        old = os.umask(0o077)
        try:
            subprocess.run(  # noqa: S603 - pg_dump with our own arguments
                [
                    _pg_dump(),
                    "--format=custom",
                    "--compress=6",
                    f"--snapshot={snapshot}",
                    f"--file={partial}",
                    dsn,
                ],
                check=True,
            )
            rows = _fingerprints(conn)
        finally:
            os.umask(old)
    partial.rename(out)
    Path(f"{out}.tables").write_text(render(rows))
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    Path(f"{out}.sha256").write_text(f"{digest}  {out.name}\n")
    return out
