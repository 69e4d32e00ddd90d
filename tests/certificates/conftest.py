"""Certificate fixtures: the city's SoftHSM2 token set up once per test process in a temporary
folder (as ``flask certificates hsm-init`` does under instance/), residents with a seal and tax
records, terminals, and helpers that read a PDF back with poppler (pdftotext, pdfsig)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from portal.certificates import hsm, payment, seals
from portal.certificates.models import SealRegistration, TaxRecord
from portal.extensions import db as database
from tests.factories import make_resident


@pytest.fixture(scope="session")
def city_hsm() -> hsm.Material:
    """The token, the key in it and the city CA → signer certificate, set up as
    ``flask certificates hsm-init`` does, in this test process's temporary folder — the one every
    app in the process uses (SoftHSM2 reads its configuration once per process), whichever test
    signed first."""
    return hsm.init(hsm.process_test_directory())


@pytest.fixture
def app_config(city_hsm: hsm.Material) -> dict:
    return {"CERTIFICATE_HSM_DIR": str(city_hsm.directory), "RATELIMIT_ENABLED": False}


def add_seal(resident, *, number: str | None = None) -> SealRegistration:
    seal = SealRegistration(
        resident_id=resident.id,
        registration_no=number or f"T-{resident.id:07d}",
        image_png=seals.impression_png(resident.family_name),
        status="registered",
        registered_on=date(2020, 4, 1),
        registered_by="test",
    )
    database.session.add(seal)
    database.session.flush()
    return seal


def add_tax(resident, year: int = 2026, *, gross: int = 4_800_000) -> TaxRecord:
    from portal.certificates.demo import tax_for

    record = TaxRecord(resident_id=resident.id, fiscal_year=year, **tax_for(gross, 1))
    database.session.add(record)
    database.session.flush()
    return record


@pytest.fixture
def family(db):
    """A household of three: 山田 太郎 (head, with a seal and tax records), his spouse and child."""
    head = make_resident(family="山田", given="太郎", given_kana="タロウ", sex=1, birth=date(1980, 5, 3))
    spouse = make_resident(
        family="山田",
        given="花子",
        sex=2,
        birth=date(1982, 8, 9),
        household=head.household,
        relation="spouse",
    )
    child = make_resident(
        family="山田",
        given="一郎",
        given_kana="イチロウ",
        sex=1,
        birth=date(2015, 1, 20),
        household=head.household,
        relation="child",
    )
    add_seal(head)
    add_tax(head, 2026)
    add_tax(head, 2025, gross=4_200_000)
    db.session.commit()
    return head, spouse, child


def paid(amount: int, method: str = "cash") -> str:
    """A payment the simulator has settled: what the kiosk's "insert coins" button does."""
    provider = payment.provider()
    started = provider.start(amount, method, "test")
    provider.settle(started.id)
    return started.id


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "text.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True, text=True
    ).stdout


def pdfsig(pdf: bytes, path: Path) -> str:
    path.write_bytes(pdf)
    return subprocess.run(["pdfsig", str(path)], capture_output=True, check=False, text=True).stdout


@pytest.fixture
def read_pdf(tmp_path: Path) -> Callable[[bytes], str]:
    return lambda pdf: pdf_text(pdf, tmp_path)
