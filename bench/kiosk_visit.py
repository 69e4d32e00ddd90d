"""A whole kiosk visit through the kiosk's own pages: from "PIN entered" to "signed PDF on the
printer" — against the bare backend path (the same card login and the same issuance called
directly, no kiosk session, no pages) measured in the same run.

One visit, timed from the moment the PIN is handed to the terminal agent (the real kiosk.agent,
in-memory virtual card), which signs a ``kiosk_login`` challenge and posts it to the live portal
(Werkzeug on 127.0.0.1): the ticket comes back; then the kiosk page's requests (Flask test client,
the same app): redeem the ticket (kiosk session, access record), the certificate options, the fee,
payment started, the simulator's "coins in", the issuance (eligibility, payment consumed, PDF
rendered with reportlab and signed in SoftHSM2 with pyHanko), and the printed PDF fetched.
The bare path: the agent's card login and ``service.issue`` with a settled payment. PostgreSQL
from scripts/services.sh.

    .venv/bin/python bench/kiosk_visit.py [--visits 40] [--url …]
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

from _common import ROOT, default_server_url, figure, percentile, recreate_database

PIN = "4826"
TERMINAL = "kiosk-bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=40, help="timed visits (and as many bare runs)")
    parser.add_argument("--url", default=default_server_url())
    args = parser.parse_args()
    if not args.url:
        raise SystemExit('set TEST_POSTGRES_URL (eval "$(bash scripts/services.sh)") or pass --url')

    from flask_migrate import upgrade
    from werkzeug.serving import WSGIRequestHandler, make_server

    from card.sim.profile import make_profile
    from kiosk.agent import signing
    from kiosk.agent.client import ServerClient
    from kiosk.agent.reader import SimBackend
    from kiosk.agent.service import Agent
    from portal.cardid import service as cardid
    from portal.certificates import hsm, payment, service
    from portal.extensions import db
    from portal.registry.models import Address, Household, Resident, Ward
    from portal.registry.names import search_key
    from wsgi import create_app

    work = Path(tempfile.mkdtemp(prefix="bench-kiosk-visit-"))
    hsm.init(work / "hsm")
    hsm.use_process_directory(work / "hsm")
    profile = make_profile(
        work / "card", name="山田　花子", birth="19850401", sex="2", auth_pin=PIN, pki_dir=work / "pki"
    )
    url = recreate_database(args.url, "portal_bench_kiosk_visit")
    app = create_app(
        {
            "NAME": "test",
            "SQLALCHEMY_DATABASE_URI": url,
            "RATELIMIT_ENABLED": False,
            "CARD_TRUST_DIR": str(work / "pki"),
            "CARD_CRL_FILES": (str(work / "pki" / "auth_crl.der"),),
            "CERTIFICATE_HSM_DIR": str(work / "hsm"),
        }
    )

    class Quiet(WSGIRequestHandler):
        def log_request(self, code="-", size="-") -> None:
            pass

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    origin = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_ORIGIN"] = origin
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    key = signing.generate_key()
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        ward = Ward(code="01", name_ja="中央区", name_en="Chuo")
        address = Address(ward=ward, postal_code="2600001", town="本町1丁目", block="1番1号")
        household = Household(number="B1", address=address)
        person = Resident(
            atena_no="B000000001",
            family_name="山田",
            given_name="花子",
            family_name_kana="ヤマダ",
            given_name_kana="ハナコ",
            name_search=search_key("山田", "花子", "ヤマダ", "ハナコ"),
            birth_date=date(1985, 4, 1),
            sex=2,
            ward=ward,
            address=address,
            household=household,
        )
        db.session.add(person)
        db.session.flush()
        household.head = person
        verified = cardid.verify_certificate_only(profile.certificate("auth"))
        db.session.add(
            cardid.CardCredential.from_verified(
                verified, resident_id=person.id, linked_by="bench", via="text_ap"
            )
        )
        cardid.add_terminal(TERMINAL, "kiosk", "キオスク", "コンビニ", signing.public_key_pem(key))
        db.session.commit()
        person_id = person.id

    agent = Agent(SimBackend(work / "card"), ServerClient(origin, TERMINAL, key), poll_ms=1000).start()
    token_re = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')

    def visit(measure: list | None) -> None:
        page = app.test_client()
        page.get(f"/kiosk/?terminal={TERMINAL}")
        token = token_re.search(page.get("/kiosk/").get_data(as_text=True)).group(1)
        t0 = time.perf_counter()  # the PIN is entered
        answer = agent.login("kiosk_login", None, PIN)
        opened = page.post(
            "/kiosk/session", json={"ticket": answer["ticket"]}, headers={"X-CSRFToken": token}
        )
        token = token_re.search(page.get("/kiosk/menu").get_data(as_text=True)).group(1)
        page.post(
            "/kiosk/certificates/residence",
            data={"csrf_token": token, "members": [str(person_id)], "copies": "1"},
        )
        page.get("/kiosk/certificates/order")
        page.post("/kiosk/certificates/order/pay", data={"csrf_token": token, "method": "ic"})
        html = page.get("/kiosk/certificates/order/payment").get_data(as_text=True)
        page.post(html.split('data-simulator-url="')[1].split('"')[0], json={})
        issued = page.post("/kiosk/certificates/order/issue", data={"csrf_token": token})
        pdf = page.get(issued.headers["Location"] + "/document.pdf")
        t1 = time.perf_counter()
        if opened.status_code != 200 or not pdf.data.startswith(b"%PDF"):
            raise SystemExit(f"visit failed: {opened.get_json()} {pdf.status_code}")
        page.post("/kiosk/session/end", json={"reason": "finished"}, headers={"X-CSRFToken": token})
        if measure is not None:
            measure.append(t1 - t0)

    def bare(measure: list | None) -> None:
        t0 = time.perf_counter()
        agent.login("kiosk_login", None, PIN)  # the same card work and server verification
        with app.app_context():
            resident = db.session.get(Resident, person_id)
            provider = payment.provider()
            pay = provider.start(service.quote("residence", 1), "ic", "bench")
            provider.settle(pay.id)
            issued = service.issue(
                resident, "residence", members=[person_id], payment_id=pay.id, actor="kiosk:bench"
            )
            db.session.remove()
        t1 = time.perf_counter()
        if not issued.pdf.startswith(b"%PDF"):
            raise SystemExit("no PDF")
        if measure is not None:
            measure.append(t1 - t0)

    for _ in range(3):  # warm-up: fonts, first PKCS#11 session, templates
        visit(None)
        bare(None)
    visits: list[float] = []
    bares: list[float] = []
    for _ in range(args.visits):  # interleaved, so both see the same machine
        visit(visits)
        bare(bares)
    agent.close()
    server.shutdown()
    shutil.rmtree(work, ignore_errors=True)

    ms = lambda v: f"{v * 1000:,.0f} ms"  # noqa: E731
    print(
        f"kiosk visit: {len(visits)} visits (PIN → 住民票 PDF through the kiosk pages), PostgreSQL, SoftHSM2"
    )
    figure("visit: PIN entered → printed PDF p50", ms(percentile(visits, 50)))
    figure("visit: PIN entered → printed PDF p95 (goal ≤ 1,000 ms)", ms(percentile(visits, 95)))
    figure("limit: bare card login + issue p50", ms(percentile(bares, 50)))
    figure("limit: bare card login + issue p95", ms(percentile(bares, 95)))
    figure("ratio: visit p50 / bare p50", f"{percentile(visits, 50) / percentile(bares, 50):.2f}")


if __name__ == "__main__":
    main()
