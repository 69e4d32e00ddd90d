"""A live portal for the browser: a migrated SQLite database with a small demo city, served by
Werkzeug on 127.0.0.1 in a background thread, and Debian's Chromium driven by Playwright.

Used by the end-to-end tests (tests/e2e/conftest.py) and by scripts/screenshots.py, so both see
the same city. Nothing here downloads a browser: Playwright launches /usr/bin/chromium.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

ROOT = Path(__file__).resolve().parents[2]
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DEMO_HOUSEHOLDS = 20
# Impacts that fail a page; "minor" and "moderate" findings are reported but do not fail.
BLOCKING_IMPACTS = ("serious", "critical")


def migrate(url: str) -> None:
    """Build the schema by running the migrations (never create_all)."""
    from flask_migrate import upgrade

    from wsgi import create_app

    app = create_app({"NAME": "test", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        from portal.extensions import db

        db.engine.dispose()


@dataclass
class DemoPeople:
    """Who the browser logs in as, read from the demo city after it is loaded."""

    resident_email: str
    resident_password: str
    resident_id: int
    resident_name: str
    resident_kana: str
    staff_login: str
    staff_password: str
    staff_organisation: str


class _QuietHandler(WSGIRequestHandler):
    """No access-log line per request (errors are still logged)."""

    def log_request(self, code="-", size="-") -> None:
        pass


class LiveServer:
    """The portal on http://127.0.0.1:<free port>, serving from a thread until ``stop()``."""

    def __init__(self, database_url: str, *, households: int = DEMO_HOUSEHOLDS, **config) -> None:
        from wsgi import create_app

        self.app = create_app(
            {
                "NAME": "test",
                "SQLALCHEMY_DATABASE_URI": database_url,
                "RATELIMIT_ENABLED": False,
                **config,
            }
        )
        self.people = self._seed(households)
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, self.app, threaded=True, request_handler=_QuietHandler
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="live-portal", daemon=True)
        self._thread.start()

    def _seed(self, households: int) -> DemoPeople:
        from sqlalchemy import select

        from portal import demo
        from portal.accounts.models import ResidentAccount
        from portal.extensions import db

        with self.app.app_context():
            demo.load(households=households)
            email = "resident1@demo.city.example.jp"
            account = db.session.scalar(select(ResidentAccount).where(ResidentAccount.email == email))
            if account is None or account.resident is None:
                raise RuntimeError(f"the demo city has no linked account {email}")
            login, _name, organisation, _roles = demo.STAFF[0]  # counter1, a counter clerk
            people = DemoPeople(
                resident_email=email,
                resident_password=demo.RESIDENT_PASSWORD,
                resident_id=account.resident.id,
                resident_name=account.resident.full_name,
                resident_kana=account.resident.full_name_kana,
                staff_login=login,
                staff_password=demo.STAFF_PASSWORD,
                staff_organisation=organisation,
            )
            db.session.remove()
        return people

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()
        with self.app.app_context():
            from portal.extensions import db

            db.session.remove()
            db.engine.dispose()

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Tab:
    """A Playwright page on the live portal, with the few moves every visit needs."""

    def __init__(self, page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        # Chromium reports each Content-Security-Policy refusal on the console.
        self.csp_refusals: list[str] = []
        page.on("console", self._console)

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.csp_refusals.append(f"{self.page.url}: {message.text}")

    def goto(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    @property
    def lang(self) -> str:
        return self.page.locator("html").get_attribute("lang") or ""

    def set_language(self, lang: str) -> None:
        """Use the header's language button (a POST that returns to the same page)."""
        if self.lang != lang:
            with self.page.expect_navigation():
                self.page.locator("header form.lang button").click()
        assert self.lang == lang, f"{self.page.url}: html[lang]={self.lang!r}, expected {lang!r}"

    def axe(self) -> list[dict]:
        return run_axe(self.page)


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def run_axe(page) -> list[dict]:
    """Run axe-core on the page as it is now; return its violations (rule id, impact, nodes).

    axe is evaluated through the DevTools protocol, which the page's Content-Security-Policy does
    not govern, so the page is checked under its real CSP (a <script> tag would be refused)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    return page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ['violations']});
            return result.violations.map(v => ({
                id: v.id,
                impact: v.impact,
                help: v.help,
                nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary})),
            }));
        }"""
    )


def blocking(violations: list[dict]) -> list[dict]:
    return [v for v in violations if v["impact"] in BLOCKING_IMPACTS]


def describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        for node in v["nodes"][:5]:
            summary = " ".join(line.strip() for line in (node["summary"] or "").splitlines()[1:])
            lines.append(f"    {node['target']}: {summary[:200]}")
    return "\n".join(lines)
