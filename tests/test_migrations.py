import subprocess
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

ROOT = Path(__file__).resolve().parent.parent


def test_exactly_one_head():
    config = Config(str(ROOT / "migrations" / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1, f"migrations have {len(heads)} heads: {heads}"


def test_revisions_are_numbered():
    for path in (ROOT / "migrations" / "versions").glob("*.py"):
        assert path.name[:4].isdigit(), f"{path.name} is not a numbered revision"


def test_create_all_appears_nowhere():
    out = subprocess.run(
        ["git", "grep", "-n", "create_" + "all(", "--", "*.py"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.stdout == "", out.stdout


def test_models_match_migrations(app, db):
    """Autogenerate against the migrated database finds nothing to add: the schema is the models'."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from portal.extensions import include_object

    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include_object})
        diff = compare_metadata(context, db.metadata)
    assert diff == []
