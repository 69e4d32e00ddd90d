"""Test databases are built by running the migrations (never create_all), once per backend and
xdist worker; each test then gets a clean copy (SQLite: a file copy; PostgreSQL: TRUNCATE).

Every web test runs on SQLite and on PostgreSQL. PostgreSQL comes from scripts/services.sh
(TEST_POSTGRES_URL); under CI its absence is a failure, elsewhere those cases are skipped.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.globals import _cv_app
from flask.testing import FlaskClient
from hypothesis import settings

from card.ids import is_valid_my_number
from portal import mail

os.environ["PORTAL_CONFIG"] = "test"

# CI shares two cores with PostgreSQL, pcscd and Chromium: no per-example deadline, or a slow
# moment fails a property that holds.
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["sqlite", "postgresql"]


def _upgrade(url: str) -> None:
    from flask_migrate import upgrade

    from wsgi import create_app

    app = create_app({"NAME": "test", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        from portal.extensions import db

        db.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("db") / "template.sqlite3"
    _upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url(worker_id):
    base = os.environ.get("TEST_POSTGRES_URL")
    if not base:
        if os.environ.get("CI"):
            pytest.fail("TEST_POSTGRES_URL is not set: run the suite through `make test`")
        pytest.skip("PostgreSQL not started (run `make services`)")
    # Unique per run, so two suites on one machine (a developer's and a helper's) never share one.
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))[:8]
    name = f"portal_test_{run}_{worker_id}".replace("-", "_")
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = base.rsplit("/", 1)[0] + "/" + name
    _upgrade(url)
    yield url
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_postgres(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        tables = (
            conn.execute(
                sa.text(
                    "SELECT tablename FROM pg_tables "
                    "WHERE schemaname='public' AND tablename <> 'alembic_version'"
                )
            )
            .scalars()
            .all()
        )
        if tables:
            conn.execute(
                sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
            )
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "test.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    return url


class IsolatedClient(FlaskClient):
    """Each request runs in its own app context, as in production. (Flask reuses an app context
    that is already pushed, so without this the test's context — its ``g``, CSRF token, CSP nonce
    and database session — would leak into every request.)"""

    def open(self, *args, **kwargs):
        token = _cv_app.set(None)
        try:
            return super().open(*args, **kwargs)
        finally:
            _cv_app.reset(token)


@pytest.fixture
def app_config() -> dict:
    """Extra configuration for the app under test; a test module overrides this fixture."""
    return {}


@pytest.fixture
def app(database_url, tmp_path, app_config):
    from wsgi import create_app

    application = create_app(
        {
            "NAME": "test",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
            "SERVER_NAME": "portal.test",
            **app_config,
        }
    )
    application.test_client_class = IsolatedClient
    mail.outbox.clear()
    with application.app_context():
        yield application
        from portal.extensions import db

        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def redis_url():
    """The Redis that scripts/services.sh started (a failure under CI when absent)."""
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("TEST_REDIS_URL is not set: run the suite through `make test`")
        pytest.skip("Redis not started (run `make services`)")
    return url


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db(app):
    from portal.extensions import db as database

    return database


# --- The Individual Number never reaches a log --------------------------------------------------

_TWELVE = re.compile(r"(?<!\d)\d{12}(?!\d)")
_captured: list[str] = []


class _Capture(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            _captured.append(self.format(record))
        except Exception:
            _captured.append(str(record.msg))


def pytest_configure(config):
    handler = _Capture(level=logging.DEBUG)
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)


def leaked_numbers(texts) -> list[str]:
    found = []
    for text in texts:
        for m in _TWELVE.finditer(text):
            if is_valid_my_number(m.group(0)):
                found.append(m.group(0)[:2] + "…")  # never print a whole number
    return found


def pytest_sessionfinish(session, exitstatus):
    leaks = leaked_numbers(_captured)
    if leaks:
        session.exitstatus = 1
        print(f"\nFAIL: {len(leaks)} Individual Number(s) reached the captured logs of the suite")
