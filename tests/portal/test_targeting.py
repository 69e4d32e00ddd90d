"""Targeting: the rule compiled to one SQL statement selects exactly the residents the same rule
evaluated in Python (``matches``) accepts — on random cities and random rules, on SQLite and
PostgreSQL — plus rule validation and the calendar's edges (29 February, month ends)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, update

from portal.notices import targeting
from portal.notices.targeting import RuleError, _shift
from portal.registry.models import CARE_LEVELS, DISABILITY_CERTIFICATES, Address, Household, Resident
from tests.factories import make_resident, make_ward

WARD_CODES = ("01", "02", "03")
EDGE_DAYS = (
    date(2024, 2, 29),
    date(2025, 2, 28),
    date(2025, 3, 1),
    date(2028, 2, 29),
    date(2026, 1, 31),
    date(2026, 4, 30),
    date(2026, 3, 31),
    date(2026, 12, 31),
    date(2027, 1, 1),
)
RELATIONS = ("spouse", "child", "child", "parent", "grandchild", "other")

# --- strategies -----------------------------------------------------------------------------------

reference_days = st.one_of(st.sampled_from(EDGE_DAYS), st.dates(date(2000, 1, 1), date(2040, 12, 31)))


@st.composite
def birth_dates(draw, on: date) -> date:
    """Near a birthday (whole years, ± 2 days), near a whole number of months, or anywhere: the
    boundaries the rules' ages and months cross."""
    near = timedelta(days=draw(st.sampled_from((-1, 0, 1, 1, 2))))
    kind = draw(st.sampled_from(("years", "years", "months", "months", "any")))
    if kind == "years":
        return _shift(on, years=draw(st.one_of(st.integers(0, 12), st.integers(0, 110)))) + near
    if kind == "months":
        return _shift(on, months=draw(st.integers(0, 30))) + near
    return draw(st.dates(date(1895, 1, 1), on + timedelta(days=30)))


@st.composite
def people(draw, on: date) -> dict:
    return {
        "birth": draw(birth_dates(on)),
        "sex": draw(st.sampled_from((1, 2, 9))),
        "ward": draw(st.sampled_from(WARD_CODES)),
        "status": draw(st.sampled_from(("active", "active", "active", "moved_out", "deceased"))),
        "care_level": draw(st.one_of(st.none(), st.none(), st.sampled_from(CARE_LEVELS))),
        "disability_certificate": draw(
            st.one_of(st.none(), st.none(), st.sampled_from(DISABILITY_CERTIFICATES))
        ),
        "pregnancy_due_on": draw(
            st.one_of(st.none(), st.none(), st.dates(on - timedelta(days=3), on + timedelta(days=3)))
        ),
    }


def _years(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _months(birth: date, on: date) -> int:
    return (on.year - birth.year) * 12 + on.month - birth.month - (on.day < birth.day)


def _near(values: list[int], top: int) -> list[int]:
    """The city's own ages, one either side: the bounds where an off-by-one day would show."""
    return sorted({min(max(v + d, 0), top) for v in values for d in (-1, 0, 1)}) or [0]


@st.composite
def bounds(draw, top: int, small: int, seen: list[int]) -> dict:
    """An age or month range: near the city's own ages, small, or anywhere; a bound sometimes left out."""
    near = _near([v for v in seen if v <= top], top)
    lo, hi = sorted(
        draw(
            st.one_of(
                st.lists(st.sampled_from(near), min_size=2, max_size=2),
                st.lists(st.sampled_from(near), min_size=2, max_size=2),
                st.lists(st.integers(0, small), min_size=2, max_size=2),
                st.lists(st.integers(0, top), min_size=2, max_size=2),
            )
        )
    )
    part = {}
    if draw(st.booleans()):
        part["min"] = lo
    if draw(st.booleans()):
        part["max"] = hi
    return part


@st.composite
def rules(draw, on: date, households: list[list[dict]]) -> dict:
    """A random rule of any subset of the keys; age and month bounds often at the city's own ages."""
    births = [p["birth"] for members in households for p in members]
    rule: dict = {}
    keys = draw(st.sets(st.sampled_from(targeting.KEYS), max_size=2))
    # Ages and months are where the calendar bites: in most rules.
    keys |= {k for k in ("age", "member_age_months") if draw(st.integers(0, 9)) < 5}
    for key in sorted(keys):
        if key == "ward":
            rule[key] = draw(st.lists(st.sampled_from((*WARD_CODES, "99")), max_size=3))
        elif key == "sex":
            rule[key] = draw(st.lists(st.sampled_from((1, 2, 9)), max_size=3))
        elif key == "age":
            rule[key] = draw(bounds(130, 12, [_years(b, on) for b in births if b <= on]))
        elif key == "member_age_months":
            rule[key] = draw(bounds(240, 30, [_months(b, on) for b in births if b <= on]))
        elif key == "care_level":
            rule[key] = draw(st.one_of(st.just("any"), st.lists(st.sampled_from(CARE_LEVELS), min_size=1)))
        elif key == "disability":
            rule[key] = draw(
                st.one_of(st.just("any"), st.lists(st.sampled_from(DISABILITY_CERTIFICATES), min_size=1))
            )
        else:
            rule[key] = draw(st.booleans())
    return rule


@st.composite
def households_of(draw, on: date) -> list[dict]:
    size = draw(st.sampled_from((1, 2, 2, 3, 3, 4)))  # most with another member to look at
    return draw(st.lists(people(on), min_size=size, max_size=size))


@st.composite
def cities(draw) -> tuple[date, list[list[dict]]]:
    on = draw(reference_days)
    return on, draw(st.lists(households_of(on), min_size=1, max_size=8))


# --- helpers --------------------------------------------------------------------------------------


def _clean(db) -> None:
    db.session.rollback()
    db.session.execute(update(Household).values(head_id=None))
    db.session.execute(delete(Resident))
    db.session.execute(delete(Household))
    db.session.execute(delete(Address))
    db.session.commit()
    db.session.expunge_all()


def _insert(db, wards, households) -> list[tuple[Resident, list[Resident]]]:
    out = []
    for members in households:
        made: list[Resident] = []
        for i, p in enumerate(members):
            made.append(
                make_resident(
                    birth=p["birth"],
                    sex=p["sex"],
                    ward=wards[p["ward"]],
                    household=made[0].household if made else None,
                    relation="head" if i == 0 else RELATIONS[i % len(RELATIONS)],
                    status=p["status"],
                    care_level=p["care_level"],
                    disability_certificate=p["disability_certificate"],
                    pregnancy_due_on=p["pregnancy_due_on"],
                )
            )
        out += [(person, made) for person in made]
    db.session.commit()
    return out


def _selected(db, rule: dict, on: date) -> set[int]:
    return set(db.session.scalars(targeting.compile_rule(rule, on)))


def _accepted(rule: dict, residents, on: date) -> set[int]:
    return {p.id for p, household in residents if targeting.matches(rule, p, household, on)}


# --- the property ---------------------------------------------------------------------------------


def test_sql_selects_exactly_whom_the_python_rule_accepts(app, db):
    wards = {code: make_ward(code=code, name_ja=f"{code}区", name_en=f"Ward {code}") for code in WARD_CODES}
    db.session.commit()

    @settings(
        max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
    )
    @given(city=cities(), data=st.data())
    def check(city, data):
        on, households = city
        _clean(db)
        residents = _insert(db, wards, households)
        for raw in data.draw(st.lists(rules(on, households), min_size=6, max_size=12), label="rules"):
            rule = targeting.parse(json.dumps(raw))
            assert _selected(db, rule, on) == _accepted(rule, residents, on), (rule, on)

    check()


# --- the calendar's edges -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth", "on", "rule", "selected"),
    [
        # Born on 29 February: one year old on 1 March in a common year, on 29 February in a leap year.
        (date(2024, 2, 29), date(2025, 2, 28), {"age": {"min": 1}}, False),
        (date(2024, 2, 29), date(2025, 3, 1), {"age": {"min": 1}}, True),
        (date(2024, 2, 29), date(2028, 2, 28), {"age": {"min": 4}}, False),
        (date(2024, 2, 29), date(2028, 2, 29), {"age": {"min": 4}}, True),
        (date(2024, 2, 29), date(2028, 2, 29), {"age": {"max": 3}}, False),
        # 65 on the birthday, not the day before; still 74 on the day before 75.
        (date(1961, 11, 27), date(2026, 11, 26), {"age": {"min": 65, "max": 74}}, False),
        (date(1961, 11, 27), date(2026, 11, 27), {"age": {"min": 65, "max": 74}}, True),
        (date(1951, 11, 28), date(2026, 11, 27), {"age": {"min": 65, "max": 74}}, True),
        (date(1951, 11, 27), date(2026, 11, 27), {"age": {"min": 65, "max": 74}}, False),
        # Pregnancy: due on the reference day still counts.
        (date(1990, 1, 1), date(2026, 11, 27), {"pregnant": True}, True),
    ],
)
def test_age_edges(app, db, birth, on, rule, selected):
    person = make_resident(birth=birth, pregnancy_due_on=date(2026, 11, 27))
    db.session.commit()
    rule = targeting.parse(rule)
    assert (person.id in _selected(db, rule, on)) is selected
    assert targeting.matches(rule, person, [person], on) is selected


@pytest.mark.parametrize(
    ("child_birth", "on", "months", "selected"),
    [
        # Month ends: born 31 January, one month is complete on 1 March (February has no 31st).
        (date(2026, 1, 31), date(2026, 2, 28), 1, False),
        (date(2026, 1, 31), date(2026, 3, 1), 1, True),
        (date(2026, 1, 31), date(2026, 2, 28), 0, True),
        # 30 April → 30 May is one month; 31 March → 30 April is not yet.
        (date(2026, 4, 30), date(2026, 5, 30), 1, True),
        (date(2026, 3, 31), date(2026, 4, 30), 1, False),
        (date(2026, 3, 31), date(2026, 5, 1), 1, True),
        # Born 29 February 2024: 12 months on 1 March 2025.
        (date(2024, 2, 29), date(2025, 2, 28), 12, False),
        (date(2024, 2, 29), date(2025, 3, 1), 12, True),
        # Not yet born is no member of any age.
        (date(2026, 12, 1), date(2026, 11, 27), 0, False),
    ],
)
def test_member_age_in_months_at_month_ends(app, db, child_birth, on, months, selected):
    parent = make_resident(birth=date(1990, 6, 15))
    child = make_resident(birth=child_birth, household=parent.household, relation="child", ward=parent.ward)
    db.session.commit()
    rule = targeting.parse({"member_age_months": {"min": months, "max": months}})
    assert (parent.id in _selected(db, rule, on)) is selected
    assert targeting.matches(rule, parent, [parent, child], on) is selected
    assert child.id not in _selected(db, rule, on)  # another member, never oneself


def test_living_alone_counts_only_active_members(app, db):
    alone = make_resident()
    make_resident(household=alone.household, ward=alone.ward, relation="spouse", status="deceased")
    pair = make_resident()
    make_resident(household=pair.household, ward=pair.ward, relation="spouse")
    db.session.commit()
    assert _selected(db, {"living_alone": True}, date(2026, 11, 27)) == {alone.id}


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ('["ward"]', "rule"),
        ({"colour": "red"}, "rule"),
        ({"ward": "01"}, "ward"),
        ({"ward": [1]}, "ward"),
        ({"sex": [3]}, "sex"),
        ({"sex": "1"}, "sex"),
        ({"age": {"min": 70, "max": 65}}, "age"),
        ({"age": {"min": -1}}, "age"),
        ({"age": {"max": 131}}, "age"),
        ({"age": {"min": "65"}}, "age"),
        ({"age": 65}, "age"),
        ({"member_age_months": {"max": 241}}, "member_age_months"),
        ({"member_age_months": {"min": 3, "max": 2}}, "member_age_months"),
        ({"care_level": []}, "care_level"),
        ({"care_level": ["care6"]}, "care_level"),
        ({"care_level": "all"}, "care_level"),
        ({"disability": ["visual"]}, "disability"),
        ({"disability": True}, "disability"),
        ({"pregnant": "yes"}, "pregnant"),
        ({"living_alone": 1}, "living_alone"),
    ],
)
def test_invalid_rules_name_their_field(rule, field):
    with pytest.raises(RuleError) as info:
        targeting.parse(rule)
    assert info.value.field == field


def test_parse_normalises():
    assert targeting.parse('{"ward": ["02", "01", "02"], "age": {"min": 65}, "pregnant": false}') == {
        "ward": ["01", "02"],
        "age": {"min": 65, "max": 130},
    }
    assert targeting.parse({"care_level": "any", "living_alone": True}) == {
        "care_level": "any",
        "living_alone": True,
    }


def test_booleans_are_not_numbers():
    import pytest

    from portal.notices import targeting as t

    for rule, field in (({"sex": [True]}, "sex"), ({"age": {"min": True}}, "age")):
        with pytest.raises(t.RuleError) as info:
            t.parse(rule)
        assert info.value.field == field
