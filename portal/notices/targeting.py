"""Targeting rules (対象者の条件), compiled into one SQL statement over the register.

A rule is JSON; every key present must hold (AND). Ages are on a reference date (the send date).

    {"ward": ["01", "02"],                       # ward codes
     "sex": [1, 2],                              # ISO 5218
     "age": {"min": 65, "max": 74},              # years, inclusive
     "member_age_months": {"min": 2, "max": 3},  # another member of the household, in months
     "care_level": ["care1", "care2"] | "any",   # 要介護度
     "disability": ["physical"] | "any",         # 障害者手帳
     "pregnant": true,                           # due date on or after the reference date
     "living_alone": true}                       # the only active member of the household

Only active residents are ever targeted. ``matches()`` evaluates the same rule in Python on one
resident (the tests compare the two on random residents).
"""

from __future__ import annotations

import calendar
import json
from datetime import date
from typing import Any

from sqlalchemy import Select, and_, exists, func, select
from sqlalchemy.orm import aliased

from portal.registry.models import CARE_LEVELS, DISABILITY_CERTIFICATES, Resident

KEYS = ("ward", "sex", "age", "member_age_months", "care_level", "disability", "pregnant", "living_alone")


class RuleError(ValueError):
    """The rule is not valid; ``field`` names the part."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def _shift(day: date, *, years: int = 0, months: int = 0) -> date:
    """``day`` moved back by whole years/months, the day clamped to the month's end."""
    total = day.year * 12 + (day.month - 1) - (years * 12 + months)
    y, m = divmod(total, 12)
    return date(y, m + 1, min(day.day, calendar.monthrange(y, m + 1)[1]))


def _range(raw: Any, field: str, top: int) -> tuple[int, int]:
    if not isinstance(raw, dict):
        raise RuleError(field)
    lo, hi = raw.get("min", 0), raw.get("max", top)
    whole = all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi))
    if not whole or not 0 <= lo <= hi <= top:
        raise RuleError(field)
    return lo, hi


def parse(text_or_rule: str | dict) -> dict:
    """Validate a rule (JSON text or dict); returns the normalised dict."""
    rule = json.loads(text_or_rule) if isinstance(text_or_rule, str) else dict(text_or_rule)
    if not isinstance(rule, dict) or set(rule) - set(KEYS):
        raise RuleError("rule")
    out: dict[str, Any] = {}
    if "ward" in rule:
        if not isinstance(rule["ward"], list) or not all(isinstance(w, str) for w in rule["ward"]):
            raise RuleError("ward")
        out["ward"] = sorted(set(rule["ward"]))
    if "sex" in rule:
        codes = rule["sex"]
        if (
            not isinstance(codes, list)
            or any(isinstance(c, bool) for c in codes)
            or not set(codes) <= {1, 2, 9}
        ):
            raise RuleError("sex")
        out["sex"] = sorted(set(rule["sex"]))
    if "age" in rule:
        out["age"] = dict(zip(("min", "max"), _range(rule["age"], "age", 130), strict=True))
    if "member_age_months" in rule:
        lo_hi = _range(rule["member_age_months"], "member_age_months", 240)
        out["member_age_months"] = dict(zip(("min", "max"), lo_hi, strict=True))
    for key, allowed in (("care_level", CARE_LEVELS), ("disability", DISABILITY_CERTIFICATES)):
        if key in rule:
            value = rule[key]
            if value != "any" and not (isinstance(value, list) and value and set(value) <= set(allowed)):
                raise RuleError(key)
            out[key] = value if value == "any" else sorted(set(value))
    for key in ("pregnant", "living_alone"):
        if key in rule:
            if not isinstance(rule[key], bool):
                raise RuleError(key)
            if rule[key]:
                out[key] = True
    return out


def compile_rule(rule: dict, on: date) -> Select:
    """``SELECT residents.id`` of the active residents the rule selects on date ``on``."""
    r = Resident
    conditions = [r.status == "active"]
    if "ward" in rule:
        from portal.registry.models import Ward

        conditions.append(r.ward_id.in_(select(Ward.id).where(Ward.code.in_(rule["ward"]))))
    if "sex" in rule:
        conditions.append(r.sex.in_(rule["sex"]))
    if "age" in rule:
        conditions.append(r.birth_date <= _shift(on, years=rule["age"]["min"]))
        conditions.append(r.birth_date > _shift(on, years=rule["age"]["max"] + 1))
    if "member_age_months" in rule:
        m = aliased(Resident)
        lo, hi = rule["member_age_months"]["min"], rule["member_age_months"]["max"]
        conditions.append(
            exists().where(
                m.household_id == r.household_id,
                m.id != r.id,
                m.status == "active",
                m.birth_date <= _shift(on, months=lo),
                m.birth_date > _shift(on, months=hi + 1),
            )
        )
    if "care_level" in rule:
        col = r.care_level
        conditions.append(col.is_not(None) if rule["care_level"] == "any" else col.in_(rule["care_level"]))
    if "disability" in rule:
        col = r.disability_certificate
        conditions.append(col.is_not(None) if rule["disability"] == "any" else col.in_(rule["disability"]))
    if rule.get("pregnant"):
        conditions.append(r.pregnancy_due_on >= on)
    if rule.get("living_alone"):
        m = aliased(Resident)
        conditions.append(
            select(func.count(m.id))
            .where(m.household_id == r.household_id, m.status == "active")
            .scalar_subquery()
            == 1
        )
    return select(r.id).where(and_(*conditions))


def matches(rule: dict, person: Resident, household: list[Resident], on: date) -> bool:
    """The same rule evaluated in Python on one resident (``household``: all its members)."""
    if person.status != "active":
        return False
    if "ward" in rule and person.ward.code not in rule["ward"]:
        return False
    if "sex" in rule and person.sex not in rule["sex"]:
        return False
    if "age" in rule and not rule["age"]["min"] <= person.age_on(on) <= rule["age"]["max"]:
        return False
    if "member_age_months" in rule:
        lo, hi = rule["member_age_months"]["min"], rule["member_age_months"]["max"]
        if not any(
            m.id != person.id
            and m.status == "active"
            and m.birth_date <= on
            and lo <= m.age_in_months_on(on) <= hi
            for m in household
        ):
            return False
    for key, attr in (("care_level", "care_level"), ("disability", "disability_certificate")):
        if key in rule:
            value = getattr(person, attr)
            if value is None or (rule[key] != "any" and value not in rule[key]):
                return False
    if rule.get("pregnant") and not (person.pregnancy_due_on and person.pregnancy_due_on >= on):
        return False
    return not (rule.get("living_alone") and sum(m.status == "active" for m in household) != 1)
