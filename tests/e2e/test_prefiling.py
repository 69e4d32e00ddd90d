"""Pre-filing in Chromium: a resident pre-files moving in with a child (with the required
document), the processing centre reviews it and marks it ready, a counter clerk types the
reservation number at the express counter, opens it and completes it. axe-core on each page."""

from __future__ import annotations

import re

import pytest

from tests.e2e.live import Tab, blocking, describe

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

MINIMAL_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def _axe_clean(tab: Tab) -> None:
    problems = blocking(tab.axe())
    assert not problems, describe(problems)


def _staff(new_tab, login: str, password: str) -> Tab:
    tab = new_tab()
    tab.goto("/staff/login")
    tab.page.fill("#login_id", login)
    tab.page.fill("#password", password)
    tab.page.click("main form button[type=submit]")
    tab.page.wait_for_url("**/staff/")
    return tab


def test_moving_in_with_a_child_from_pre_filing_to_the_counter(new_tab, live_server, tmp_path):
    people = live_server.people
    resident = new_tab()
    resident.goto("/login")
    resident.page.fill("#email", people.resident_email)
    resident.page.fill("#password", people.resident_password)
    resident.page.click("main form button[type=submit]")
    resident.page.wait_for_url("**/me/")

    resident.goto("/me/prefilings/")
    _axe_clean(resident)
    resident.page.click("form[action='/me/prefilings/start/moving_in'] button[type=submit]")
    resident.page.wait_for_url(re.compile(r".*/me/prefilings/\d+/edit"))
    page = resident.page
    assert page.input_value("#f-family_name")  # pre-filled from the register
    page.fill("#f-phone", "043-000-0000")
    page.fill("#f-moved_on", "2026-11-20")
    page.fill("#f-previous_postal_code", "100-0001")
    page.fill("#f-previous_address", "東京都千代田区千代田1-1")
    page.fill("#f-new_postal_code", "260-0001")
    page.fill("#f-new_address", "みなと市中央区本町1丁目1番1号")
    page.check("#f-has_children")
    page.click("button[name=action][value=save]")
    page.wait_for_selector("#f-children_count")
    page.fill("#f-children_count", "1")
    page.click("button[name=action][value=save]")
    page.wait_for_load_state()
    _axe_clean(resident)
    document = tmp_path / "tenshutsu.pdf"
    document.write_bytes(MINIMAL_PDF)
    page.set_input_files("#file-moving_out_certificate", str(document))
    page.click("form[action$='/attachments'] button[type=submit]")
    page.wait_for_load_state()
    page.click("button[name=action][value=submit]")
    page.wait_for_selector("#reservation-no")
    number = page.inner_text("#reservation-no").strip()
    assert re.fullmatch(r"\d{4}-\d{4}-[A-Z]", number), number
    _axe_clean(resident)

    centre = _staff(new_tab, "processing1", people.staff_password)
    centre.goto("/staff/prefilings")
    _axe_clean(centre)
    centre.page.click(f"main a.code:text('{number}')")
    centre.page.wait_for_url(re.compile(r".*/staff/prefilings/\d+$"))
    _axe_clean(centre)
    centre.page.click("form[action$='/ready'] button[type=submit]")
    centre.page.wait_for_load_state()

    clerk = _staff(new_tab, people.staff_login, people.staff_password)
    clerk.goto("/staff/express")
    clerk.page.fill("#no", number.replace("-", "").lower())  # typed loosely: still found
    clerk.page.click("#express-find button[type=submit]")
    clerk.page.wait_for_selector("form[action$='/open']")
    _axe_clean(clerk)
    clerk.page.click("form[action$='/open'] button[type=submit]")
    clerk.page.wait_for_selector("form[action$='/complete']")
    _axe_clean(clerk)
    clerk.page.click("form[action$='/complete'] button[type=submit]")
    clerk.page.wait_for_load_state()

    resident.goto("/me/prefilings/")
    assert re.search("完了|Completed", resident.page.content())
