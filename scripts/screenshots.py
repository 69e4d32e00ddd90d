"""Screenshots of the portal for docs/screenshots/, on a phone (390x844) and a desktop (1280x900).

Serves the portal exactly as the end-to-end tests do (tests/e2e/live.py: a migrated SQLite
database in a temporary folder, a small demo city, Werkzeug on 127.0.0.1) and drives Debian's
Chromium with Playwright; nothing is downloaded. A counter clerk looks the demo resident up first,
so the access history has something to show.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["PORTAL_CONFIG"] = "test"  # before wsgi is imported: test keys, mail kept in memory

from playwright.sync_api import sync_playwright  # noqa: E402

from scripts.kiosk_screenshots import take_kiosk  # noqa: E402
from tests.e2e.live import LiveServer, Tab, launch_chromium, migrate  # noqa: E402

VIEWPORTS = {
    "mobile": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1280, "height": 900}},
}
# A resident's browser in Japan. (Headless Chromium still draws date inputs as mm/dd/yyyy.)
BROWSER = {"locale": "ja-JP", "timezone_id": "Asia/Tokyo"}
PURPOSE = "identity_check"
# How far anything in <main> reaches past main's content box (a table too wide for a phone).
OVERFLOW_JS = """() => {
    const main = document.querySelector('main');
    const edge = main.getBoundingClientRect().right - parseFloat(getComputedStyle(main).paddingRight);
    let worst = 0;
    for (const el of main.querySelectorAll('*')) {
        worst = Math.max(worst, el.getBoundingClientRect().right - edge);
    }
    return Math.max(0, Math.round(worst), document.documentElement.scrollWidth - window.innerWidth);
}"""


def submit(tab: Tab) -> None:
    with tab.page.expect_navigation():
        tab.page.locator("main form button[type=submit]").click()


def staff_login(tab: Tab, server: LiveServer) -> None:
    tab.goto("/staff/login")
    tab.page.locator("#login_id").fill(server.people.staff_login)
    tab.page.locator("#password").fill(server.people.staff_password)
    submit(tab)


def staff_look_up(tab: Tab, server: LiveServer) -> None:
    tab.goto("/staff/residents")
    tab.page.locator("#q").fill(server.people.resident_kana.split()[0])  # the family name: several hits
    tab.page.locator("#purpose").select_option(PURPOSE)
    submit(tab)


def resident_login(tab: Tab, server: LiveServer) -> None:
    tab.goto("/login")
    tab.page.locator("#email").fill(server.people.resident_email)
    tab.page.locator("#password").fill(server.people.resident_password)
    submit(tab)


def shoot(tab: Tab, out: Path, name: str, size: str, written: list[Path]) -> None:
    path = out / f"{name}-{size}.png"
    overflow = tab.page.evaluate(OVERFLOW_JS)
    if overflow > 0:
        print(f"warning: {name}-{size}: content sticks out {overflow}px to the right", file=sys.stderr)
    tab.page.screenshot(path=str(path), full_page=True)
    written.append(path)


def take(browser, server: LiveServer, out: Path) -> list[Path]:
    written: list[Path] = []
    # A counter clerk looks the resident up (one screenshot per size), then opens the record, so
    # the resident's access history has something to show.
    for size, options in VIEWPORTS.items():
        context = browser.new_context(**BROWSER, **options)
        tab = Tab(context.new_page(), server.url)
        staff_login(tab, server)
        tab.set_language("ja")
        staff_look_up(tab, server)
        shoot(tab, out, "staff-look-up-ja", size, written)
        if size == "desktop":
            tab.goto(f"/staff/residents/{server.people.resident_id}?purpose={PURPOSE}")
        context.close()

    for size, options in VIEWPORTS.items():
        context = browser.new_context(**BROWSER, **options)
        tab = Tab(context.new_page(), server.url)
        tab.goto("/")
        tab.set_language("ja")
        shoot(tab, out, "landing-ja", size, written)
        tab.goto("/login")
        shoot(tab, out, "login-ja", size, written)
        resident_login(tab, server)
        for lang in ("ja", "en"):
            tab.goto("/me/")
            tab.set_language(lang)
            shoot(tab, out, f"home-{lang}", size, written)
            tab.goto("/me/access-history")
            shoot(tab, out, f"access-history-{lang}", size, written)
        tab.set_language("ja")
        context.close()

    # Card identity: the card login page (a fresh code), the resident's cards, the counter's card
    # page and the terminal register (desktop only: staff pages).
    context = browser.new_context(**BROWSER, **VIEWPORTS["mobile"])
    tab = Tab(context.new_page(), server.url)
    for lang in ("ja", "en"):
        tab.goto("/login")
        tab.set_language(lang)
        tab.goto("/card-login")
        shoot(tab, out, f"card-login-{lang}", "mobile", written)
    context.close()
    context = browser.new_context(**BROWSER, **VIEWPORTS["desktop"])
    tab = Tab(context.new_page(), server.url)
    staff_login(tab, server)
    tab.set_language("ja")
    tab.goto("/staff/counter/card")
    shoot(tab, out, "counter-card-ja", "desktop", written)
    context.close()
    booking_shots(browser, server, out, written)
    points_shots(browser, server, out, written)
    return written


def points_shots(browser, server: LiveServer, out: Path, written: list[Path]) -> None:
    """Citizen points: the resident's points, member QR, catalogue, partners; staff rules."""
    from scripts.points_shots import take_points

    take_points(browser, server, out, written, Tab=Tab, shoot=shoot, staff_login=staff_login,
                resident_login=resident_login, viewports=VIEWPORTS, browser_options=BROWSER)  # fmt: skip


def booking_shots(browser, server: LiveServer, out: Path, written: list[Path]) -> None:
    """Booking: free times and a booking on a phone; the reception kiosk, a ticket, the counter
    console and the calling board on a desktop (a number is checked in and called first)."""
    from scripts.booking_shots import take_booking

    take_booking(browser, server, out, written, Tab=Tab, shoot=shoot, staff_login=staff_login,
                 resident_login=resident_login, viewports=VIEWPORTS, browser_options=BROWSER)  # fmt: skip
    certificates(browser, server, out, written)
    return written


def certificates(browser, server: LiveServer, out: Path, written: list[Path]) -> None:
    """A 住民票の写し issued for the demo resident's household: page 1 of its PDF (pdftoppm), and
    the public /verify page that its QR code opens, in Japanese and English."""
    import subprocess

    from portal.certificates import payment, service
    from portal.extensions import db
    from portal.registry.models import Resident

    with server.app.app_context():
        resident = db.session.get(Resident, server.people.resident_id)
        offer = service.offer(resident, "residence")
        provider = payment.provider()
        pay = provider.start(service.quote("residence", 1), "cash", "screenshots")
        provider.settle(pay.id)
        issued = service.issue(
            resident,
            "residence",
            members=[m for m, _ in offer.members][:3],  # the whole certificate on one page
            items=["head_relationship", "kana"],
            payment_id=pay.id,
            actor="kiosk:screenshots",
        )
        db.session.remove()
    with tempfile.TemporaryDirectory(prefix="portal-pdf-") as tmp:
        pdf = Path(tmp) / "certificate.pdf"
        pdf.write_bytes(issued.pdf)
        target = out / "certificate-residence-page1"
        subprocess.run(  # noqa: S603 - fixed arguments, our own files
            ["/usr/bin/pdftoppm", "-r", "80", "-png", "-l", "1", "-singlefile", str(pdf), str(target)],
            check=True,
        )
        written.append(target.with_suffix(".png"))
    for lang, size in (("ja", "mobile"), ("en", "desktop")):
        context = browser.new_context(**BROWSER, **VIEWPORTS[size])
        tab = Tab(context.new_page(), server.url)
        tab.goto(f"/verify?serial={issued.serial}&code={issued.verify_code}")
        tab.set_language(lang)
        shoot(tab, out, f"verify-{lang}", size, written)
        context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--only", choices=["booking", "points"], help="only one feature's screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="portal-shots-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'portal.sqlite3'}"
        migrate(url)
        with LiveServer(url) as server, sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                if args.only == "booking":
                    written: list[Path] = []
                    booking_shots(browser, server, args.out, written)
                elif args.only == "points":
                    written = []
                    points_shots(browser, server, args.out, written)
                else:
                    written = take(browser, server, args.out)
                    written += take_kiosk(browser, Path(tmp), url, args.out)
                    from scripts.screenshots_library_shelter import take as library_shelter  # own portal

                    written += library_shelter(browser, args.out, Path(tmp))
            finally:
                browser.close()
    for path in written:
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"{shown}  {path.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
