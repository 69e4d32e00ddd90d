"""name search indexes for a city-sized register (PostgreSQL)

A substring search (LIKE '%…%') over a million residents scans the table. On PostgreSQL a trigram
GIN index serves terms of three or more characters, and two prefix indexes (kanji part, kana part
of name_search) serve the one- and two-character terms trigrams cannot (山田, やま). SQLite, the
embedded default for one office's demo, keeps the plain index.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE INDEX ix_residents_name_search_trgm ON residents USING gin (name_search gin_trgm_ops)")
    op.execute(
        "CREATE INDEX ix_residents_name_kanji_prefix ON residents "
        "(split_part(name_search, '|', 1) text_pattern_ops)"
    )
    op.execute(
        "CREATE INDEX ix_residents_name_kana_prefix ON residents "
        "(split_part(name_search, '|', 2) text_pattern_ops)"
    )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_residents_name_kana_prefix")
    op.execute("DROP INDEX IF EXISTS ix_residents_name_kanji_prefix")
    op.execute("DROP INDEX IF EXISTS ix_residents_name_search_trgm")
