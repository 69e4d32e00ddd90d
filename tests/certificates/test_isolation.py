"""Isolation under load: convenience-store issuance was stopped nationwide in 2023 after kiosks
printed other people's certificates under concurrency. Here 50 kiosks (each its own terminal and
resident, its own app context and database session) issue at once on PostgreSQL; every PDF holds
its own resident's name and address and none of the other 49's, and every signature is valid."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from portal.access.models import AccessRecord
from portal.access.service import verify_chain
from portal.cardid import service as cardid
from portal.certificates import payment, service
from portal.certificates.models import IssuedCertificate
from portal.extensions import db as database
from portal.registry.models import Address, Household, Resident, Ward
from portal.registry.names import search_key

from .conftest import add_seal, add_tax, pdf_text, pdfsig

KIOSKS = 50
FAMILY = [
    "赤井",
    "秋山",
    "浅野",
    "石井",
    "石川",
    "岩田",
    "上田",
    "内田",
    "大石",
    "大野",
    "岡本",
    "小川",
    "片山",
    "金子",
    "川口",
    "菊地",
    "北村",
    "久保",
    "熊谷",
    "栗原",
]
GIVEN = [
    "明",
    "彩",
    "一",
    "栄",
    "温",
    "香",
    "勝",
    "清",
    "薫",
    "健",
    "光",
    "茂",
    "静",
    "進",
    "草",
    "匠",
    "剛",
    "力",
    "勉",
    "輝",
    "徹",
    "直",
    "望",
    "肇",
    "光",
    "秀",
    "文",
    "誠",
    "実",
    "稔",
]
KINDS = ("residence", "seal", "income")


@pytest.fixture
def app_config(city_hsm) -> dict:
    # one connection per kiosk, so all 50 really run at once
    return {
        "CERTIFICATE_HSM_DIR": str(city_hsm.directory),
        "RATELIMIT_ENABLED": False,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": KIOSKS, "max_overflow": 5, "pool_timeout": 120},
    }


def _people(db) -> list[tuple[Resident, str]]:
    ward = Ward(code="91", name_ja="西区", name_en="Nishi Ward")
    pem_of = lambda: (  # noqa: E731
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    made = []
    for i in range(KIOSKS):
        family, given = FAMILY[i % len(FAMILY)], GIVEN[i] if i < len(GIVEN) else GIVEN[i % len(GIVEN)] + "子"
        # names unique and none inside another; blocks of fixed width, so no address is inside another
        family = family + ("" if i < len(FAMILY) else "谷" if i < 2 * len(FAMILY) else "沢")
        address = Address(ward=ward, postal_code="2609999", town="西町", block=f"{100 + i}番{500 + i}号")
        household = Household(number=f"ISO{i:05d}", address=address)
        person = Resident(
            atena_no=f"ISO{i:08d}",
            family_name=family,
            given_name=given,
            family_name_kana="テスト",
            given_name_kana="テスト",
            name_search=search_key(family, given, "テスト", "テスト"),
            birth_date=date(1950 + i, 1 + i % 12, 1 + i % 28),
            sex=1 + i % 2,
            ward=ward,
            address=address,
            household=household,
            relationship_to_head="head",
        )
        db.session.add(person)
        db.session.flush()
        household.head = person
        add_seal(person)
        add_tax(person, 2026, gross=3_000_000 + i * 10_000)
        cardid.add_terminal(f"kiosk-{i:02d}", "kiosk", f"キオスク{i}", "コンビニ", pem_of())
        made.append((person, KINDS[i % 3]))
    db.session.commit()
    return made


def test_fifty_kiosks_at_once(app, db, tmp_path):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("50 concurrent kiosks run against PostgreSQL (SQLite serialises every writer)")
    people = _people(db)
    names = {p.id: p.full_name for p, _ in people}
    blocks = {p.id: p.address.block for p, _ in people}
    plan = [(p.id, kind, i) for i, (p, kind) in enumerate(people)]
    assert len(set(names.values())) == KIOSKS
    for a in names.values():
        assert sum(a in b for b in names.values()) == 1  # no name inside another
    database.session.remove()
    start = threading.Barrier(KIOSKS)

    def kiosk(resident_id: int, kind: str, i: int):
        with app.app_context():
            resident = database.session.get(Resident, resident_id)
            terminal = cardid.terminal_by_code(f"kiosk-{i:02d}")
            provider = payment.provider()
            members = [resident_id] if kind == "residence" else None
            pay = provider.start(service.quote(kind, 1), "ic", terminal.code)
            provider.settle(pay.id)
            start.wait(timeout=60)  # every kiosk presses "print" at the same moment
            issued = service.issue(
                resident,
                kind,
                members=members,
                payment_id=pay.id,
                terminal=terminal,
                actor=f"kiosk:{terminal.code}",
            )
            database.session.remove()
            return resident_id, kind, issued

    with ThreadPoolExecutor(max_workers=KIOSKS) as pool:
        results = list(pool.map(lambda args: kiosk(*args), plan))

    assert len(results) == KIOSKS
    for n, (resident_id, kind, issued) in enumerate(results):
        text = pdf_text(issued.pdf, tmp_path)
        assert names[resident_id] in text, f"kiosk {n}: own name missing"
        assert blocks[resident_id] in text, f"kiosk {n}: own address missing"
        others = [rid for rid in names if rid != resident_id]
        assert not [rid for rid in others if names[rid] in text], f"kiosk {n}: another resident's name"
        assert not [rid for rid in others if blocks[rid] in text], f"kiosk {n}: another resident's address"
        assert issued.serial in text and service.TITLES_JA[kind] in text
        assert "Signature is Valid." in pdfsig(issued.pdf, tmp_path / f"k{n}.pdf")
    # the stored rows and the access records name the same resident and terminal as the PDF
    rows = {r.serial: r for r in db.session.scalars(select(IssuedCertificate))}
    assert len(rows) == KIOSKS
    for resident_id, kind, issued in results:
        row = rows[issued.serial]
        assert (row.resident_id, row.kind) == (resident_id, kind)
        i = next(i for rid, _, i in plan if rid == resident_id)
        assert row.terminal_code == f"kiosk-{i:02d}"
    records = db.session.scalars(
        select(AccessRecord).where(AccessRecord.purpose.like("certificate_kiosk:%"))
    ).all()
    assert sorted((r.resident_id, r.terminal_id) for r in records) == sorted(
        (rid, f"kiosk-{i:02d}") for rid, _, i in plan
    )
    assert verify_chain().ok
