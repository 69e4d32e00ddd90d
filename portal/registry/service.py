"""Register queries. Views call these; staff reads go through ``read_for_staff`` which writes an
access record."""

from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.registry.models import Resident
from portal.registry.names import normalise


class NotFound(LookupError):
    """No such record (a 404 that says nothing about who exists)."""


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_residents(query: str, *, limit: int = 50, include_inactive: bool = True) -> list[Resident]:
    """Name search over kanji and kana, treating full-/half-width and hiragana/katakana alike."""
    key = normalise(query)
    if not key:
        return []
    stmt = select(Resident).where(Resident.name_search.like(f"%{escape_like(key)}%", escape="\\"))
    if not include_inactive:
        stmt = stmt.where(Resident.status == "active")
    stmt = stmt.order_by(Resident.name_search, Resident.id).limit(limit)
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
