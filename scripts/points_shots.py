"""Citizen points screenshots (called by scripts/screenshots.py): the resident's points page with
its rank card, every expiry date and the history, the member QR code, the catalogue (phone, ja and
en); the partners page and the facility-coupon desk (desktop)."""

from __future__ import annotations

from pathlib import Path


def take_points(browser, server, out: Path, written: list[Path], *, Tab, shoot, staff_login, resident_login,
                viewports: dict, browser_options: dict) -> None:  # fmt: skip
    for lang, size in (("ja", "mobile"), ("en", "mobile"), ("ja", "desktop"), ("en", "desktop")):
        context = browser.new_context(**browser_options, **viewports[size])
        tab = Tab(context.new_page(), server.url)
        resident_login(tab, server)
        tab.set_language(lang)
        tab.goto("/points/")
        shoot(tab, out, f"points-{lang}", size, written)
        if size == "mobile":
            tab.goto("/points/qr")
            shoot(tab, out, f"points-qr-{lang}", size, written)
            tab.goto("/points/catalogue")
            shoot(tab, out, f"points-catalogue-{lang}", size, written)
        else:
            tab.goto("/points/partners")
            shoot(tab, out, f"points-partners-{lang}", size, written)
        context.close()
    context = browser.new_context(**browser_options, **viewports["desktop"])
    tab = Tab(context.new_page(), server.url)
    tab.goto("/staff/login")
    tab.page.locator("#login_id").fill("admin1")
    tab.page.locator("#password").fill(server.people.staff_password)
    with tab.page.expect_navigation():
        tab.page.locator("main form button[type=submit]").click()
    for lang in ("ja", "en"):
        tab.set_language(lang)
        tab.goto("/staff/points/rules")
        shoot(tab, out, f"points-staff-rules-{lang}", "desktop", written)
    tab.set_language("ja")
    tab.goto("/staff/points/partners")
    shoot(tab, out, "points-staff-partners-ja", "desktop", written)
    context.close()
