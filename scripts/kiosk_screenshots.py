"""Kiosk screenshots (1280x1024 touch screen) for docs/screenshots/, called by scripts/screenshots.py.

Its own live portal (tests/e2e/live.py) trusting a test JPKI, a registered kiosk terminal, the demo
resident's virtual card linked, and the terminal agent in this process on that card (``--sim``
style, so no pcscd is needed): start screen, keypad, last-try warning, blocked card and the menu,
in Japanese, English and easy Japanese.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import sys
from pathlib import Path

from tests.e2e.live import LiveServer, Tab

CERTIFICATES = importlib.util.find_spec("portal.certificates") is not None
VIEWPORT = {"viewport": {"width": 1280, "height": 1024}, "has_touch": True}
BROWSER = {"locale": "ja-JP", "timezone_id": "Asia/Tokyo"}
TERMINAL = "kiosk-shots"
PIN = "1234"


def _world(tmp: Path, sqlite_url: str):
    from card import termsig
    from card.sim.profile import make_profile
    from kiosk.agent.api import AgentServer
    from kiosk.agent.client import ServerClient
    from kiosk.agent.reader import SimBackend
    from kiosk.agent.service import Agent
    from kiosk.agent.signing import generate_key
    from portal.cardid import service as cardid
    from portal.cardid.models import CardCredential
    from portal.extensions import db
    from portal.registry.models import Resident

    pki = tmp / "kiosk-pki"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    extra = {}
    if CERTIFICATES:
        from portal.certificates import hsm

        material = hsm.init(tmp / "city-hsm")
        hsm.use_process_directory(material.directory)
        extra["CERTIFICATE_HSM_DIR"] = str(material.directory)
    server = LiveServer(
        sqlite_url,
        CARD_TRUST_DIR=str(pki),
        CARD_CRL_FILES=(str(pki / "auth_crl.der"),),
        AGENT_ORIGIN=f"http://127.0.0.1:{port}",
        **extra,
    )
    key = generate_key()
    cards = {}
    with server.app.app_context():
        person = db.session.get(Resident, server.people.resident_id)
        for which in ("good", "locked"):
            cards[which] = make_profile(
                tmp / f"kiosk-{which}",
                name=f"{person.family_name}\u3000{person.given_name}",
                kana=f"{person.family_name_kana}\u3000{person.given_name_kana}",
                address=person.address.line_ja("みなと市"),
                birth=person.birth_date.strftime("%Y%m%d"),
                sex=str(person.sex),
                auth_pin=PIN,
                sign_pin="ABC123",
                my_number="999912345677",
                pki_dir=pki,
            ).directory
        verified = cardid.verify_certificate_only((cards["good"] / "auth_cert.der").read_bytes())
        db.session.add(
            CardCredential.from_verified(verified, resident_id=person.id, linked_by="shots", via="text_ap")
        )
        cardid.add_terminal(TERMINAL, "kiosk", "キオスク", "中央区役所", termsig.public_pem(key))
        db.session.commit()
        db.session.remove()
    backend = SimBackend(cards["good"])
    backend.remove()
    agent = Agent(backend, ServerClient(server.url, TERMINAL, key), poll_ms=50).start()
    httpd = AgentServer(agent, port).start()
    return server, httpd, backend, cards


def _order(tab: Tab, shoot, lang: str) -> None:
    """A 住民票 through every ordering screen, up to the printed PDF."""
    page = tab.page
    page.click("#menu-certificates")
    page.wait_for_url("**/kiosk/certificates")
    shoot(tab, f"certificates-{lang}")
    page.click("#cert-residence")
    page.wait_for_url("**/kiosk/certificates/residence")
    shoot(tab, f"options-{lang}")
    page.click("#options-next")
    page.wait_for_url("**/kiosk/certificates/order")
    shoot(tab, f"fee-{lang}")
    page.click("#pay-ic")
    page.wait_for_url("**/kiosk/certificates/order/payment")
    shoot(tab, f"payment-{lang}")
    page.click("#simulate-pay")
    page.wait_for_url("**/kiosk/certificates/printed/*")
    shoot(tab, f"printed-{lang}")


def take_kiosk(browser, tmp: Path, sqlite_template_url: str, out: Path) -> list[Path]:
    """Kiosk screens; ``sqlite_template_url`` is a migrated, empty database to copy."""
    src = Path(sqlite_template_url.removeprefix("sqlite:///"))
    db_path = tmp / "kiosk.sqlite3"
    shutil.copy(src, db_path)
    server, httpd, backend, cards = _world(tmp, f"sqlite:///{db_path}")
    written: list[Path] = []

    def shoot(tab: Tab, name: str) -> None:
        path = out / f"kiosk-{name}.png"
        tab.page.wait_for_timeout(300)  # let the last screen change settle (animation frame)
        tab.page.screenshot(path=str(path), full_page=True)
        written.append(path)

    try:
        for lang in ("ja", "en", "easy"):
            context = browser.new_context(**BROWSER, **VIEWPORT)
            tab = Tab(context.new_page(), server.url)
            tab.goto(f"/kiosk/?terminal={TERMINAL}")
            if lang != "ja":
                with tab.page.expect_navigation():
                    tab.page.click(f".kiosk-lang button[value={lang}]")
            tab.page.wait_for_selector("#screen-insert:not([hidden])")
            shoot(tab, f"insert-{lang}")
            backend.insert()
            tab.page.wait_for_selector("#screen-pin:not([hidden])")
            for digit in "12":
                tab.page.click(f".keypad [data-digit='{digit}']")
            shoot(tab, f"pin-{lang}")
            for digit in "34":
                tab.page.click(f".keypad [data-digit='{digit}']")
            tab.page.click("#pin-ok")
            tab.page.wait_for_url("**/kiosk/menu")
            shoot(tab, f"menu-{lang}")
            if CERTIFICATES:
                _order(tab, shoot, lang)
            backend.remove()
            tab.page.wait_for_url("**/kiosk/?ended=card_removed")
            if lang == "ja":
                shoot(tab, "ended-ja")
            context.close()
        # the last-try warning and the blocked card, on a card whose PIN is tried wrongly
        from card.sim import VirtualCard

        backend.card = VirtualCard.from_profile(cards["locked"], persist=True)
        backend.card.remove()
        context = browser.new_context(**BROWSER, **VIEWPORT)
        tab = Tab(context.new_page(), server.url)
        tab.goto(f"/kiosk/?terminal={TERMINAL}")
        tab.page.wait_for_selector("#screen-insert:not([hidden])")
        backend.insert()
        tab.page.wait_for_selector("#screen-pin:not([hidden])")
        for _ in range(2):
            for digit in "0000":
                tab.page.click(f".keypad [data-digit='{digit}']")
            tab.page.click("#pin-ok")
            tab.page.wait_for_selector("#screen-pin:not([hidden]), #screen-last:not([hidden])")
            tab.page.wait_for_timeout(300)
        tab.page.wait_for_selector("#screen-last:not([hidden])")
        shoot(tab, "last-try-ja")
        tab.page.click("#last-yes")
        for digit in "0000":
            tab.page.click(f".keypad [data-digit='{digit}']")
        tab.page.click("#pin-ok")
        tab.page.wait_for_selector("#screen-error:not([hidden])")
        shoot(tab, "blocked-ja")
        context.close()
    finally:
        httpd.close()
        server.stop()
    for path in written:
        print(f"{path.name}  {path.stat().st_size // 1024} KiB", file=sys.stderr)
    return written
