"""The portal in Chromium: a resident logs in, sees the home page, switches to English and opens
the access history; a counter clerk looks a resident up with a purpose and opens the record, and the
resident's access history shows that read. axe-core checks every page visited, in Japanese and in
English, and fails on any serious or critical violation.

UI strings are asserted only in English (the Japanese catalogue changes); on Japanese pages the
tests rely on html[lang] and on the demo city's data (names, organisations).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import expect

from tests.e2e.live import Tab, blocking, describe

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


@dataclass
class Audit:
    """axe-core results per page and language; one assertion at the end names every failure."""

    checked: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def check(self, tab: Tab, name: str) -> None:
        where = f"{name} [{tab.lang}] {tab.page.url}"
        self.checked.append(where)
        violations = tab.axe()
        if blocking(violations):
            self.failures.append(f"{where}\n{describe(blocking(violations))}")
        elif violations:
            print(f"axe (not blocking) on {where}: {', '.join(v['id'] for v in violations)}")

    def both(self, tab: Tab, name: str) -> None:
        """Check the page in its language, switch with the header button, check it again in the
        other language, and switch back."""
        first = tab.lang
        other = "en" if first == "ja" else "ja"
        self.check(tab, name)
        tab.set_language(other)
        self.check(tab, name)
        tab.set_language(first)

    def assert_clean(self, *tabs: Tab) -> None:
        print(f"axe-core checked {len(self.checked)} page views: " + "; ".join(self.checked))
        if self.failures:
            pytest.fail(
                f"axe found serious or critical violations on {len(self.failures)} page view(s):\n\n"
                + "\n\n".join(self.failures),
                pytrace=False,
            )
        refusals = [r for tab in tabs for r in tab.csp_refusals]
        if refusals:
            pytest.fail("Content-Security-Policy refusals:\n" + "\n".join(refusals), pytrace=False)


def submit(tab: Tab, form: str = "main form") -> None:
    with tab.page.expect_navigation():
        tab.page.locator(f"{form} button[type=submit]").click()


def resident_login(tab: Tab, email: str, password: str) -> None:
    tab.page.locator("#email").fill(email)
    tab.page.locator("#password").fill(password)
    submit(tab)


def test_resident_logs_in_switches_to_english_and_opens_access_history(live_server, new_tab):
    people = live_server.people
    tab = new_tab()
    page = tab.page
    audit = Audit()

    tab.goto("/")
    assert tab.lang == "ja", "Japanese is the default language"
    audit.both(tab, "landing page")

    page.locator("main a[href='/login']").click()
    expect(page).to_have_url(live_server.url + "/login")
    audit.both(tab, "login")

    # A wrong password re-renders the form with the error tied to the field, in both languages.
    for lang in ("ja", "en"):
        tab.set_language(lang)
        resident_login(tab, people.resident_email, "not-the-password")
        expect(page.locator("#password")).to_have_attribute("aria-invalid", "true")
        audit.check(tab, "login with an error")
    tab.set_language("en")
    expect(page.locator("#password-error")).to_contain_text("not correct")

    tab.set_language("ja")
    resident_login(tab, people.resident_email, people.resident_password)
    expect(page).to_have_url(live_server.url + "/me/")
    tab.set_language("ja")  # the account keeps its last choice; start this visit in Japanese
    expect(page.locator("main")).to_contain_text(people.resident_name)
    audit.check(tab, "resident home")

    tab.set_language("en")  # the header button
    expect(page).to_have_url(live_server.url + "/me/")
    expect(page.locator("h1")).to_have_text("My page")
    expect(page.locator("main")).to_contain_text(f"Hello, {people.resident_name}.")
    expect(page.get_by_role("button", name="日本語")).to_be_visible()
    audit.check(tab, "resident home")

    page.get_by_role("navigation").get_by_role("link", name="Access history").click()
    expect(page).to_have_url(live_server.url + "/me/access-history")
    assert tab.lang == "en", "the language choice holds across pages"
    expect(page.locator("h1")).to_have_text("Access history")
    audit.check(tab, "access history")

    tab.set_language("ja")
    expect(page).to_have_url(live_server.url + "/me/access-history")
    audit.check(tab, "access history")

    audit.assert_clean(tab)


def test_staff_look_up_shows_in_the_residents_access_history(live_server, new_tab):
    people = live_server.people
    audit = Audit()

    staff = new_tab()
    page = staff.page
    staff.goto("/staff/login")
    audit.both(staff, "staff login")
    page.locator("#login_id").fill(people.staff_login)
    page.locator("#password").fill(people.staff_password)
    submit(staff)
    expect(page).to_have_url(live_server.url + "/staff/")
    audit.both(staff, "staff console")

    page.get_by_role("navigation").locator("a[href='/staff/residents']").click()
    expect(page).to_have_url(live_server.url + "/staff/residents")
    audit.both(staff, "resident look-up")

    # A look-up without a purpose is refused, with the error tied to the purpose field.
    page.locator("#q").fill(people.resident_kana)
    submit(staff)
    expect(page.locator("#purpose")).to_have_attribute("aria-invalid", "true")
    audit.check(staff, "resident look-up without a purpose")

    page.locator("#q").fill(people.resident_kana)
    page.locator("#purpose").select_option("identity_check")
    submit(staff)
    record_link = page.locator(f"main table a[href^='/staff/residents/{people.resident_id}?']")
    expect(record_link).to_have_text(people.resident_name)
    audit.both(staff, "resident look-up with results")

    record_link.click()
    expect(page).to_have_url(re.compile(rf"/staff/residents/{people.resident_id}\?purpose=identity_check$"))
    expect(page.locator("h1")).to_contain_text(people.resident_name)
    audit.both(staff, "resident record")

    # The resident, in their own browser, sees that read: who, what, why.
    resident = new_tab()
    resident.goto("/login")
    resident_login(resident, people.resident_email, people.resident_password)
    expect(resident.page).to_have_url(live_server.url + "/me/")
    resident.set_language("en")
    resident.page.get_by_role("navigation").get_by_role("link", name="Access history").click()
    expect(resident.page).to_have_url(live_server.url + "/me/access-history")
    record_read = (
        resident.page.locator("main table tbody tr")
        .filter(has_text=people.staff_organisation)
        .filter(has_text="Household members")
        .filter(has_text="Identity check at the counter")
    )
    expect(record_read.first).to_be_visible()
    expect(record_read.first).to_contain_text("City staff")
    audit.check(resident, "access history with a staff read")

    resident.set_language("ja")
    expect(
        resident.page.locator("main table tbody tr").filter(has_text=people.staff_organisation).first
    ).to_be_visible()
    audit.check(resident, "access history with a staff read")

    audit.assert_clean(staff, resident)
