"""Register queries. Views call these; staff reads go through ``read_for_staff`` which writes an
access record."""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from portal.extensions import db
from portal.registry.models import Resident
from portal.registry.names import normalise


class NotFound(LookupError):
    """No such record (a 404 that says nothing about who exists)."""


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# Terms shorter than this match name prefixes (family name first, kanji or kana); longer ones match
# anywhere. Trigram indexes need three characters; a one- or two-character substring would scan.
SUBSTRING_MIN = 3


def _name_condition(key: str, postgres: bool):
    pattern = escape_like(key)
    if len(key) >= SUBSTRING_MIN:
        return Resident.name_search.like(f"%{pattern}%", escape="\\")
    if postgres:
        kanji = func.split_part(Resident.name_search, "|", 1)
        kana = func.split_part(Resident.name_search, "|", 2)
    else:
        bar = func.instr(Resident.name_search, "|")
        kanji = func.substr(Resident.name_search, 1, bar - 1)
        kana = func.substr(Resident.name_search, bar + 1)
    return or_(kanji.like(f"{pattern}%", escape="\\"), kana.like(f"{pattern}%", escape="\\"))


def search_residents(query: str, *, limit: int = 50, include_inactive: bool = True) -> list[Resident]:
    """Name search over kanji and kana, treating full-/half-width and hiragana/katakana alike.

    Short terms (1–2 characters) match the start of the kanji or kana name (山田, やま); longer
    terms match anywhere (はなこ, 山田花子). Indexed on PostgreSQL (migration 0002)."""
    key = normalise(query).replace("|", "")
    if not key:
        return []
    postgres = db.session.get_bind().dialect.name == "postgresql"
    stmt = select(Resident).options(selectinload(Resident.ward)).where(_name_condition(key, postgres))
    if not include_inactive:
        stmt = stmt.where(Resident.status == "active")
    # Byte order on PostgreSQL, so the planner filters by the name index, then sorts the few matches,
    # instead of walking the whole sorted index looking for them.
    order = Resident.name_search.collate("C") if postgres else Resident.name_search
    stmt = stmt.order_by(order, Resident.id).limit(limit)
    return list(db.session.scalars(stmt))


def get_resident(resident_id: int) -> Resident:
    resident = db.session.get(Resident, resident_id)
    if resident is None:
        raise NotFound("resident")
    return resident


def household_members(resident: Resident) -> list[Resident]:
    if resident.household is None:
        return [resident]
    return list(resident.household.members)
