"""Demo data for certificates: income and tax records for most adults (two fiscal years) and a
registered seal (with a generated impression) for some. Deterministic, once per database."""

from __future__ import annotations

import random
from datetime import date, timedelta

from sqlalchemy import func, select

from portal.certificates import seals
from portal.certificates.models import SealRegistration, TaxRecord
from portal.extensions import db
from portal.registry.models import Resident


def current_fiscal_year(today: date) -> int:
    """The latest 年度 whose resident tax is assessed (notices go out in June)."""
    return today.year if today.month >= 6 else today.year - 1


def tax_for(gross: int, dependents: int) -> dict[str, int]:
    """A simplified 給与所得 assessment: employment deduction, basic + dependent deductions,
    social insurance, then 6 % municipal and 4 % prefectural tax plus the per-capita levies."""
    employment = max(550_000, min(1_950_000, int(gross * 0.2) + 440_000))
    income = max(0, gross - employment)
    deductions = 430_000 + 380_000 * dependents + int(gross * 0.15)
    taxable = max(0, income - deductions) // 1000 * 1000
    levied = income > 450_000
    return {
        "gross_income": gross,
        "income": income,
        "deductions": deductions,
        "taxable_income": taxable,
        "municipal_tax": (taxable * 6 // 100 + (3_500 if levied else 0)) // 100 * 100,
        "prefectural_tax": (taxable * 4 // 100 + (1_500 if levied else 0)) // 100 * 100,
        "dependents": dependents,
    }


def load(seed: int = 2026, today: date | None = None) -> tuple[int, int]:
    """Add the records unless there are some; returns (tax records, seals) added."""
    if db.session.scalar(select(func.count()).select_from(TaxRecord)):
        return 0, 0
    today = today or date.today()
    rng = random.Random(seed)
    fiscal = current_fiscal_year(today)
    taxes = seals_made = 0
    residents = db.session.scalars(
        select(Resident).where(Resident.status == "active").order_by(Resident.id)
    ).all()
    for person in residents:
        age = person.age_on(today)
        if age >= 20 and rng.random() < 0.9:
            gross = rng.choice((0, 1_030_000, 2_400_000, 3_600_000, 4_800_000, 6_200_000, 8_500_000))
            dependents = rng.choice((0, 0, 1, 2))
            for year in (fiscal, fiscal - 1):
                db.session.add(
                    TaxRecord(resident_id=person.id, fiscal_year=year, **tax_for(gross, dependents))
                )
                taxes += 1
        if age >= 18 and rng.random() < 0.4:
            db.session.add(
                SealRegistration(
                    resident_id=person.id,
                    registration_no=f"{person.ward.code}-{person.id:07d}",
                    image_png=seals.impression_png(person.family_name),
                    status="registered",
                    registered_on=today - timedelta(days=rng.randint(30, 5000)),
                    registered_by="demo",
                )
            )
            seals_made += 1
    db.session.commit()
    return taxes, seals_made
