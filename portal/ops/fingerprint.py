"""Table fingerprints: row count and an MD5 over the rows' text, in a stable order, per table.
Two databases with equal fingerprints hold the same data (what a restore must show)."""

from __future__ import annotations

from sqlalchemy import text

from portal.extensions import db


def fingerprints() -> list[tuple[str, int, str]]:
    if db.engine.dialect.name != "postgresql":
        raise RuntimeError("fingerprints are taken on PostgreSQL")
    out = []
    with db.engine.connect() as conn:
        tables = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
        ).scalars()
        for table in list(tables):
            count, digest = conn.execute(
                text(
                    f"SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '-') "  # noqa: S608 - names from pg_tables
                    f'FROM "{table}" AS t'
                )
            ).one()
            out.append((table, int(count), str(digest)))
    return out
