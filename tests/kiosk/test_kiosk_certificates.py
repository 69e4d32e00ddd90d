"""Ordering certificates at the kiosk (the pages of portal/kiosk/certificates.py) against the real
certificate backend (portal/certificates, SoftHSM2), on SQLite and PostgreSQL, after a real card
login through the terminal agent: options, fee, payment through the simulator, the signed PDF
"printed" once and gone when the visit ends, refusals said in the resident's language."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from markupsafe import escape
from sqlalchemy import select

pytest.importorskip("portal.certificates")  # the certificate backend (helper "certs")

from portal.certificates import hsm
from portal.kiosk.models import KioskPrint
from tests.certificates.conftest import add_seal, add_tax, city_hsm  # noqa: F401 (fixture)
from tests.factories import csrf_from, make_cards, make_resident

from .conftest import start_agent
from .test_kiosk_session import KIOSK, _link, card_login, kiosk_page, redeem

PEOPLE = {"taro": ("山田　太郎", "ヤマダ　タロウ", "19800503", "1", 91)}


@pytest.fixture(scope="module")
def cards(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return make_cards(tmp_path_factory.mktemp("kiosk-cert-cards"), PEOPLE)


@pytest.fixture
def app_config(cards: dict, city_hsm: hsm.Material) -> dict:  # noqa: F811
    pki = cards["pki"]
    return {
        "CARD_TRUST_DIR": str(pki),
        "CARD_CRL_FILES": (str(pki / "auth_crl.der"), str(pki / "sign_crl.der")),
        "CERTIFICATE_HSM_DIR": str(city_hsm.directory),
        "RATELIMIT_ENABLED": False,
    }


@pytest.fixture
def household(db):
    from datetime import date

    head = make_resident(family="山田", given="太郎", given_kana="タロウ", sex=1, birth=date(1980, 5, 3))
    spouse = make_resident(
        family="山田",
        given="花子",
        sex=2,
        birth=date(1982, 8, 9),
        household=head.household,
        relation="spouse",
    )
    other = make_resident(family="鈴木", given="次郎", given_kana="ジロウ", sex=1, birth=date(1975, 1, 1))
    add_seal(head)
    add_tax(head, 2026)
    db.session.commit()
    return head, spouse, other


@pytest.fixture
def visit(app, db, live, household, cards, tmp_path) -> Iterator:
    """The head of the household logged in at kiosk-07 with his card: the kiosk page's client."""
    from kiosk.agent import signing
    from portal.cardid import service as cardid

    key = signing.generate_key()
    cardid.add_terminal(KIOSK, "kiosk", "キオスク", "中央区役所", signing.public_key_pem(key))
    db.session.commit()
    _link(db, cards["taro"], household[0])
    run = start_agent(live, key, cards["taro"], terminal=KIOSK)
    try:
        page = kiosk_page(app, KIOSK)
        assert redeem(page, card_login(run, live)[1]["ticket"]).status_code == 200
        yield page
    finally:
        run.httpd.close()


def form(page, url: str, data: dict, **kwargs):
    token = csrf_from(page.get(url if "order/" not in url else "/kiosk/menu").get_data(as_text=True))
    return page.post(url, data={"csrf_token": token, **data}, **kwargs)


def pdfsig(pdf: bytes, path: Path) -> str:
    path.write_bytes(pdf)
    return subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, check=False).stdout


def pdftext(pdf: bytes, path: Path) -> str:
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_order_a_residence_certificate_pay_and_print(app, db, visit, household, tmp_path):
    head, spouse, other = household
    listing = visit.get("/kiosk/certificates").get_data(as_text=True)
    assert "/kiosk/certificates/residence" in listing and "/kiosk/certificates/seal" in listing
    options = visit.get("/kiosk/certificates/residence")
    assert options.status_code == 200 and "花子" in options.get_data(as_text=True)
    assert "鈴木" not in options.get_data(as_text=True)  # not of this household
    # someone of another household is not a choice the page offered
    bad = form(visit, "/kiosk/certificates/residence", {"members": [str(other.id)], "copies": "1"})
    assert bad.status_code == 400
    chosen = form(
        visit, "/kiosk/certificates/residence", {"members": [str(head.id), str(spouse.id)], "copies": "2"}
    )
    assert chosen.status_code == 302 and chosen.headers["Location"] == "/kiosk/certificates/order"
    confirm = visit.get("/kiosk/certificates/order").get_data(as_text=True)
    assert "400" in confirm  # 200 yen a copy, two copies
    started = form(visit, "/kiosk/certificates/order/pay", {"method": "cash"})
    assert started.headers["Location"] == "/kiosk/certificates/order/payment"
    page = visit.get("/kiosk/certificates/order/payment").get_data(as_text=True)
    sim = page.split('data-simulator-url="')[1].split('"')[0]
    # not paid yet: issuing waits for the payment
    assert visit.get("/kiosk/certificates/order/payment/status").get_json() == {"status": "pending"}
    early = form(visit, "/kiosk/certificates/order/issue", {})
    assert early.headers["Location"] == "/kiosk/certificates/order/payment"
    assert visit.post(sim, json={}).get_json()["status"] == "paid"  # the simulator's "coins in"
    assert visit.get("/kiosk/certificates/order/payment/status").get_json() == {"status": "paid"}
    issued = form(visit, "/kiosk/certificates/order/issue", {})
    assert issued.status_code == 302 and "/kiosk/certificates/printed/" in issued.headers["Location"]
    printed = visit.get(issued.headers["Location"])
    assert printed.status_code == 200
    pdf_url = printed.get_data(as_text=True).split('id="printed-pdf"')[0].rsplit('src="', 1)[1].split('"')[0]
    pdf = visit.get(pdf_url)
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert "frame-ancestors 'self'" in pdf.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in printed.headers["Content-Security-Policy"]
    assert "Signature is Valid" in pdfsig(pdf.data, tmp_path / "out.pdf")
    text = pdftext(pdf.data, tmp_path / "text.pdf")
    assert "太郎" in text and "花子" in text and "鈴木" not in text
    row = db.session.scalar(select(KioskPrint))
    assert row.printed_at is not None and row.copies == 2
    # the same payment cannot issue twice
    assert form(visit, "/kiosk/certificates/order/issue", {}).headers["Location"] == "/kiosk/certificates"

    # the visit ends: the PDF is gone from the server, and the page with it
    ended = visit.post(
        "/kiosk/session/end",
        json={"reason": "finished"},
        headers={"X-CSRFToken": csrf_from(visit.get("/kiosk/menu").get_data(as_text=True))},
    )
    assert ended.status_code == 200
    db.session.refresh(row)
    assert row.pdf is None
    assert visit.get(pdf_url).status_code == 302
    assert visit.get(issued.headers["Location"]).status_code == 302


def test_refusals_and_cancelling(app, db, visit, household):
    head, _spouse, _other = household
    # income: the years on record; a year not offered is refused
    options = visit.get("/kiosk/certificates/income").get_data(as_text=True)
    assert "2026" in options
    assert form(visit, "/kiosk/certificates/income", {"year": "1999", "copies": "1"}).status_code == 400
    assert form(visit, "/kiosk/certificates/income", {"year": "2026", "copies": "99"}).status_code == 400
    assert form(visit, "/kiosk/certificates/income", {"year": "2026", "copies": "1"}).status_code == 302
    form(visit, "/kiosk/certificates/order/pay", {"method": "ic"})
    page = visit.get("/kiosk/certificates/order/payment").get_data(as_text=True)
    pay_id = page.split("/kiosk/payments/sim/")[1].split("/")[0]
    cancelled = form(visit, "/kiosk/certificates/order/cancel", {})
    assert cancelled.headers["Location"] == "/kiosk/menu"
    from portal.certificates import payment

    assert payment.provider().status(pay_id).status == "cancelled"
    # no seal registered any more: the seal certificate is refused with what to do next
    from portal.certificates.models import SealRegistration

    for seal in db.session.scalars(select(SealRegistration)):
        seal.status = "abolished"
    db.session.commit()
    refused = visit.get("/kiosk/certificates/seal")
    assert refused.status_code == 409
    from portal.certificates import service

    offer = service.offer(head, "seal")
    assert offer.refusal
    with app.test_request_context():  # Japanese, as the page
        said = str(escape(str(service.refusal_message(offer.refusal))))
    assert said in refused.get_data(as_text=True)
    assert "no such kind" not in visit.get("/kiosk/certificates/nothing").get_data(as_text=True)
    assert visit.get("/kiosk/certificates/nothing").status_code == 404


def test_another_visit_cannot_reach_a_print(app, db, visit, household):
    head, _spouse, _other = household
    form(visit, "/kiosk/certificates/residence", {"members": [str(head.id)], "copies": "1"})
    form(visit, "/kiosk/certificates/order/pay", {"method": "cash"})
    page = visit.get("/kiosk/certificates/order/payment").get_data(as_text=True)
    visit.post(page.split('data-simulator-url="')[1].split('"')[0], json={})
    issued = form(visit, "/kiosk/certificates/order/issue", {})
    url = issued.headers["Location"]
    # a second browser on the same kiosk, without this visit
    stranger = kiosk_page(app, KIOSK)
    assert stranger.get(url).status_code == 302
    assert stranger.get(url + "/document.pdf").status_code == 302
