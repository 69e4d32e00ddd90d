"""Screenshots of the library desk and shelter mode (docs/screenshots/library-*, shelter-*).

Its own live portal (the e2e demo city) with the demo resident's card as an in-memory virtual card
behind a terminal agent running in this process, so the pages show a real card read: library staff
link the card and look it up, shelter staff check the resident in and open the roster, and the
resident sees the library link and the household's check-ins. Called by scripts/screenshots.py;
runs alone too:

    .venv/bin/python scripts/screenshots_library_shelter.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PORTAL_CONFIG", "test")

from tests.e2e.live import LiveServer, Tab, launch_chromium, migrate  # noqa: E402

PIN = "1234"
LIBRARY, SHELTER = "library-01", "shelter-01"
OPENING = "2026-TY21-S02"
BROWSER = {"locale": "ja-JP", "timezone_id": "Asia/Tokyo"}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
MOBILE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(server: LiveServer, tmp: Path) -> tuple[Path, dict]:
    """The resident's card (linked, as after a counter visit) and two registered terminals."""
    from card.sim.profile import make_profile
    from kiosk.agent import signing
    from portal.access.service import Actor
    from portal.cardid import service as cardid
    from portal.extensions import db
    from portal.registry.models import Resident
    from portal.vault import service as vault

    keys = {}
    with server.app.app_context():
        person = db.session.get(Resident, server.people.resident_id)
        actor = Actor(kind="job", id="screenshots", role="card issuance", organisation="demo")
        profile = make_profile(
            tmp / "card",
            name=f"{person.family_name}\u3000{person.given_name}",
            kana=f"{person.family_name_kana}\u3000{person.given_name_kana}",
            address=person.address.line_ja("みなと市"),
            birth=person.birth_date.strftime("%Y%m%d"),
            sex=str(person.sex),
            auth_pin=PIN,
            my_number=vault.reveal(person.id, purpose="demo: writing the card", actor=actor),
            pki_dir=tmp / "pki",
        )
        cardid._link(
            cardid.verify_certificate_only(profile.certificate("auth")), person, via="text_ap", actor=actor
        )
        for code, kind, name in (
            (LIBRARY, "library", "中央図書館 カウンター1"),
            (SHELTER, "shelter", "避難所タブレット1"),
        ):
            keys[code] = signing.generate_key()
            cardid.add_terminal(code, kind, name, "みなと市", signing.public_key_pem(keys[code]))
        db.session.commit()
        db.session.remove()
    return profile.directory, keys


class _Agent:
    """The terminal agent in this process, with the virtual card (and the shelter desk)."""

    def __init__(self, server: LiveServer, terminal: str, key, card: Path, port: int, state: Path) -> None:
        from kiosk.agent.api import AgentServer
        from kiosk.agent.client import ServerClient
        from kiosk.agent.outbox import Outbox
        from kiosk.agent.reader import SimBackend
        from kiosk.agent.service import Agent
        from kiosk.agent.shelter import ShelterDesk

        agent = Agent(SimBackend(card), ServerClient(server.url, terminal, key), poll_ms=50).start()
        self.httpd = AgentServer(agent, port)
        self.desk = ShelterDesk(agent, Outbox(state / f"{terminal}.sqlite3"), sync_seconds=0)
        self.httpd.extra_routes.update(self.desk.routes())
        self.httpd.start()

    def close(self) -> None:
        self.httpd.close()
        self.desk.close()


def _shoot(tab: Tab, out: Path, name: str, written: list[Path]) -> None:
    path = out / f"{name}.png"
    tab.page.screenshot(path=str(path), full_page=True)
    written.append(path)


def _staff(browser, server: LiveServer, login: str) -> Tab:
    from portal import demo

    tab = Tab(browser.new_context(**BROWSER, **DESKTOP).new_page(), server.url)
    tab.goto("/staff/login")
    tab.page.fill("#login_id", login)
    tab.page.fill("#password", demo.STAFF_PASSWORD)
    tab.page.click("main button[type=submit]")
    tab.page.wait_for_url("**/staff/")
    return tab


def take(browser, out: Path, tmp: Path) -> list[Path]:
    written: list[Path] = []
    tmp = tmp / "library-shelter"
    tmp.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{tmp / 'library-shelter.sqlite3'}"
    migrate(url)
    port = _free_port()
    pki = tmp / "pki"
    with LiveServer(
        url,
        CARD_TRUST_DIR=str(pki),
        CARD_CRL_FILES=(str(pki / "auth_crl.der"),),
        AGENT_ORIGIN=f"http://127.0.0.1:{port}",
    ) as server:
        card, keys = _prepare(server, tmp)

        agent = _Agent(server, LIBRARY, keys[LIBRARY], card, port, tmp)
        try:
            clerk = _staff(browser, server, "library1")
            clerk.set_language("ja")
            clerk.goto("/staff/library/card")
            clerk.page.select_option("#terminal", LIBRARY)
            clerk.page.click("main form.filters button[type=submit]")
            clerk.page.wait_for_selector("#tries:not(:empty)")
            clerk.page.fill("#patron", "0012-3456")
            _shoot(clerk, out, "library-desk-ja-desktop", written)
            clerk.page.fill("#pin", PIN)
            clerk.page.click("#link")
            clerk.page.wait_for_url("**/staff/library/card/c_*")
            _shoot(clerk, out, "library-patron-ja-desktop", written)
            clerk.set_language("en")
            clerk.goto("/staff/library/card")
            clerk.page.wait_for_selector("#tries:not(:empty)")
            clerk.page.fill("#pin", PIN)
            clerk.page.click("#lookup")
            clerk.page.wait_for_url("**/staff/library/card/c_*")
            _shoot(clerk, out, "library-patron-en-desktop", written)
            clerk.page.context.close()
        finally:
            agent.close()

        agent = _Agent(server, SHELTER, keys[SHELTER], card, port, tmp)
        try:
            staff = _staff(browser, server, "shelter1")
            staff.set_language("ja")
            staff.goto("/staff/shelter/")
            _shoot(staff, out, "shelter-index-ja-desktop", written)
            staff.goto(f"/staff/shelter/{OPENING}/")
            staff.page.select_option("#terminal", SHELTER)
            staff.page.click("main form.filters button[type=submit]")
            staff.page.wait_for_selector("#tries:not(:empty)")
            staff.page.fill("#pin", PIN)
            staff.page.click("#checkin-card")
            staff.page.wait_for_selector("#card-result:has-text('" + server.people.resident_name + "')")
            _shoot(staff, out, "shelter-mode-ja-desktop", written)
            staff.goto("/staff/shelter/2026-TY21-S01/roster")
            _shoot(staff, out, "shelter-roster-ja-desktop", written)
            staff.set_language("en")
            _shoot(staff, out, "shelter-roster-en-desktop", written)
            staff.goto(f"/staff/shelter/{OPENING}/?q=" + server.people.resident_kana.split()[0])
            _shoot(staff, out, "shelter-mode-en-desktop", written)
            staff.page.context.close()
        finally:
            agent.close()

        resident = Tab(browser.new_context(**BROWSER, **MOBILE).new_page(), server.url)
        resident.goto("/login")
        resident.page.fill("#email", server.people.resident_email)
        resident.page.fill("#password", server.people.resident_password)
        resident.page.click("main button[type=submit]")
        resident.page.wait_for_url("**/me/")
        for lang in ("ja", "en"):
            resident.goto("/me/shelter")
            resident.set_language(lang)
            _shoot(resident, out, f"shelter-family-{lang}-mobile", written)
            resident.goto("/me/library")
            _shoot(resident, out, f"library-links-{lang}-mobile", written)
        resident.page.context.close()
    return written


def main() -> int:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="portal-shots-") as tmp, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            written = take(browser, args.out, Path(tmp))
        finally:
            browser.close()
    for path in written:
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"{shown}  {path.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
