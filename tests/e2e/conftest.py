"""End-to-end fixtures: a live portal (migrated SQLite + a small demo city) and Debian's Chromium.

The server and the browser live in this xdist worker's process; the tests in this package carry
``xdist_group("e2e")`` so that ``--dist loadgroup`` keeps them on one worker.
"""

from __future__ import annotations

import shutil

import pytest

from tests.e2e.live import AXE_JS, CHROMIUM, LiveServer, Tab, launch_chromium


@pytest.fixture(scope="module")
def live_server(sqlite_template, tmp_path_factory):
    """The portal on a free port of 127.0.0.1, with its own copy of the migrated database."""
    path = tmp_path_factory.mktemp("e2e") / "portal.sqlite3"
    shutil.copy(sqlite_template, path)
    server = LiveServer(f"sqlite:///{path}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser():
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS} is missing: run `npm install` (make setup)")
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make setup)")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def new_tab(browser, live_server):
    """Make tabs on the live portal, each in its own browser context (own cookies, so a resident
    and a staff member can be logged in side by side); all are closed after the test."""
    contexts = []

    def make() -> Tab:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        contexts.append(context)
        return Tab(context.new_page(), live_server.url)

    yield make
    for context in contexts:
        context.close()
