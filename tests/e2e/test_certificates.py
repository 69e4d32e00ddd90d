"""The public certificate check in Chromium: a certificate issued for a demo resident is checked
by following its QR link (/verify?serial=…&code=…), by typing serial and code into the form, and
with nothing typed (the error summary). axe-core checks each state in Japanese and English."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.e2e.live import Tab
from tests.e2e.test_portal import Audit, submit

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


@pytest.fixture
def issued(live_server):
    from portal.certificates import payment, service
    from portal.certificates.models import SealRegistration
    from portal.extensions import db
    from portal.registry.models import Resident

    with live_server.app.app_context():
        seal = db.session.scalar(select(SealRegistration).where(SealRegistration.status == "registered"))
        resident = db.session.get(Resident, seal.resident_id)
        provider = payment.provider()
        pay = provider.start(200, "cash", "e2e")
        provider.settle(pay.id)
        result = service.issue(resident, "seal", payment_id=pay.id, actor="kiosk:e2e")
        name = resident.full_name
        db.session.remove()
    return result, name


def test_verify_page(new_tab, issued):
    certificate, name = issued
    audit = Audit()
    tab: Tab = new_tab()
    tab.goto(f"/verify?serial={certificate.serial}&code={certificate.verify_code}")
    assert tab.lang == "ja"
    expect(tab.page.locator("#result-title")).to_have_text("有効")
    audit.both(tab, "verify: valid")
    tab.set_language("en")
    expect(tab.page.locator("#result-title")).to_have_text("Valid")
    expect(tab.page.locator("main")).to_contain_text("Seal registration certificate")
    assert name not in tab.page.content()  # the check shows no personal data

    tab.goto("/verify")
    tab.page.locator("#serial").fill(certificate.serial)
    tab.page.locator("#code").fill("WRON-GCOD")
    submit(tab)
    expect(tab.page.locator("#result-title")).to_have_text("Not found")
    audit.both(tab, "verify: unknown")

    tab.goto("/verify?serial=&code=")
    expect(tab.page.locator("[role=alert]")).to_contain_text("Enter the serial number.")
    tab.page.locator("[role=alert] a[href='#code']").click()
    expect(tab.page.locator("#code")).to_be_focused()
    audit.both(tab, "verify: nothing typed")
    audit.assert_clean(tab)
