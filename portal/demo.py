"""A fictional demo city (みなと市): 3 wards, ~200 households, ~500 residents, staff of every role.

Deterministic (seeded), so screenshots and tests see the same people. Never used in production.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select

from card.ids import my_number_check_digit
from portal.accounts import service as accounts
from portal.accounts.models import ResidentAccount, StaffUser
from portal.extensions import db
from portal.models_base import utcnow
from portal.registry.models import Address, Household, Resident, Ward
from portal.registry.names import search_key
from portal.vault import service as vault

WARDS = (
    ("01", "中央区", "Chuo Ward", "26000", ("本町", "港町", "栄町", "新宿", "市場町")),
    ("02", "北区", "Kita Ward", "26300", ("緑町", "桜台", "若葉", "松ケ丘")),
    ("03", "南区", "Minami Ward", "26600", ("浜野町", "海岸通", "花園", "朝日ケ丘")),
)
FAMILY = (
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("高橋", "タカハシ"),
    ("田中", "タナカ"),
    ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"),
    ("山本", "ヤマモト"),
    ("中村", "ナカムラ"),
    ("小林", "コバヤシ"),
    ("加藤", "カトウ"),
    ("吉田", "ヨシダ"),
    ("山田", "ヤマダ"),
    ("佐々木", "ササキ"),
    ("山口", "ヤマグチ"),
    ("松本", "マツモト"),
    ("井上", "イノウエ"),
    ("木村", "キムラ"),
    ("林", "ハヤシ"),
    ("斎藤", "サイトウ"),
    ("清水", "シミズ"),
)
MALE = (
    ("太郎", "タロウ"),
    ("健", "ケン"),
    ("翔", "ショウ"),
    ("大輔", "ダイスケ"),
    ("蓮", "レン"),
    ("悠真", "ユウマ"),
    ("誠", "マコト"),
    ("浩", "ヒロシ"),
    ("湊", "ミナト"),
    ("陽翔", "ハルト"),
)
FEMALE = (
    ("花子", "ハナコ"),
    ("陽菜", "ヒナ"),
    ("結衣", "ユイ"),
    ("美咲", "ミサキ"),
    ("さくら", "サクラ"),
    ("葵", "アオイ"),
    ("由美", "ユミ"),
    ("恵子", "ケイコ"),
    ("凛", "リン"),
    ("芽依", "メイ"),
)
STAFF = (
    ("counter1", "窓口 一郎", "中央区役所 市民課", ["counter"]),
    ("processing1", "審査 二郎", "事務センター", ["processing"]),
    ("author1", "広報 三子", "市民局 広報課", ["author"]),
    ("approver1", "承認 八郎", "市民局 広報課", ["author"]),  # the second person who approves notices
    ("library1", "図書 四郎", "中央図書館", ["library"]),
    ("shelter1", "避難 五子", "危機管理課", ["shelter"]),
    ("auditor1", "監査 六郎", "監査委員事務局", ["auditor"]),
    ("admin1", "管理 七子", "情報システム課", ["admin"]),
)
STAFF_PASSWORD = "staff-demo-2026"  # noqa: S105 - printed demo login
RESIDENT_PASSWORD = "resident-demo-2026"  # noqa: S105 - printed demo login


@dataclass
class DemoLogin:
    who: str
    login: str
    password: str


def _number(rng: random.Random, used: set[str]) -> str:
    while True:
        first = "".join(str(rng.randrange(10)) for _ in range(11))
        if first[0] == "0":
            continue
        number = first + str(my_number_check_digit(first))
        if number not in used:
            used.add(number)
            return number


def _birth(rng: random.Random, today: date, min_age: float, max_age: float) -> date:
    days = rng.randint(int(min_age * 365.25), int(max_age * 365.25))
    return today - timedelta(days=days)


def _person(rng, family, sex, birth, ward, address, household, relation, status="active"):
    given, given_kana = rng.choice(MALE if sex == 1 else FEMALE)
    person = Resident(
        atena_no="",
        family_name=family[0],
        given_name=given,
        family_name_kana=family[1],
        given_name_kana=given_kana,
        name_search=search_key(family[0], given, family[1], given_kana),
        birth_date=birth,
        sex=sex,
        ward=ward,
        address=address,
        household=household,
        relationship_to_head=relation,
        status=status,
        moved_in_on=birth if rng.random() < 0.5 else birth + timedelta(days=rng.randint(0, 9000)),
    )
    return person


def loaded() -> bool:
    return (db.session.scalar(select(func.count()).select_from(Ward)) or 0) > 0


def load(seed: int = 2026, households: int = 200) -> list[DemoLogin]:
    """Create the demo city unless it exists; return the logins to print."""
    if not loaded():
        _build(random.Random(seed), households)
        db.session.commit()
    from portal.certificates import demo as certificates_demo

    certificates_demo.load(seed)
    from portal.points import demo as points_demo

    points_demo.load()
    return logins()


def _build(rng: random.Random, n_households: int) -> None:
    today = date.today()
    wards = [Ward(code=c, name_ja=ja, name_en=en) for c, ja, en, _, _ in WARDS]
    db.session.add_all(wards)
    used: set[str] = set()
    people: list[Resident] = []
    for h in range(n_households):
        w = h % len(WARDS)
        ward = wards[w]
        _, _, _, postal, towns = WARDS[w]
        address = Address(
            ward=ward,
            postal_code=f"{postal}{rng.randint(10, 99)}",
            town=f"{rng.choice(towns)}{rng.randint(1, 5)}丁目",
            block=f"{rng.randint(1, 30)}番{rng.randint(1, 20)}号",
            building=f"みなとハイツ{rng.randint(1, 9)}0{rng.randint(1, 9)}号室"
            if rng.random() < 0.3
            else None,
        )
        household = Household(number=f"{h + 1:08d}", address=address)
        family = rng.choice(FAMILY)
        kind = rng.random()
        members: list[Resident] = []
        if kind < 0.18:  # elderly living alone
            head = _person(
                rng, family, rng.choice((1, 2)), _birth(rng, today, 70, 95), ward, address, household, "head"
            )
            head.care_level = rng.choice((None, "support1", "support2", "care1", "care2", "care3", "care5"))
            members.append(head)
        elif kind < 0.30:  # young single
            members.append(
                _person(
                    rng,
                    family,
                    rng.choice((1, 2)),
                    _birth(rng, today, 19, 35),
                    ward,
                    address,
                    household,
                    "head",
                )
            )
        else:  # couple, maybe children, maybe a grandparent
            head = _person(rng, family, 1, _birth(rng, today, 27, 60), ward, address, household, "head")
            spouse = _person(rng, family, 2, _birth(rng, today, 25, 58), ward, address, household, "spouse")
            members += [head, spouse]
            mother_age = spouse.age_on(today)
            if mother_age < 42 and rng.random() < 0.15:
                spouse.pregnancy_due_on = today + timedelta(days=rng.randint(20, 250))
            for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
                max_age = max(0.1, min(mother_age - 20, 17))
                child = _person(
                    rng,
                    family,
                    rng.choice((1, 2)),
                    _birth(rng, today, 0.05, max_age),
                    ward,
                    address,
                    household,
                    "child",
                )
                members.append(child)
            if rng.random() < 0.12:
                grand = _person(
                    rng,
                    family,
                    rng.choice((1, 2)),
                    _birth(rng, today, 72, 92),
                    ward,
                    address,
                    household,
                    "parent",
                )
                grand.care_level = rng.choice(("support1", "care1", "care2", "care4"))
                members.append(grand)
        for m in members:
            if m.age_on(today) >= 18 and rng.random() < 0.06:
                m.disability_certificate = rng.choice(("physical", "intellectual", "mental"))
                m.disability_grade = rng.randint(1, 6)
        if rng.random() < 0.05:  # a household that moved out of the city
            moved = today - timedelta(days=rng.randint(10, 700))
            for m in members:
                m.status, m.moved_out_on = "moved_out", moved
        elif rng.random() < 0.03 and len(members) > 1 and members[-1].age_on(today) > 70:
            members[-1].status, members[-1].deceased_on = (
                "deceased",
                today - timedelta(days=rng.randint(5, 400)),
            )
        for m in members:
            m.atena_no = f"{ward.code}{len(people) + members.index(m) + 1:08d}"
        db.session.add(household)
        db.session.add_all(members)
        people += members
        household.head = members[0]
    db.session.flush()
    for person in people:
        vault.store(person.id, _number(rng, used))
    _demo_accounts(people, today)
    for login_id, name, org, roles in STAFF:
        accounts.create_staff(login_id, name, org, roles, STAFF_PASSWORD)
    from portal.booking import demo as booking_demo

    booking_demo.build()
    from portal.shelter import demo as shelter_demo  # the library and the shelters

    shelter_demo.load()


def _demo_accounts(people: list[Resident], today: date) -> None:
    """Portal accounts for a few adults, chosen to show different situations."""
    adults = [p for p in people if p.status == "active" and p.age_on(today) >= 20]
    picks: list[Resident] = []
    with_children = [
        p
        for p in adults
        if p.relationship_to_head == "head"
        and any(m.relationship_to_head == "child" for m in p.household.members)
    ]
    pregnant = [p for p in adults if p.pregnancy_due_on]
    elderly = [p for p in adults if p.care_level]
    for group in (with_children, pregnant, elderly, adults):
        for p in group:
            if p not in picks:
                picks.append(p)
                break
    for i, person in enumerate(picks, start=1):
        account = accounts.register(f"resident{i}@demo.city.example.jp", RESIDENT_PASSWORD)
        account.email_verified_at = utcnow()
        account.resident_id = person.id
    db.session.flush()


def logins() -> list[DemoLogin]:
    out = [
        DemoLogin(
            f"resident: {a.resident.full_name}" if a.resident else "resident", a.email, RESIDENT_PASSWORD
        )
        for a in db.session.scalars(select(ResidentAccount).order_by(ResidentAccount.id).limit(10))
    ]
    out += [
        DemoLogin(f"staff ({u.roles})", u.login_id, STAFF_PASSWORD)
        for u in db.session.scalars(
            select(StaffUser).where(StaffUser.login_id.in_([s[0] for s in STAFF])).order_by(StaffUser.id)
        )
    ]
    return out
