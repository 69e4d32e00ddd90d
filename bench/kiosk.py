"""Kiosk certificate issuance: the time from "PIN entered" to "signed PDF ready", and signed
certificate PDFs per second through SoftHSM2 — against a bare PKCS#11 RSA-2048 signature through
python-pkcs11 on the same token, measured in the same run.

One issuance, timed from the moment the PIN is handed to the terminal agent:
  the agent (kiosk.agent, the real code) with the in-memory virtual card (card.sim) verifies the
  PIN and signs a counter-scan challenge on the card, posts the terminal-signed answer to the
  live portal (Werkzeug, 127.0.0.1) which verifies signature, chain, validity and CRL and finds
  the linked resident; then the kiosk's calls: offer, payment started and settled by the simulator,
  and service.issue (eligibility, payment consumed, PDF rendered with reportlab, signed in SoftHSM2
  with pyHanko, row and access records committed). PostgreSQL from scripts/services.sh.

    .venv/bin/python bench/kiosk.py [--issues 60] [--throughput 60] [--threads 4] [--url …]
"""

from __future__ import annotations

import argparse
import base64
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

from _common import ROOT, default_server_url, figure, percentile, recreate_database

PIN = "4826"
KIND = "residence"


def raw_pkcs11_signs_per_second(material, seconds: float = 3.0) -> float:
    """The limit: C_Sign with CKM_SHA256_RSA_PKCS on the city's key, one thread, no PDF."""
    from pkcs11 import KeyType, Mechanism, ObjectClass

    from portal.certificates import hsm

    data = b"x" * 2048
    with hsm.handle(material).session() as session:
        key = session.get_key(ObjectClass.PRIVATE_KEY, KeyType.RSA, label=material.key_label)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            with hsm.P11_LOCK:
                key.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS)
            n += 1
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=60, help="timed PIN → PDF issuances")
    parser.add_argument("--throughput", type=int, default=60, help="issuances for the PDFs/s figure")
    parser.add_argument("--threads", type=int, default=4, help="concurrent kiosks for PDFs/s")
    parser.add_argument("--url", default=default_server_url())
    args = parser.parse_args()
    if not args.url:
        raise SystemExit('set TEST_POSTGRES_URL (eval "$(bash scripts/services.sh)") or pass --url')

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from flask_migrate import upgrade
    from werkzeug.serving import WSGIRequestHandler, make_server

    from card.sim.profile import make_profile
    from kiosk.agent import signing
    from kiosk.agent.client import ServerClient
    from kiosk.agent.reader import SimBackend
    from kiosk.agent.service import Agent
    from portal.cardid import service as cardid
    from portal.cardid.models import CardChallenge
    from portal.certificates import hsm, payment, seals, service
    from portal.certificates.demo import tax_for
    from portal.certificates.models import SealRegistration, TaxRecord
    from portal.extensions import db
    from portal.registry.models import Address, Household, Resident, Ward
    from portal.registry.names import search_key
    from wsgi import create_app

    work = Path(tempfile.mkdtemp(prefix="bench-kiosk-"))
    material = hsm.init(work / "hsm")
    hsm.use_process_directory(work / "hsm")
    profile = make_profile(
        work / "card", name="山田　花子", birth="19850401", sex="2", auth_pin=PIN, pki_dir=work / "pki"
    )
    url = recreate_database(args.url, "portal_bench_kiosk")
    app = create_app(
        {
            "NAME": "test",
            "SQLALCHEMY_DATABASE_URI": url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": args.threads + 8},
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
    terminal_key: Ed25519PrivateKey = signing.generate_key()

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
        db.session.add(
            SealRegistration(
                resident_id=person.id,
                registration_no="B-1",
                image_png=seals.impression_png("山田"),
                registered_on=date(2020, 1, 1),
                registered_by="bench",
            )
        )
        db.session.add(TaxRecord(resident_id=person.id, fiscal_year=2026, **tax_for(4_000_000, 0)))
        verified = cardid.verify_certificate_only(profile.certificate("auth"))
        db.session.add(
            cardid.CardCredential.from_verified(
                verified, resident_id=person.id, linked_by="bench", via="text_ap"
            )
        )
        terminal = cardid.add_terminal(
            "kiosk-bench", "kiosk", "キオスク", "コンビニ", signing.public_key_pem(terminal_key)
        )
        db.session.commit()
        terminal_id = terminal.id

    agent = Agent(
        SimBackend(work / "card"), ServerClient(origin, "kiosk-bench", terminal_key), poll_ms=1000
    ).start()

    def one(measure: list | None) -> None:
        with app.app_context():
            terminal = db.session.get(cardid.Terminal, terminal_id)
            ch = cardid.issue_challenge("counter_scan", origin=origin, terminal=terminal)
            db.session.commit()
            challenge_id, message = ch.id, base64.b64encode(cardid.challenge_message(ch)).decode()
            db.session.remove()
        t0 = time.perf_counter()  # the PIN is entered
        answer = agent.login("counter_scan", challenge_id, PIN, message=message)
        t1 = time.perf_counter()
        if answer.get("status") != "done":
            raise SystemExit(f"card login failed: {answer}")
        with app.app_context():
            resident = db.session.get(Resident, db.session.get(CardChallenge, challenge_id).resident_id)
            terminal = db.session.get(cardid.Terminal, terminal_id)
            offer = service.offer(resident, KIND)
            provider = payment.provider()
            pay = provider.start(service.quote(KIND, 1), "ic", terminal.code)
            provider.settle(pay.id)
            issued = service.issue(
                resident,
                KIND,
                members=[m for m, _ in offer.members],
                items=["head_relationship"],
                payment_id=pay.id,
                terminal=terminal,
                actor="kiosk:kiosk-bench",
            )
            db.session.remove()
        t2 = time.perf_counter()
        if not issued.pdf.startswith(b"%PDF"):
            raise SystemExit("no PDF")
        if measure is not None:
            measure.append((t2 - t0, t1 - t0, t2 - t1))

    for _ in range(5):  # warm-up: fonts, TLS-free HTTP, first PKCS#11 session
        one(None)
    samples: list[tuple[float, float, float]] = []
    for _ in range(args.issues):
        one(samples)
    agent.close()

    def issue_only(_: int) -> None:
        with app.app_context():
            resident = db.session.scalar(db.select(Resident))
            pay = payment.provider().start(service.quote("seal", 1), "cash", "bench")
            payment.provider().settle(pay.id)
            service.issue(resident, "seal", payment_id=pay.id, actor="kiosk:bench")
            db.session.remove()

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        list(pool.map(issue_only, range(args.throughput)))
    pdfs_per_second = args.throughput / (time.perf_counter() - start)
    raw = raw_pkcs11_signs_per_second(material)
    server.shutdown()
    shutil.rmtree(work, ignore_errors=True)

    total = [s[0] for s in samples]
    login = [s[1] for s in samples]
    issue = [s[2] for s in samples]
    ms = lambda v: f"{v * 1000:,.0f} ms"  # noqa: E731
    print(
        f"kiosk: {len(samples)} issuances of a 住民票の写し, virtual card in memory, "
        "PostgreSQL, SoftHSM2 RSA-2048"
    )
    figure("PIN entered → signed PDF ready p50", ms(percentile(total, 50)))
    figure("PIN entered → signed PDF ready p95 (goal ≤ 1,000 ms)", ms(percentile(total, 95)))
    figure(
        "  of which card login (card + server verify) p50 / p95",
        f"{ms(percentile(login, 50))} / {ms(percentile(login, 95))}",
    )
    figure(
        "  of which offer + payment + issue + sign p50 / p95",
        f"{ms(percentile(issue, 50))} / {ms(percentile(issue, 95))}",
    )
    figure(f"signed certificate PDFs per second ({args.threads} kiosks at once)", f"{pdfs_per_second:,.1f}")
    figure("limit: bare PKCS#11 RSA-2048 signatures per second", f"{raw:,.0f}")
    figure("ratio: PDFs per second / bare signatures per second", f"{pdfs_per_second / raw:.3f}")


if __name__ == "__main__":
    main()
