"""The card in Chromium, through real pcscd: a counter clerk links a resident's virtual card and
scans it through the terminal agent (wrong PIN and the last-try refusal shown to the page), and
the resident logs in on a PC with `python -m card login`. axe-core checks every page."""

from __future__ import annotations

import fcntl
import re
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
TERMINAL = "counter-e2e"

pytestmark = [pytest.mark.e2e, pytest.mark.pcscd, pytest.mark.xdist_group("e2e")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def world(sqlite_template, tmp_path_factory):
    """A live portal trusting a test JPKI, the resident's card in pcscd's virtual reader, a
    registered counter terminal and its agent."""
    if shutil.which("pcscd") is None:
        pytest.fail("pcscd is required (make setup)")
    subprocess.run(["bash", str(ROOT / "scripts/pcscd.sh")], check=True, capture_output=True, timeout=60)
    tmp = tmp_path_factory.mktemp("card-e2e")
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

    key = Ed25519PrivateKey.generate()
    key_file = tmp / "terminal.key"
    pem = signing.private_key_pem(key)
    key_file.write_bytes(pem.encode() if isinstance(pem, str) else pem)
    key_file.chmod(0o600)
    with server.app.app_context():
        person = db.session.get(Resident, server.people.resident_id)
        number = vault.reveal(
            person.id,
            purpose="test: writing the card",
            actor=Actor(kind="job", id="e2e", role="card issuance", organisation="test"),
        )
        profile = make_profile(
            tmp / "card",
            name=f"{person.family_name}\u3000{person.given_name}",
            kana=f"{person.family_name_kana}\u3000{person.given_name_kana}",
            address=person.address.line_ja("みなと市"),
            birth=person.birth_date.strftime("%Y%m%d"),
            sex=str(person.sex),
            auth_pin=PIN,
            sign_pin="ABC123",
            my_number=number,
            pki_dir=pki,
        )
        cardid.add_terminal(
            TERMINAL, "counter", "窓口 E2E", server.people.staff_organisation, termsig.public_pem(key)
        )
        db.session.commit()
        db.session.remove()
    lock = LOCK_PATH.open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    vpcd = VpcdClient(VirtualCard.from_profile(profile.directory)).start()
    agent = None
    try:
        assert vpcd.wait_connected(10)
        wait_present(READER, True)
        agent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kiosk.agent",
                "--server",
                server.url,
                "--terminal",
                TERMINAL,
                "--key",
                str(key_file),
                "--port",
                str(agent_port),
                "--reader",
                READER,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", agent_port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError("the terminal agent did not start")
        yield {"server": server, "agent_port": agent_port}
    finally:
        if agent is not None:
            agent.terminate()
            output = agent.communicate(timeout=10)[0]
            assert PIN not in output  # the agent never prints a PIN
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
    assert not problems, describe(problems)


def _login_staff(tab: Tab, world) -> None:
    people = world["server"].people
    tab.goto("/staff/login")
    tab.page.fill("#login_id", people.staff_login)
    tab.page.fill("#password", people.staff_password)
    tab.page.click("main button[type=submit]")
    tab.page.wait_for_url("**/staff/")


def _counter_try(tab: Tab, pin: str, button: str, *, last_try: bool = False) -> None:
    tab.page.fill("#pin", pin)
    if last_try:
        tab.page.check("#last-try")
    tab.page.click(button)


def test_counter_links_and_scans_the_card_then_the_resident_logs_in_on_a_pc(browser, world):
    people = world["server"].people
    clerk = _tab(browser, world)
    _login_staff(clerk, world)
    clerk.goto("/staff/counter/card")
    clerk.page.select_option("#terminal", TERMINAL)
    clerk.page.click("main form.filters button[type=submit]")
    clerk.page.wait_for_selector("#counter-card")
    expect(clerk.page.locator("#tries")).not_to_be_empty()
    _axe_clean(clerk)

    # link the card to the register (identity proofing through the text AP)
    _counter_try(clerk, PIN, "#link")
    clerk.page.wait_for_url("**/staff/counter/card/c_*")
    assert people.resident_name.split()[0] in clerk.page.content()
    _axe_clean(clerk)

    # a wrong PIN is shown with the tries left; with one left the page refuses without consent
    clerk.goto("/staff/counter/card")
    expect(clerk.page.locator("#tries")).not_to_be_empty()
    for left in (2, 1):
        _counter_try(clerk, "0000", "#scan")
        expect(clerk.page.locator("#card-result")).to_contain_text(str(left))
    _counter_try(clerk, PIN, "#scan")
    expect(clerk.page.locator("#card-result")).to_contain_text(re.compile("残り1回|one try"))
    _axe_clean(clerk)
    # the resident agrees; the right PIN resets the count and the scan shows the summary
    _counter_try(clerk, PIN, "#scan", last_try=True)
    clerk.page.wait_for_url("**/staff/counter/card/c_*")
    assert people.resident_name.split()[0] in clerk.page.content()

    # the resident logs in on a PC with the card helper
    resident = _tab(browser, world)
    resident.goto("/login")
    resident.page.click("a[href='/card-login']")
    resident.page.wait_for_selector("strong.code")
    _axe_clean(resident)
    code = resident.page.inner_text("strong.code")
    helper = subprocess.run(
        [
            sys.executable,
            "-m",
            "card",
            "login",
            f"{world['server'].url}/c/{code}",
            "--pin-stdin",
            "--reader",
            READER,
        ],
        cwd=ROOT,
        input=PIN + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert helper.returncode == 0, helper.stdout + helper.stderr
    assert PIN not in helper.stdout + helper.stderr
    resident.page.wait_for_url("**/me/")
    assert people.resident_name in resident.page.content()
    resident.page.click("a[href='/me/access-history']")
    page = resident.page.content()
    assert re.search(people.staff_organisation, page)  # the counter's scan is in the history
    resident.goto("/me/cards")
    _axe_clean(resident)
    for tab in (clerk, resident):
        tab.page.context.close()
