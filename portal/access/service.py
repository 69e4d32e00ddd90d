"""Writing and checking access records.

Each row's hash is SHA-256 over the previous row's hash and the row's own fields in a canonical
form, so changing or removing any row breaks every hash after it. Writers are serialised (an
advisory lock on PostgreSQL; SQLite serialises writers itself) so the chain stays a line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text

from portal.access.models import AccessRecord
from portal.extensions import db
from portal.models_base import utcnow

GENESIS = "0" * 64
_LOCK_KEY = 0x41434352  # 'ACCR'

# Item codes a record may name; the page shows them in the resident's language.
DATA_ITEMS = (
    "basic4",  # name, address, birth date, sex (基本4情報)
    "household",
    "register_status",
    "attributes",  # care level, disability, pregnancy
    "individual_number",
    "contact",
    "card_credential",
    "certificate",
    "prefiling",
    "booking",
    "points",
    "library",
    "shelter",
)


@dataclass(frozen=True)
class Actor:
    """Who reads. ``kind``: staff, terminal, partner, job or resident."""

    kind: str
    id: str
    role: str
    organisation: str
    terminal_id: str | None = None


def _canonical(row: dict) -> bytes:
    return json.dumps(row, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def compute_hash(prev_hash: str, record: AccessRecord) -> str:
    fields = {
        "at": record.at.isoformat(),
        "resident_id": record.resident_id,
        "actor_kind": record.actor_kind,
        "actor_id": record.actor_id,
        "actor_role": record.actor_role,
        "organisation": record.organisation,
        "terminal_id": record.terminal_id,
        "data_items": record.data_items,
        "purpose": record.purpose,
    }
    return hashlib.sha256(prev_hash.encode() + _canonical(fields)).hexdigest()


def record(actor: Actor, *, resident_id: int, data_items: Iterable[str], purpose: str) -> AccessRecord:
    """Append one record in the caller's transaction (committed with the read it describes)."""
    return record_many(actor, resident_ids=[resident_id], data_items=data_items, purpose=purpose)[0]


def record_many(
    actor: Actor, *, resident_ids: Iterable[int], data_items: Iterable[str], purpose: str
) -> list[AccessRecord]:
    """One record per resident read together (a search result), chained in one locked step."""
    items = list(dict.fromkeys(data_items))
    unknown = [i for i in items if i not in DATA_ITEMS]
    if unknown or not items:
        raise ValueError(f"unknown data items {unknown}")
    if not purpose.strip():
        raise ValueError("an access record needs a purpose")
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    prev = db.session.scalar(select(AccessRecord.row_hash).order_by(AccessRecord.id.desc()).limit(1))
    prev = prev or GENESIS
    now = utcnow()
    rows = []
    for resident_id in resident_ids:
        row = AccessRecord(
            at=now,
            resident_id=resident_id,
            actor_kind=actor.kind,
            actor_id=actor.id,
            actor_role=actor.role,
            organisation=actor.organisation,
            terminal_id=actor.terminal_id,
            data_items=",".join(items),
            purpose=purpose.strip(),
            prev_hash=prev,
        )
        row.row_hash = prev = compute_hash(row.prev_hash, row)
        rows.append(row)
    db.session.add_all(rows)
    db.session.flush()
    return rows


@dataclass(frozen=True)
class ChainReport:
    checked: int
    first_broken_id: int | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.first_broken_id is None


def _rows(batch: int = 5000) -> Iterator[AccessRecord]:
    last = 0
    while True:
        rows = list(
            db.session.scalars(
                select(AccessRecord).where(AccessRecord.id > last).order_by(AccessRecord.id).limit(batch)
            )
        )
        if not rows:
            return
        yield from rows
        last = rows[-1].id
        db.session.expunge_all()


def verify_chain() -> ChainReport:
    """Walk the whole chain; name the first row whose link or hash does not hold."""
    prev = GENESIS
    count = 0
    for row in _rows():
        count += 1
        if row.prev_hash != prev:
            return ChainReport(count, row.id, "prev_hash does not match the previous row")
        if compute_hash(prev, row) != row.row_hash:
            return ChainReport(count, row.id, "row content does not match its hash")
        prev = row.row_hash
    return ChainReport(count, None, None)


def history_for(
    resident_id: int, *, since: datetime | None = None, until: datetime | None = None, limit: int = 200
) -> list[AccessRecord]:
    stmt = select(AccessRecord).where(AccessRecord.resident_id == resident_id)
    if since is not None:
        stmt = stmt.where(AccessRecord.at >= since)
    if until is not None:
        stmt = stmt.where(AccessRecord.at < until)
    return list(
        db.session.scalars(stmt.order_by(AccessRecord.at.desc(), AccessRecord.id.desc()).limit(limit))
    )


def search(
    *,
    resident_id: int | None = None,
    actor_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> list[AccessRecord]:
    stmt = select(AccessRecord)
    if resident_id is not None:
        stmt = stmt.where(AccessRecord.resident_id == resident_id)
    if actor_id:
        stmt = stmt.where(AccessRecord.actor_id == actor_id)
    if since is not None:
        stmt = stmt.where(AccessRecord.at >= since)
    if until is not None:
        stmt = stmt.where(AccessRecord.at < until)
    return list(db.session.scalars(stmt.order_by(AccessRecord.id.desc()).limit(limit)))
