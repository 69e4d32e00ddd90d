"""The library desk and shelter mode in Chromium, with the demo resident's virtual card in pcscd's
reader (holding the vpcd lock) and the terminal agent as a real process: library staff link the
card to a patron number and find it again by card (only the number is shown); shelter staff check
the resident in by card, see the roster with head count and needs, and the resident's household
sees the check-in in the portal. axe-core checks every page in Japanese and English."""

from __future__ import annotations

import fcntl
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from card.sim import VirtualCard
from card.sim.profile import make_profile
from card.sim.vpcd import VpcdClient
from tests.card.conftest import LOCK_PATH, READER, wait_present
from tests.e2e.live import LiveServer, Tab, blocking, describe

ROOT = Path(__file__).resolve().parents[2]
PIN = "1234"
LIBRARY = "library-e2e"
SHELTER = "shelter-e2e"
OPENING = "2026-TY21-S02"  # the demo's second open shelter (港町コミュニティセンター)

pytestmark = [pytest.mark.e2e, pytest.mark.pcscd, pytest.mark.xdist_group("e2e")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AgentProcess:
    """``python -m kiosk.agent`` for one terminal, on the port the pages expect."""

    def __init__(self, world: dict, terminal: str, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kiosk.agent",
                "--server",
                world["server"].url,
                "--terminal",
                terminal,
                "--key",
                str(world["keys"][terminal]),
                "--port",
                str(world["agent_port"]),
                "--reader",
                READER,
                *extra,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", world["agent_port"]), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError("the terminal agent did not start")

    def stop(self) -> str:
        self.proc.terminate()
        output = self.proc.communicate(timeout=10)[0]
        assert PIN not in output  # the agent never prints a PIN
        return output

    def __enter__(self) -> AgentProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@pytest.fixture(scope="module")
def world(sqlite_template, tmp_path_factory):
    if shutil.which("pcscd") is None:
        pytest.fail("pcscd is required (make setup)")
    subprocess.run(["bash", str(ROOT / "scripts/pcscd.sh")], check=True, capture_output=True, timeout=60)
    tmp = tmp_path_factory.mktemp("library-shelter-e2e")
    db_path = tmp / "portal.sqlite3"
    shutil.copy(sqlite_template, db_path)
    pki, agent_port = tmp / "pki", _free_port()
    server = LiveServer(
        f"sqlite:///{db_path}",
        CARD_TRUST_DIR=str(pki),
        CARD_CRL_FILES=(str(pki / "auth_crl.der"),),
        AGENT_ORIGIN=f"http://127.0.0.1:{agent_port}",
    )
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from card import termsig
    from kiosk.agent import signing
    from portal.access.service import Actor
    from portal.cardid import service as cardid
    from portal.extensions import db
    from portal.registry.models import Resident
    from portal.vault import service as vault

    keys = {}
    with server.app.app_context():
        person = db.session.get(Resident, server.people.resident_id)
        actor = Actor(kind="job", id="e2e", role="card issuance", organisation="test")
        profile = make_profile(
            tmp / "card",
            name=f"{person.family_name}\u3000{person.given_name}",
            kana=f"{person.family_name_kana}\u3000{person.given_name_kana}",
            address=person.address.line_ja("みなと市"),
            birth=person.birth_date.strftime("%Y%m%d"),
            sex=str(person.sex),
            auth_pin=PIN,
            sign_pin="ABC123",
            my_number=vault.reveal(person.id, purpose="test: writing the card", actor=actor),
            pki_dir=pki,
        )
        # identity proofing at a counter happened earlier: the card is linked to the resident
        cardid._link(
            cardid.verify_certificate_only(profile.certificate("auth")), person, via="text_ap", actor=actor
        )
        household = [(m.full_name, m.id) for m in person.household.members]
        for code, kind in ((LIBRARY, "library"), (SHELTER, "shelter")):
            key = Ed25519PrivateKey.generate()
            keys[code] = tmp / f"{code}.key"
            keys[code].write_bytes(signing.private_key_pem(key))
            keys[code].chmod(0o600)
            cardid.add_terminal(code, kind, f"{kind} E2E", "みなと市", termsig.public_pem(key))
        db.session.commit()
        db.session.remove()
    lock = LOCK_PATH.open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    vpcd = VpcdClient(VirtualCard.from_profile(profile.directory)).start()
    try:
        assert vpcd.wait_connected(10)
        wait_present(READER, True)
        yield {
            "server": server,
            "agent_port": agent_port,
            "keys": keys,
            "household": household,
            "state": tmp / "agent-state",
        }
    finally:
        vpcd.stop()
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
        server.stop()


def _tab(browser, world) -> Tab:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    return Tab(context.new_page(), world["server"].url)


def _axe_clean(tab: Tab) -> None:
    problems = blocking(tab.axe())
    assert not problems, f"{tab.page.url} ({tab.lang}):\n" + describe(problems)


def _login_staff(tab: Tab, login: str) -> None:
    from portal import demo

    tab.goto("/staff/login")
    tab.page.fill("#login_id", login)
    tab.page.fill("#password", demo.STAFF_PASSWORD)
    tab.page.click("main button[type=submit]")
    tab.page.wait_for_url("**/staff/")


def _main_text(tab: Tab) -> str:
    return tab.page.inner_text("main")


def test_library_desk_links_and_finds_the_patron_number(browser, world):
    people = world["server"].people
    clerk = _tab(browser, world)
    _login_staff(clerk, "library1")
    clerk.set_language("ja")
    clerk.goto("/staff/library/card")
    clerk.page.select_option("#terminal", LIBRARY)
    clerk.page.click("main form.filters button[type=submit]")
    clerk.page.wait_for_selector("#library-card")
    with AgentProcess(world, LIBRARY):
        expect(clerk.page.locator("#tries")).not_to_be_empty()
        _axe_clean(clerk)
        # a number that cannot be a patron number: the page says so, the card is not used
        clerk.page.fill("#patron", "12")
        clerk.page.fill("#pin", PIN)
        clerk.page.click("#link")
        expect(clerk.page.locator("#card-result")).to_contain_text("4〜16")
        # the resident types the PIN; the card is linked to the number
        clerk.page.fill("#patron", "0012-3456")
        clerk.page.fill("#pin", PIN)
        clerk.page.click("#link")
        clerk.page.wait_for_url("**/staff/library/card/c_*")
        expect(clerk.page.locator("#patron-number")).to_have_text("00123456")
        _axe_clean(clerk)
        # in English: a look-up by card shows the patron number and nothing of the resident
        clerk.set_language("en")
        clerk.goto("/staff/library/card")
        expect(clerk.page.locator("#tries")).not_to_be_empty()
        _axe_clean(clerk)
        clerk.page.fill("#pin", PIN)
        clerk.page.click("#lookup")
        clerk.page.wait_for_url("**/staff/library/card/c_*")
        expect(clerk.page.locator("#patron-number")).to_have_text("00123456")
        main = _main_text(clerk)
        for leak in (people.resident_name.split()[0], people.resident_kana.split()[0]):
            assert leak not in main
        _axe_clean(clerk)
    # the resident sees the link in the portal (ja and en)
    resident = _tab(browser, world)
    resident.goto("/login")
    resident.page.fill("#email", people.resident_email)
    resident.page.fill("#password", people.resident_password)
    resident.page.click("main button[type=submit]")
    resident.page.wait_for_url("**/me/")
    for lang in ("ja", "en"):
        resident.goto("/me/library")
        resident.set_language(lang)
        expect(resident.page.locator("#library-links")).to_contain_text("00123456")
        _axe_clean(resident)
    for tab in (clerk, resident):
        tab.page.context.close()


def test_shelter_check_in_by_card_roster_and_family(browser, world):
    people = world["server"].people
    staff = _tab(browser, world)
    _login_staff(staff, "shelter1")
    for lang in ("ja", "en"):
        staff.goto("/staff/shelter/")
        staff.set_language(lang)
        expect(staff.page.locator("main table").first).to_be_visible()
        _axe_clean(staff)
    staff.set_language("ja")
    staff.goto(f"/staff/shelter/{OPENING}/")
    before = int(staff.page.get_attribute("#head-count", "data-count") or "0")
    staff.page.select_option("#terminal", SHELTER)
    staff.page.click("main form.filters button[type=submit]")
    staff.page.wait_for_selector("#shelter-card")
    with AgentProcess(world, SHELTER, "--state-dir", str(world["state"]), "--sync-seconds", "1"):
        expect(staff.page.locator("#tries")).not_to_be_empty()
        expect(staff.page.locator("#queue-state")).to_have_text("チェックインはすべて送信済みです。")
        _axe_clean(staff)
        staff.page.fill("#pin", PIN)
        staff.page.click("#checkin-card")
        expect(staff.page.locator("#card-result")).to_contain_text("チェックインしました")
        expect(staff.page.locator("#card-result")).to_contain_text(people.resident_name)
        expect(staff.page.locator("#head-count")).to_have_attribute("data-count", str(before + 1))
        # the same card again: already here, nothing new
        staff.page.fill("#pin", PIN)
        staff.page.click("#checkin-card")
        expect(staff.page.locator("#card-result")).to_contain_text("すでに")
    staff.goto(f"/staff/shelter/{OPENING}/roster")
    assert int(staff.page.get_attribute("#head-count", "data-count") or "0") == before + 1
    expect(staff.page.locator("#roster")).to_contain_text(people.resident_name)
    _axe_clean(staff)
    # needs recorded for the resident show on the roster
    staff.page.locator("#roster tr", has_text=people.resident_name).locator("a").click()
    staff.page.fill("#allergy", "卵")
    staff.page.click("main form.form button[type=submit]")
    staff.page.wait_for_url("**/staff/shelter/stays/*")
    _axe_clean(staff)
    staff.goto(f"/staff/shelter/{OPENING}/roster")
    staff.set_language("en")
    expect(staff.page.locator("#roster")).to_contain_text("卵")
    _axe_clean(staff)
    staff.goto(f"/staff/shelter/{OPENING}/")
    _axe_clean(staff)

    # the household sees where its members checked in
    resident = _tab(browser, world)
    resident.goto("/login")
    resident.page.fill("#email", people.resident_email)
    resident.page.fill("#password", people.resident_password)
    resident.page.click("main button[type=submit]")
    resident.page.wait_for_url("**/me/")
    for lang in ("ja", "en"):
        resident.goto("/me/shelter")
        resident.set_language(lang)
        row = resident.page.locator("#family li", has_text=people.resident_name)
        expect(row).to_contain_text("港町" if lang == "ja" else "Minatomachi")
        _axe_clean(resident)
    for tab in (staff, resident):
        tab.page.context.close()
