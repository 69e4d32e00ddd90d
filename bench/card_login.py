"""Card-login verifications per second: the server's whole path for one PC card login —
issue a challenge to the browser session, verify the card's answer (signature, chain to the
anchors, validity, key usage, CRL look-up, linked credential), and start the session —
against raw RSA-2048 PKCS#1 v1.5 signature verifies with `cryptography` in the same run.

The card's signing is done outside the timed part (with the card's key file, as fast as the
library can), so the figure is the server's. PostgreSQL from scripts/services.sh.

    .venv/bin/python bench/card_login.py [--logins 300] [--url postgresql+psycopg://…]
"""

from __future__ import annotations

import argparse
import base64
import re
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from _common import ROOT, default_server_url, recreate_database
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import load_der_x509_certificate


def raw_verifies_per_second(key, cert_der: bytes, seconds: float = 3.0) -> float:
    public = load_der_x509_certificate(cert_der).public_key()
    message = b"x" * 200
    signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        n += 1
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=300)
    parser.add_argument("--url", default=default_server_url())
    args = parser.parse_args()
    if not args.url:
        raise SystemExit('set TEST_POSTGRES_URL (eval "$(bash scripts/services.sh)") or pass --url')

    from flask_migrate import upgrade

    from card.sim.profile import make_profile
    from portal.accounts import service as accounts
    from portal.cardid import service as cardid
    from portal.extensions import db
    from portal.models_base import utcnow
    from portal.registry.models import Address, Household, Resident, Ward
    from portal.registry.names import search_key
    from wsgi import create_app

    work = Path(tempfile.mkdtemp(prefix="bench-card-login-"))
    profile = make_profile(work / "card", name="山田　花子", birth="19850401", sex="2", pki_dir=work / "pki")
    key = serialization.load_pem_private_key((work / "card" / "auth_key.pem").read_bytes(), None)
    cert_der = profile.certificate("auth")

    url = recreate_database(args.url, "portal_bench_card_login")
    app = create_app(
        {
            "NAME": "test",
            "SQLALCHEMY_DATABASE_URI": url,
            "RATELIMIT_ENABLED": False,
            "CARD_TRUST_DIR": str(work / "pki"),
            "CARD_CRL_FILES": (str(work / "pki" / "auth_crl.der"),),
            "PUBLIC_ORIGIN": "http://portal.bench",
        }
    )
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        ward = Ward(code="01", name_ja="中央区", name_en="Chuo")
        address = Address(ward=ward, postal_code="2600001", town="本町1丁目", block="1番1号")
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
            household=Household(number="B1", address=address),
        )
        db.session.add(person)
        db.session.flush()
        account = accounts.register("bench@example.jp", "bench-password-1")
        account.resident_id, account.email_verified_at = person.id, utcnow()
        verified = cardid.verify_certificate_only(cert_der)
        db.session.add(
            cardid.CardCredential.from_verified(
                verified, resident_id=person.id, linked_by="bench", via="text_ap"
            )
        )
        db.session.commit()

    samples = []
    browser_token = None
    for i in range(args.logins + 10):
        browser, helper = app.test_client(), app.test_client()
        page = browser.get("/login").get_data(as_text=True)
        browser_token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        t0 = time.perf_counter()
        ch = browser.post(
            "/api/card/challenges", json={"purpose": "login"}, headers={"X-CSRFToken": browser_token}
        ).get_json()
        t1 = time.perf_counter()
        signature = key.sign(base64.b64decode(ch["message"]), padding.PKCS1v15(), hashes.SHA256())
        t2 = time.perf_counter()
        answer = helper.post(
            "/api/card/responses",
            json={
                "challenge": ch["id"],
                "code": ch["code"],
                "certificate": base64.b64encode(cert_der).decode(),
                "signature": base64.b64encode(signature).decode(),
            },
        )
        status = browser.get(f"/api/card/challenges/{ch['id']}").get_json()
        t3 = time.perf_counter()
        if answer.status_code != 200 or status.get("status") != "done":
            raise SystemExit(f"login {i} failed: {answer.get_json()} {status}")
        if i >= 10:  # warm-up
            samples.append((t1 - t0) + (t3 - t2))

    total = sum(samples)
    per_second = len(samples) / total
    raw = raw_verifies_per_second(key, cert_der)
    p50 = statistics.median(samples) * 1000
    p95 = statistics.quantiles(samples, n=20)[18] * 1000
    print(f"card login: {len(samples)} logins (challenge + verify + session), PostgreSQL, 1 client")
    print(f"card login: per second                        {per_second:,.0f}")
    print(f"card login: server time p50 / p95              {p50:.2f} ms / {p95:.2f} ms")
    print(f"limit: raw RSA-2048 PKCS#1 v1.5 verifies/s     {raw:,.0f}")
    print(f"ratio: card logins/s / raw verifies/s          {per_second / raw:.3f}")


if __name__ == "__main__":
    main()
