"""The kiosk in Chromium, through real pcscd: the test puts the resident's virtual card on pcscd's
virtual reader and takes it off again while Playwright drives the kiosk pages, with the real
terminal agent (``python -m kiosk.agent --reader``) between them. Card login with the on-screen
keypad, wrong PIN, the last-try warning, a blocked card, removal ending the visit, the idle
timeout, and axe-core on every screen in Japanese, English and easy Japanese."""

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
from sqlalchemy import select

from card.sim import VirtualCard
from card.sim.profile import make_profile
from card.sim.vpcd import VpcdClient
from tests.card.conftest import LOCK_PATH, READER, wait_present
from tests.certificates.conftest import city_hsm  # noqa: F401 (fixture: the city's SoftHSM2 token)
from tests.e2e.live import LiveServer, Tab, blocking, describe

ROOT = Path(__file__).resolve().parents[2]
PIN = "4812"
TERMINAL = "kiosk-e2e"

pytestmark = [pytest.mark.e2e, pytest.mark.pcscd, pytest.mark.xdist_group("e2e")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class World:
    def __init__(self, server: LiveServer, vpcd: VpcdClient, cards: dict[str, Path]) -> None:
        self.server, self.vpcd, self.cards = server, vpcd, cards

    def insert(self, which: str) -> None:
        """Put a card on the reader (a fresh copy of its PIN counters: as that card is now)."""
        self.vpcd.card = VirtualCard.from_profile(self.cards[which], persist=True)
        self.vpcd.card.remove()
        self.vpcd.insert()
        wait_present(READER, True)

    def remove(self) -> None:
        self.vpcd.remove()
        wait_present(READER, False)

    def sessions(self) -> list:
        from portal.extensions import db
        from portal.kiosk.models import KioskSession

        with self.server.app.app_context():
            rows = db.session.scalars(select(KioskSession).order_by(KioskSession.created_at)).all()
            db.session.expunge_all()
            db.session.remove()
            return rows


@pytest.fixture(scope="module")
def world(sqlite_template, tmp_path_factory, city_hsm):  # noqa: F811 - the fixture
    """A live portal trusting a test JPKI, a registered kiosk terminal and its agent on pcscd's
    virtual reader, and two virtual cards of the demo resident (one to lock) linked to them."""
    if shutil.which("pcscd") is None:
        pytest.fail("pcscd is required (make setup)")
    subprocess.run(["bash", str(ROOT / "scripts/pcscd.sh")], check=True, capture_output=True, timeout=60)
    tmp = tmp_path_factory.mktemp("kiosk-e2e")
    db_path = tmp / "portal.sqlite3"
    shutil.copy(sqlite_template, db_path)
    pki, agent_port = tmp / "pki", _free_port()
    server = LiveServer(
        f"sqlite:///{db_path}",
        CARD_TRUST_DIR=str(pki),
        CARD_CRL_FILES=(str(pki / "auth_crl.der"),),
        AGENT_ORIGIN=f"http://127.0.0.1:{agent_port}",
        CERTIFICATE_HSM_DIR=str(city_hsm.directory),
    )
    from card import termsig
    from kiosk.agent import signing
    from portal.cardid import service as cardid
    from portal.cardid.models import CardCredential
    from portal.extensions import db
    from portal.registry.models import Resident

    key = signing.generate_key()
    key_file = tmp / "terminal.key"
    key_file.write_bytes(signing.private_key_pem(key))
    key_file.chmod(0o600)
    cards: dict[str, Path] = {}
    with server.app.app_context():
        person = db.session.get(Resident, server.people.resident_id)
        for which in ("good", "locked"):
            cards[which] = make_profile(
                tmp / which,
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
        # linked at a counter earlier: the good card (the locked one is never logged in with)
        verified = cardid.verify_certificate_only((cards["good"] / "auth_cert.der").read_bytes())
        db.session.add(
            CardCredential.from_verified(verified, resident_id=person.id, linked_by="e2e", via="text_ap")
        )
        cardid.add_terminal(TERMINAL, "kiosk", "キオスク E2E", "中央区役所", termsig.public_pem(key))
        db.session.commit()
        db.session.remove()
    lock = LOCK_PATH.open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    vpcd = VpcdClient(VirtualCard.from_profile(cards["good"], persist=True)).start()
    agent = None
    try:
        assert vpcd.wait_connected(10)
        wait_present(READER, True)
        vpcd.remove()
        wait_present(READER, False)
        agent = subprocess.Popen(
            [
                *(sys.executable, "-m", "kiosk.agent", "--server", server.url, "--terminal", TERMINAL),
                *(
                    "--key",
                    str(key_file),
                    "--port",
                    str(agent_port),
                    "--reader",
                    READER,
                    "--poll-ms",
                    "100",
                    "--report-removal",
                ),
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
        yield World(server, vpcd, cards)
    finally:
        if agent is not None:
            agent.terminate()
            output = agent.communicate(timeout=10)[0]
            assert PIN not in output  # the agent never prints a PIN
        vpcd.stop()
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
        server.stop()


@pytest.fixture
def kiosk(browser, world):
    """The kiosk's Chromium, opened at boot on /kiosk/?terminal=CODE; the card starts off the reader."""
    context = browser.new_context(viewport={"width": 1280, "height": 1024})
    context.set_default_timeout(20_000)
    tab = Tab(context.new_page(), world.server.url)
    tab.goto(f"/kiosk/?terminal={TERMINAL}")
    expect(tab.page.locator("#screen-insert")).to_be_visible()
    yield tab
    context.close()
    if world.vpcd._inserted.is_set():
        world.remove()


def axe_clean(tab: Tab, where: str) -> None:
    problems = blocking(tab.axe())
    assert not problems, f"{where}:\n{describe(problems)}"
    assert not tab.csp_refusals, tab.csp_refusals


def choose_language(tab: Tab, lang: str) -> None:
    with tab.page.expect_navigation():
        tab.page.click(f".kiosk-lang button[value={lang}]")


def type_pin(tab: Tab, pin: str) -> None:
    for digit in pin:
        tab.page.click(f".keypad [data-digit='{digit}']")
    tab.page.click("#pin-ok")


def test_card_login_then_removing_the_card_ends_the_visit(kiosk: Tab, world: World) -> None:
    page, people = kiosk.page, world.server.people
    axe_clean(kiosk, "insert (ja)")
    world.insert("good")
    expect(page.locator("#screen-pin")).to_be_visible()
    expect(page.locator("#pin-tries")).to_contain_text("3")
    axe_clean(kiosk, "PIN keypad (ja)")

    # a wrong PIN: said so, with the tries left, and the keypad again
    type_pin(kiosk, "0000")
    expect(page.locator("#pin-message")).to_contain_text("暗証番号が違います")
    expect(page.locator("#pin-tries")).to_contain_text("2")
    # the right PIN (the count resets): the menu greets the card holder
    type_pin(kiosk, PIN)
    page.wait_for_url("**/kiosk/menu")
    expect(page.locator("#greeting")).to_contain_text(people.resident_name.split()[0])
    axe_clean(kiosk, "menu (ja)")
    visit = world.sessions()[-1]
    assert (visit.resident_id, visit.terminal_code, visit.ended_at) == (people.resident_id, TERMINAL, None)

    # taking the card off ends the visit at once, on the screen and on the server
    world.remove()
    page.wait_for_url(re.compile(r"/kiosk/\?ended=card_removed$"))
    expect(page.locator("#ended")).to_be_visible()
    assert people.resident_name.split()[0] not in page.content()
    axe_clean(kiosk, "ended (ja)")
    visit = world.sessions()[-1]
    assert visit.end_reason == "card_removed" and visit.ended_at is not None
    # the back button brings nothing back
    page.go_back()
    page.wait_for_load_state()
    assert people.resident_name.split()[0] not in page.content()
    assert "/kiosk/menu" not in page.url


@pytest.mark.parametrize("lang", ["en", "easy"])
def test_every_screen_in_english_and_easy_japanese(kiosk: Tab, world: World, lang: str) -> None:
    page = kiosk.page
    choose_language(kiosk, lang)
    assert kiosk.lang == ("en" if lang == "en" else "ja")
    axe_clean(kiosk, f"insert ({lang})")
    world.insert("good")
    expect(page.locator("#screen-pin")).to_be_visible()
    axe_clean(kiosk, f"PIN keypad ({lang})")
    type_pin(kiosk, PIN)
    page.wait_for_url("**/kiosk/menu")
    expect(page.locator("#greeting")).to_contain_text("Hello" if lang == "en" else "こんにちは")
    assert kiosk.lang == ("en" if lang == "en" else "ja")  # the choice survives the login
    axe_clean(kiosk, f"menu ({lang})")
    if lang == "easy":
        expect(page.locator("h1")).to_have_text("なにを しますか？")
    # finishing ends the visit too
    page.click("#finish")
    page.wait_for_url(re.compile(r"ended=finished$"))
    assert world.sessions()[-1].end_reason == "finished"
    axe_clean(kiosk, f"ended ({lang})")


def test_pin_lock_out_protection(kiosk: Tab, world: World) -> None:
    page = kiosk.page
    world.insert("locked")
    expect(page.locator("#screen-pin")).to_be_visible()
    type_pin(kiosk, "0000")
    expect(page.locator("#pin-tries")).to_contain_text("2")
    type_pin(kiosk, "0000")
    # one try left: a warning first, and nothing is sent to the card without the resident's yes
    expect(page.locator("#screen-last")).to_be_visible()
    expect(page.locator("#screen-last h1")).to_have_text("残り1回です")
    axe_clean(kiosk, "last try (ja)")
    page.click("#last-no")
    expect(page.locator("#error-title")).to_have_text("最後の1回を使わずに中止しました。")
    expect(page.locator("#error-next")).to_contain_text("窓口")
    # the card was not touched: still one try
    page.click("#error-again")
    expect(page.locator("#screen-last")).to_be_visible()
    page.click("#last-yes")
    expect(page.locator("#screen-pin")).to_be_visible()
    type_pin(kiosk, "0000")
    expect(page.locator("#error-title")).to_have_text("暗証番号がロックされています。")
    expect(page.locator("#error-next")).to_contain_text("窓口")
    axe_clean(kiosk, "blocked (ja)")
    # taken off and put back: still blocked, said at once
    world.remove()
    expect(page.locator("#screen-insert")).to_be_visible()
    world.insert("locked")
    expect(page.locator("#error-title")).to_have_text("暗証番号がロックされています。")
    assert world.sessions() == [] or all(s.ended_at for s in world.sessions())


def test_a_card_that_is_not_linked_and_the_idle_timeout(kiosk: Tab, world: World) -> None:
    page = kiosk.page
    choose_language(kiosk, "en")
    # (the locked card's PIN is blocked; a not-linked card answers card_not_linked after the PIN:
    # a third copy is not needed, the good card is unlinked for this test instead)
    from portal.cardid.models import CardCredential
    from portal.extensions import db

    app = world.server.app
    with app.app_context():
        cred = db.session.scalars(select(CardCredential)).first()
        cred.status = "revoked"
        db.session.commit()
        db.session.remove()
    try:
        world.insert("good")
        expect(page.locator("#screen-pin")).to_be_visible()
        type_pin(kiosk, PIN)
        expect(page.locator("#error-title")).to_have_text(
            "This card is not registered for city services yet."
        )
        expect(page.locator("#error-next")).to_contain_text("counter")
        axe_clean(kiosk, "not linked (en)")
    finally:
        with app.app_context():
            cred = db.session.scalars(select(CardCredential)).first()
            cred.status = "active"
            db.session.commit()
            db.session.remove()
    # idle: a short limit for this visit; the page warns, then ends the visit on the server
    app.config.update(KIOSK_IDLE_SECONDS=6, KIOSK_IDLE_WARNING_SECONDS=4)
    try:
        page.click("#error-again")
        expect(page.locator("#screen-pin")).to_be_visible()
        type_pin(kiosk, PIN)
        page.wait_for_url("**/kiosk/menu")
        expect(page.locator("#idle-warning")).to_be_visible()
        axe_clean(kiosk, "idle warning (en)")
        page.wait_for_url(re.compile(r"ended=idle$"))
        assert world.sessions()[-1].end_reason == "idle"
    finally:
        app.config.update(KIOSK_IDLE_SECONDS=120, KIOSK_IDLE_WARNING_SECONDS=30)


def test_order_a_residence_certificate_and_get_the_signed_pdf(kiosk: Tab, world: World, tmp_path) -> None:
    page, people = kiosk.page, world.server.people
    world.insert("good")
    expect(page.locator("#screen-pin")).to_be_visible()
    type_pin(kiosk, PIN)
    page.wait_for_url("**/kiosk/menu")
    page.click("#menu-certificates")
    page.wait_for_url("**/kiosk/certificates")
    axe_clean(kiosk, "certificates (ja)")
    page.click("#cert-residence")
    page.wait_for_url("**/kiosk/certificates/residence")
    axe_clean(kiosk, "options (ja)")
    page.click("#copies-more")
    expect(page.locator("#copies-shown")).to_have_text("2")
    page.click("#options-next")
    page.wait_for_url("**/kiosk/certificates/order")
    expect(page.locator("#fee")).to_contain_text("400")
    axe_clean(kiosk, "fee (ja)")
    page.click("#pay-cash")
    page.wait_for_url("**/kiosk/certificates/order/payment")
    axe_clean(kiosk, "payment (ja)")
    page.click("#simulate-pay")  # the cash box (simulator) takes the coins
    page.wait_for_url("**/kiosk/certificates/printed/*")
    expect(page.locator("#printed-message")).to_be_visible()
    axe_clean(kiosk, "printed (ja)")
    pdf_url = page.locator("#printed-pdf").get_attribute("src")
    pdf = page.request.get(world.server.url + pdf_url)
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
    path = tmp_path / "certificate.pdf"
    path.write_bytes(pdf.body())
    checked = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, check=False).stdout
    assert "Signature is Valid" in checked
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    family = people.resident_name.split()[0]
    assert family in "".join(text.split())  # the holder's name, spaces aside
    # taking the card ends the visit: the printed PDF is no longer served
    world.remove()
    page.wait_for_url(re.compile(r"ended=card_removed$"))
    assert page.request.get(world.server.url + pdf_url, max_redirects=0).status == 302
