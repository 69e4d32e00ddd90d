"""A virtual Individual Number Card for every active demo resident (development only).

Each card is a ``card.sim`` profile in ``instance/cards/<宛名番号>/`` sharing one test PKI in
``instance/cards/pki`` (its roots are the trust anchors of the demo). Serve one to pcscd with
``python -m card.sim serve instance/cards/<宛名番号>``. Demo PINs: auth and text 1234, signature ABC123.

Writing a card reads the resident's Individual Number from the vault, which is recorded as an
access by the card-issuing job, as it would be for the real card issuer.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from sqlalchemy import select

from portal.access.service import Actor
from portal.extensions import db
from portal.registry.models import Resident
from portal.vault import service as vault

DEMO_AUTH_PIN = "1234"
DEMO_SIGN_PIN = "ABC123"
ISSUER = Actor(kind="job", id="demo-card-issuer", role="card issuance", organisation="カード発行（デモ）")


def _make(job: dict) -> str:
    from card.sim.profile import make_profile

    make_profile(job.pop("directory"), **job)
    return job["kana"]


def make_cards(root: Path, city_name: str, *, limit: int | None = None) -> tuple[int, int]:
    """Make the missing cards; returns (made, already there)."""
    root.mkdir(parents=True, exist_ok=True)
    pki = root / "pki"
    residents = db.session.scalars(
        select(Resident).where(Resident.status == "active").order_by(Resident.id).limit(limit)
    ).all()
    jobs, existing = [], 0
    for person in residents:
        directory = root / person.atena_no
        if (directory / "profile.json").exists():
            existing += 1
            continue
        number = vault.reveal(person.id, purpose="demo_card", actor=ISSUER)
        jobs.append(
            {
                "directory": str(directory),
                "name": f"{person.family_name}\u3000{person.given_name}",
                "kana": f"{person.family_name_kana}\u3000{person.given_name_kana}",
                "address": person.address.line_ja(city_name),
                "birth": person.birth_date.strftime("%Y%m%d"),
                "sex": str(person.sex),
                "auth_pin": DEMO_AUTH_PIN,
                "sign_pin": DEMO_SIGN_PIN,
                "my_number": number,
                "pki_dir": str(pki),
            }
        )
    db.session.commit()
    if jobs:
        from card.sim.pki import TestPki

        TestPki.open(pki)  # make the roots once, before the workers share them
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            list(pool.map(_make, jobs, chunksize=8))
    return len(jobs), existing
