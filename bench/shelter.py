"""Shelter check-ins synced from a terminal's offline queue: the server's whole path per entry —
terminal request signature, the entry's terminal signature, the card's signature over the
terminal-made challenge, chain to the anchors, validity, key usage, CRL, linked credential, one
active stay (a move between two shelters each time), access record — in batches of 20 as the agent
sends them, then the same queue again (all duplicates). Against two limits measured in the same run:
raw RSA-2048 PKCS#1 v1.5 verifies with `cryptography` (the per-entry cryptography) and one-row
INSERT + COMMIT transactions on the same database (each entry is committed on its own, so that a
failure loses only that entry).

The card's signing and the terminal's entry signing happen before the timed part. PostgreSQL
from scripts/services.sh.

    .venv/bin/python bench/shelter.py [--entries 400] [--url postgresql+psycopg://…]
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

from _common import ROOT, default_server_url, recreate_database
from card_login import raw_verifies_per_second
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

BATCH = 20
ORIGIN = "http://portal.bench"


def raw_commits_per_second(url: str, seconds: float = 3.0) -> float:
    """One-row transactions on the same database: the floor for one committed stay per entry."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        conn.execute(sa.text("CREATE TEMP TABLE bench_commit (id serial primary key, x text)"))
        conn.commit()
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            conn.execute(sa.text("INSERT INTO bench_commit (x) VALUES (:x)"), {"x": str(n)})
            conn.commit()
            n += 1
        elapsed = time.perf_counter() - start
    engine.dispose()
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=400)
    parser.add_argument("--url", default=default_server_url())
    args = parser.parse_args()
    if not args.url:
        raise SystemExit('set TEST_POSTGRES_URL (eval "$(bash scripts/services.sh)") or pass --url')

    from flask_migrate import upgrade

    from card import offline
    from card.sim.profile import make_profile
    from kiosk.agent import signing
    from portal.access.service import Actor
    from portal.cardid import service as cardid
    from portal.extensions import db
    from portal.registry.models import Address, Household, Resident, Ward
    from portal.registry.names import search_key
    from portal.shelter import service as shelters
    from portal.shelter.models import DisasterEvent, Shelter, ShelterStay
    from wsgi import create_app

    work = Path(tempfile.mkdtemp(prefix="bench-shelter-"))
    profile = make_profile(work / "card", name="山田　花子", birth="19850401", sex="2", pki_dir=work / "pki")
    card_key = serialization.load_pem_private_key((work / "card" / "auth_key.pem").read_bytes(), None)
    cert_der = profile.certificate("auth")
    terminal_key = signing.generate_key()

    url = recreate_database(args.url, "portal_bench_shelter")
    app = create_app(
        {
            "NAME": "test",
            "SQLALCHEMY_DATABASE_URI": url,
            "RATELIMIT_ENABLED": False,
            "CARD_TRUST_DIR": str(work / "pki"),
            "CARD_CRL_FILES": (str(work / "pki" / "auth_crl.der"),),
            "PUBLIC_ORIGIN": ORIGIN,
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
        actor = Actor(kind="job", id="bench", role="bench", organisation="bench")
        cardid._link(cardid.verify_certificate_only(cert_der), person, via="text_ap", actor=actor)
        event = DisasterEvent(code="EV", name_ja="台風", name_en="Typhoon")
        a = Shelter(code="A", name_ja="A", name_en="A", address_ja="A")
        b = Shelter(code="B", name_ja="B", name_en="B", address_ja="B")
        db.session.add_all([event, a, b])
        db.session.flush()
        shelters.open_shelter(event, a, 1000, by="bench")
        shelters.open_shelter(event, b, 1000, by="bench")
        cardid.add_terminal(
            "shelter-bench", "shelter", "bench", "bench", signing.public_key_pem(terminal_key)
        )
        db.session.commit()

    # the terminal's queue, made while offline: the card signs each check-in, the terminal each entry
    start_at = int(time.time()) - 3600
    entries = []
    for i in range(args.entries):
        entry = {
            "uuid": str(uuid.uuid4()),
            "shelter": "EV-A" if i % 2 == 0 else "EV-B",
            "terminal": "shelter-bench",
            "at": start_at + i,
            "method": "card",
            "offline": True,
        }
        message = offline.checkin_message(
            entry["uuid"], entry["shelter"], "shelter-bench", entry["at"], ORIGIN
        )
        entry["certificate"] = base64.b64encode(cert_der).decode()
        entry["signature"] = base64.b64encode(
            card_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        ).decode()
        entries.append(offline.sign_entry(terminal_key, entry))

    client = app.test_client()

    def send(batch: list[dict]) -> list[dict]:
        body = json.dumps({"entries": batch}, separators=(",", ":")).encode()
        headers = signing.sign_request(
            terminal_key, "shelter-bench", "POST", "/api/shelter/checkins", body, int(time.time())
        )
        answer = client.post(
            "/api/shelter/checkins", data=body, headers={**headers, "Content-Type": "application/json"}
        )
        if answer.status_code != 200:
            raise SystemExit(f"sync failed: {answer.status_code} {answer.get_data(as_text=True)[:300]}")
        return answer.get_json()["results"]

    def sync(expect: str) -> tuple[float, list[float]]:
        batches, start = [], time.perf_counter()
        for i in range(0, len(entries), BATCH):
            t0 = time.perf_counter()
            results = send(entries[i : i + BATCH])
            batches.append(time.perf_counter() - t0)
            bad = [r for r in results if r["status"] != expect]
            if bad:
                raise SystemExit(f"expected {expect}: {bad[:2]}")
        return time.perf_counter() - start, batches

    send([entries[0]])  # warm-up: the first request loads the verifier and the CRL; then start clean
    with app.app_context():
        db.session.query(ShelterStay).delete()
        db.session.commit()
    created_total, created_batches = sync("created")
    duplicate_total, _ = sync("duplicate")
    with app.app_context():
        stays = db.session.query(ShelterStay).count()
        active = db.session.query(ShelterStay).filter(ShelterStay.status == "active").count()
    if (stays, active) != (len(entries), 1):
        raise SystemExit(f"expected {len(entries)} stays and 1 active, found {stays} and {active}")

    raw = raw_verifies_per_second(card_key, cert_der)
    commits = raw_commits_per_second(url)
    n = len(entries)

    def p(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=20)[q] * 1000

    print(
        f"shelter sync: {n} card check-ins from an offline queue, batches of {BATCH}, PostgreSQL, 1 terminal"
    )
    print(f"shelter sync: created per second                 {n / created_total:,.0f}")
    print(
        f"shelter sync: batch of {BATCH} p50 / p95             "
        f"{statistics.median(created_batches) * 1000:.1f} ms / {p(created_batches, 18):.1f} ms"
    )
    print(f"shelter sync: again (all duplicates) per second  {n / duplicate_total:,.0f}")
    print(f"shelter sync: raw RSA-2048 verifies per second   {raw:,.0f}")
    print(f"shelter sync: ratio created / raw verify         {n / created_total / raw:.3f}")
    print(f"shelter sync: raw one-row INSERT+COMMIT per second {commits:,.0f}")
    print(f"shelter sync: ratio created / raw commit         {n / created_total / commits:.3f}")
    print(f"shelter sync: stays {stays}, active {active} (one per UUID, one active stay)")


if __name__ == "__main__":
    main()
