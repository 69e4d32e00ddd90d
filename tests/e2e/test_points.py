"""Citizen points in Chromium: resident1 of the demo city opens Points — the card in its rank's
colour, the balance, every expiry date, pending points, history — joins a partner, shows the
member QR code, gets a pool coupon from the catalogue, and a library clerk uses that coupon once.
axe-core checks every page in Japanese and English (serious or critical violations fail)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.test_portal import Audit, resident_login, submit

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def test_resident_points_catalogue_and_coupon_at_the_facility(live_server, new_tab):
    people = live_server.people
    tab = new_tab()
    page = tab.page
    audit = Audit()
    tab.goto("/login")
    resident_login(tab, people.resident_email, people.resident_password)
    tab.set_language("en")

    page.get_by_role("navigation").get_by_role("link", name="Points").click()
    expect(page).to_have_url(live_server.url + "/points/")
    expect(page.locator("h1")).to_have_text("My points")
    card = page.locator(".points-card")
    expect(card).to_contain_text("points you can use")
    expect(card).to_contain_text("pending")
    assert re.search(r"tier-\w+", card.get_attribute("class") or "")
    expiry_rows = page.locator("section:has(h2:text('When your points expire')) tbody tr")
    assert expiry_rows.count() >= 3, "every upcoming expiry date is listed"
    expect(page.locator("main")).to_contain_text("Reversed")
    balance = int(page.locator(".points-number").inner_text().replace(",", ""))
    audit.both(tab, "points")

    page.locator("main").get_by_role("link", name="Partners").click()
    expect(page.locator("h1")).to_have_text("Points partners")
    join = page.get_by_role("button", name=re.compile(r"^Join"))
    joined_before = page.get_by_text("Joined", exact=True).count()
    with page.expect_navigation():
        join.first.click()
    expect(page.locator(".flash")).to_contain_text("You joined")
    assert page.get_by_text("Joined", exact=True).count() == joined_before + 1
    audit.both(tab, "partners")

    tab.goto("/points/qr")
    expect(page.get_by_role("img", name="Member QR code")).to_be_visible()
    audit.both(tab, "member QR")

    tab.goto("/points/catalogue")
    audit.both(tab, "catalogue")
    pool = page.locator("li.panel", has_text="City pool")
    with page.expect_navigation():
        pool.get_by_role("button").click()
    expect(page).to_have_url(live_server.url + "/points/coupons")
    flash = page.locator(".flash").inner_text()
    code = re.search(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", flash).group(0)
    expect(page.locator("tbody")).to_contain_text("Not used yet")
    audit.both(tab, "coupons")
    tab.goto("/points/")
    assert int(page.locator(".points-number").inner_text().replace(",", "")) == balance - 300

    desk = new_tab()
    desk.goto("/staff/login")
    desk.page.locator("#login_id").fill("library1")
    desk.page.locator("#password").fill(people.staff_password)
    submit(desk)
    desk.set_language("en")
    desk.goto("/staff/points/coupons")
    desk.page.locator("#code").fill(code.lower().replace("-", ""))
    submit(desk)
    expect(desk.page.locator(".flash-success")).to_contain_text(code)
    audit.both(desk, "facility coupon")
    desk.page.locator("#code").fill(code)
    submit(desk)
    expect(desk.page.locator("#code-error")).to_contain_text("already used")
    audit.check(desk, "facility coupon, used twice")

    tab.goto("/points/coupons")
    expect(page.locator("tbody")).to_contain_text("Used")
    audit.assert_clean(tab, desk)
