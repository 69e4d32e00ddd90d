"""Keyword-only factories that make rows for tests."""

from __future__ import annotations

import itertools
import re
from datetime import date

from card.ids import my_number_check_digit
from portal.accounts import service as accounts
from portal.extensions import db
from portal.models_base import utcnow
from portal.registry.models import Address, Household, Resident, Ward
from portal.registry.names import search_key

_seq = itertools.count(1)
PASSWORD = "correct-horse-battery"


def fake_number(seed: int) -> str:
    """A fake Individual Number with a valid check digit."""
    first = f"9{seed:010d}"
    return first + str(my_number_check_digit(first))


def make_ward(*, code: str | None = None, name_ja: str = "中央区", name_en: str = "Chuo Ward") -> Ward:
    ward = Ward(code=code or f"{next(_seq):02d}", name_ja=name_ja, name_en=name_en)
    db.session.add(ward)
    db.session.flush()
    return ward


def make_resident(
    *,
    family: str = "山田",
    given: str = "花子",
    family_kana: str = "ヤマダ",
    given_kana: str = "ハナコ",
    birth: date = date(1985, 4, 1),
    sex: int = 2,
    ward: Ward | None = None,
    household: Household | None = None,
    relation: str = "head",
    status: str = "active",
    **attrs,
) -> Resident:
    ward = ward or make_ward()
    address = (
        household.address
        if household
        else Address(ward=ward, postal_code="2600001", town="本町1丁目", block="1番1号")
    )
    if household is None:
        household = Household(number=f"H{next(_seq):07d}", address=address)
        db.session.add(household)
    n = next(_seq)
    resident = Resident(
        atena_no=f"T{n:09d}",
        family_name=family,
        given_name=given,
        family_name_kana=family_kana,
        given_name_kana=given_kana,
        name_search=search_key(family, given, family_kana, given_kana),
        birth_date=birth,
        sex=sex,
        ward=ward,
        address=address,
        household=household,
        relationship_to_head=relation,
        status=status,
        **attrs,
    )
    db.session.add(resident)
    db.session.flush()
    if household.head_id is None:
        household.head = resident
    db.session.flush()
    return resident


def make_account(
    *,
    resident: Resident | None = None,
    email: str | None = None,
    verified: bool = True,
    password: str = PASSWORD,
):
    account = accounts.register(email or f"user{next(_seq)}@example.jp", password)
    if verified:
        account.email_verified_at = utcnow()
    if resident is not None:
        account.resident_id = resident.id
    db.session.flush()
    return account


def make_staff(
    *,
    roles: list[str],
    login_id: str | None = None,
    password: str = PASSWORD,
    organisation: str = "中央区役所",
):
    return accounts.create_staff(login_id or f"staff{next(_seq)}", "職員 太郎", organisation, roles, password)


def csrf_from(html: str) -> str:
    m = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    assert m, "no CSRF token in the page"
    return m.group(1)


def post_form(client, url: str, data: dict, *, page: str | None = None, **kwargs):
    """GET the page to take its CSRF token, then POST the form."""
    html = client.get(page or url).get_data(as_text=True)
    return client.post(url, data={"csrf_token": csrf_from(html), **data}, **kwargs)


def login_resident(client, account, password: str = PASSWORD):
    resp = post_form(client, "/login", {"email": account.email, "password": password})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return resp


def login_staff(client, staff, password: str = PASSWORD):
    resp = post_form(client, "/staff/login", {"login_id": staff.login_id, "password": password})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return resp


# --- virtual cards on a test JPKI ------------------------------------------------------------------

CARD_ADDRESS = "千葉県みなと市中央区本町1丁目1番1号"
CARD_AUTH_PIN = "1234"
CARD_SIGN_PIN = "ABC123"


def make_cards(root, people: dict[str, tuple[str, str, str, str, int]]) -> dict:
    """Virtual cards sharing one test PKI in ``root/pki``: ``{key: (name, kana, birth, sex, seed)}``
    (the seed gives the card's fake Individual Number). Returns ``{key: profile dir, "pki": dir}``."""
    from card.sim.profile import make_profile

    pki = root / "pki"
    out = {}
    for key, (name, kana, birth, sex, seed) in people.items():
        out[key] = root / key
        make_profile(
            out[key],
            name=name,
            kana=kana,
            address=CARD_ADDRESS,
            birth=birth,
            sex=sex,
            auth_pin=CARD_AUTH_PIN,
            sign_pin=CARD_SIGN_PIN,
            my_number=fake_number(seed),
            pki_dir=pki,
        )
    out["pki"] = pki
    return out


def card_app_config(pki, origin: str) -> dict:
    """App settings trusting a test PKI and its CRLs."""
    return {
        "CARD_TRUST_DIR": str(pki),
        "CARD_CRL_FILES": (str(pki / "auth_crl.der"), str(pki / "sign_crl.der")),
        "PUBLIC_ORIGIN": origin,
        "RATELIMIT_ENABLED": False,
    }
