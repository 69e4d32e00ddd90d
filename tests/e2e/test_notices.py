"""The PO box in Chromium: author1 targets a notice by ward (the live count answers as the boxes
are ticked), previews it as a resident and submits it; author1's own approval is refused; author2
approves and it is sent; resident1 opens it and replies; author1 sees the figures. axe-core checks
every page in Japanese and English (serious/critical fail), and no CSP refusal may occur."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import expect

from tests.e2e.live import LiveServer, Tab
from tests.e2e.test_portal import Audit, resident_login, submit

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

AUTHOR2 = "author2"


@pytest.fixture(scope="module")
def live_server(sqlite_template, tmp_path_factory):
    """The demo city plus a second notice author; the PO box blueprints registered."""
    path = tmp_path_factory.mktemp("e2e-notices") / "portal.sqlite3"
    shutil.copy(sqlite_template, path)
    server = LiveServer(f"sqlite:///{path}")
    try:
        from portal import demo
        from portal.accounts import service as accounts
        from portal.extensions import db
        from portal.notices import service
        from portal.notices.views import init_app
        from portal.registry.models import Resident

        if "notices" not in server.app.blueprints:
            init_app(server.app)
        with server.app.app_context():
            accounts.create_staff(AUTHOR2, "広報 二郎", "市民局 広報課", ["author"], demo.STAFF_PASSWORD)
            person = db.session.get(Resident, server.people.resident_id)
            server.ward_code = person.ward.code
            server.atena_no = person.atena_no
            server.expected = service.recipient_count({"ward": [person.ward.code]})
            db.session.commit()
            db.session.remove()
        yield server
    finally:
        server.stop()


def staff_login(tab: Tab, login_id: str, password: str) -> None:
    tab.goto("/staff/login")
    tab.page.locator("#login_id").fill(login_id)
    tab.page.locator("#password").fill(password)
    submit(tab)


def test_author_targets_second_author_approves_resident_replies_author_sees_figures(live_server, new_tab):
    people = live_server.people
    base = live_server.url
    audit = Audit()

    # --- author1 writes the notice -----------------------------------------------------------
    author = new_tab()
    page = author.page
    staff_login(author, "author1", people.staff_password)
    author.goto("/staff/notices/")
    author.set_language("ja")
    audit.both(author, "notice list")
    author.set_language("en")
    page.get_by_role("link", name="New notice").click()
    expect(page).to_have_url(base + "/staff/notices/new")
    audit.both(author, "new notice")

    # A bad form comes back with the errors tied to the fields, in both languages.
    for lang in ("ja", "en"):
        author.set_language(lang)
        page.locator("#age_min").fill("90")
        page.locator("#age_max").fill("10")
        submit(author, "main form.notice-form")
        expect(page.locator("#title_en")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#age_min")).to_have_attribute("aria-invalid", "true")
        audit.check(author, "new notice with errors")
    expect(page.locator("#title_en-error")).to_contain_text("Enter a title in English.")

    author.goto("/staff/notices/new")
    page.locator("#category").select_option("event")
    page.locator("#title_ja").fill("{name}様 防災訓練のご案内")
    page.locator("#title_en").fill("Disaster drill for {name}")
    page.locator("#body_ja").fill("{ward}の防災訓練に参加されますか。")
    page.locator("#body_en").fill("Will you join the drill in {ward}?")
    page.locator(f"input[name=wards][value='{live_server.ward_code}']").check()
    # The live count (static/js/notices.js) answers for the ticked ward.
    count = page.locator("#recipient-count")
    expect(count).to_have_attribute("data-count", str(live_server.expected))
    expect(count).to_contain_text(f"{live_server.expected} resident")
    page.locator("#reply_kind").select_option("choice")
    page.locator("#reply_options").fill("午前の部 | Morning\n午後の部 | Afternoon")
    submit(author, "main form.notice-form")
    expect(page.locator("h1")).to_have_text("Disaster drill for {name}")
    notice_url = page.url
    audit.both(author, "notice page (draft)")

    # Preview as resident1 (recorded in their access history).
    page.locator("#atena_no").fill(live_server.atena_no)
    submit(author, "#preview-form")
    expect(page.locator("main")).to_contain_text(f"Disaster drill for {people.resident_name}")
    audit.both(author, "preview")

    author.goto(notice_url.removeprefix(base))
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.locator(".flash-success")).to_contain_text("Submitted for approval")
    # The writer cannot approve their own notice.
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".flash-error")).to_contain_text("approved by a different author")
    audit.both(author, "notice page (waiting for approval)")

    # --- author2 approves; it is sent -------------------------------------------------------------
    approver = new_tab()
    staff_login(approver, AUTHOR2, people.staff_password)
    approver.goto(notice_url.removeprefix(base))
    approver.set_language("en")
    approver.page.get_by_role("button", name="Approve").click()
    expect(approver.page.locator(".flash-success")).to_contain_text("Approved")
    expect(approver.page.locator("main dl.summary")).to_contain_text("Sent")
    expect(approver.page.locator("#recipients")).to_have_text(str(live_server.expected))
    audit.both(approver, "notice page (sent)")

    # --- resident1 opens and replies ----------------------------------------------------------------
    resident = new_tab()
    resident.goto("/login")
    resident_login(resident, people.resident_email, people.resident_password)
    resident.goto("/me/notices/")
    resident.set_language("ja")
    expect(resident.page.locator("main table")).to_contain_text(f"{people.resident_name}様 防災訓練のご案内")
    audit.both(resident, "inbox")
    resident.set_language("en")
    resident.page.get_by_role("link", name=f"Disaster drill for {people.resident_name}").click()
    expect(resident.page.locator("h1")).to_have_text(f"Disaster drill for {people.resident_name}")
    audit.both(resident, "notice")
    with resident.page.expect_navigation():
        resident.page.get_by_role("button", name="Afternoon").click()
    expect(resident.page.locator("main")).to_contain_text("Your current answer: Afternoon")
    with resident.page.expect_navigation():
        resident.page.get_by_role("button", name="Morning").click()
    expect(resident.page.locator("main")).to_contain_text("Your current answer: Morning")
    audit.both(resident, "notice with an answer")

    resident.goto("/me/notices/")
    expect(resident.page.locator("main table")).to_contain_text("Read")
    resident.page.get_by_role("link", name="Notification settings").click()
    audit.both(resident, "notification settings")
    resident.page.locator("#event-email").uncheck()
    submit(resident, "main form.form")
    expect(resident.page.locator("#event-email")).not_to_be_checked()
    expect(resident.page.locator("#event-push")).to_be_checked()

    # --- author1 sees the figures -----------------------------------------------------------------
    author.goto(notice_url.removeprefix(base))
    author.set_language("en")
    page.get_by_role("link", name="Figures").click()
    expect(page.locator("#fig-targeted")).to_have_text(str(live_server.expected))
    expect(page.locator("#fig-opened")).to_contain_text("1 (")
    expect(page.locator("#fig-replied")).to_have_text("1")
    expect(page.locator("#fig-replies tr").filter(has_text="Morning")).to_contain_text("1")
    audit.both(author, "figures")

    audit.assert_clean(author, approver, resident)
