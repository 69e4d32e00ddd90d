"""Pre-filing core: drafts, saving with optimistic locking, status transitions with their history,
reservation numbers people can read out, and the canonical form a card signs."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from portal.extensions import db
from portal.models_base import utcnow
from portal.prefiling.models import PreFiling, PreFilingEvent

# Which status may follow which (withdrawn only before the resident arrives at the counter).
TRANSITIONS = {
    "draft": {"submitted", "withdrawn"},
    "submitted": {"correction_requested", "ready", "withdrawn", "arrived"},
    "correction_requested": {"submitted", "withdrawn"},
    "ready": {"arrived", "withdrawn", "correction_requested"},
    "arrived": {"completed"},
    "completed": set(),
    "withdrawn": set(),
}
# Reservation numbers: 8 digits and a check letter, read out at the counter (no I/O/0/1 confusion).
CHECK_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXY"  # 23 letters


class PreFilingError(Exception):
    def __init__(self, code: str, status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


def check_letter(digits: str) -> str:
    """Weighted mod-23 check letter: catches any single wrong digit and any swap of neighbours."""
    total = sum((i + 2) * int(d) for i, d in enumerate(reversed(digits)))
    return CHECK_LETTERS[total % 23]


def new_reservation_no() -> str:
    while True:
        digits = f"{secrets.randbelow(10**8):08d}"
        number = digits + check_letter(digits)
        if db.session.scalar(select(PreFiling.id).where(PreFiling.reservation_no == number)) is None:
            return number


def normalise_reservation_no(text: str) -> str | None:
    """'1234-5678 k' → '12345678K' when the check letter holds, else None."""
    import unicodedata

    clean = unicodedata.normalize("NFKC", text or "").upper().replace("-", "").replace(" ", "")
    if len(clean) != 9 or not clean[:8].isdigit() or check_letter(clean[:8]) != clean[8]:
        return None
    return clean


def format_reservation_no(number: str) -> str:
    return f"{number[:4]}-{number[4:8]}-{number[8:]}"


def record(prefiling: PreFiling, actor: str, action: str, note: str | None = None) -> None:
    db.session.add(PreFilingEvent(prefiling_id=prefiling.id, actor=actor, action=action, note=note))


def create_draft(*, resident_id: int, account_id: int, code: str, version: int, data: dict) -> PreFiling:
    prefiling = PreFiling(
        resident_id=resident_id,
        account_id=account_id,
        procedure_code=code,
        procedure_version=version,
        data=json.dumps(data, ensure_ascii=False, sort_keys=True),
    )
    db.session.add(prefiling)
    db.session.flush()
    record(prefiling, f"account:{account_id}", "created")
    return prefiling


def values(prefiling: PreFiling) -> dict:
    return json.loads(prefiling.data or "{}")


def save(prefiling: PreFiling, data: dict, *, expected_version: int, actor: str) -> None:
    """Store new field values; refuses when someone saved since ``expected_version`` was read."""
    if prefiling.version != expected_version:
        raise PreFilingError("changed_meanwhile", 409)
    if prefiling.status not in ("draft", "correction_requested", "submitted"):
        raise PreFilingError("not_editable", 409)
    prefiling.data = json.dumps(data, ensure_ascii=False, sort_keys=True)
    prefiling.updated_at = utcnow()
    # A changed form invalidates an earlier card signature over the old content.
    prefiling.signed_digest = prefiling.signature = prefiling.signature_certificate = None
    prefiling.signature_verified_at = None
    record(prefiling, actor, "saved")
    try:
        db.session.flush()
    except StaleDataError:
        db.session.rollback()
        raise PreFilingError("changed_meanwhile", 409) from None


def transition(prefiling: PreFiling, to: str, *, actor: str, note: str | None = None) -> None:
    if to not in TRANSITIONS[prefiling.status]:
        raise PreFilingError("bad_transition", 409)
    now = utcnow()
    if to == "submitted":
        prefiling.submitted_at = prefiling.submitted_at or now
        if prefiling.reservation_no is None:
            prefiling.reservation_no = new_reservation_no()
    stamp = {"ready": "ready_at", "arrived": "arrived_at", "completed": "completed_at"}.get(to)
    if stamp:
        setattr(prefiling, stamp, now)
    if to == "correction_requested":
        prefiling.correction_note = note
    prefiling.status, prefiling.updated_at = to, now
    record(prefiling, actor, to, note)
    try:
        db.session.flush()
    except StaleDataError:
        db.session.rollback()
        raise PreFilingError("changed_meanwhile", 409) from None


def canonical_form(prefiling: PreFiling) -> bytes:
    """The exact bytes a resident signs with the card: procedure, version, reservation number and
    the field values as sorted, compact UTF-8 JSON (attachments by their SHA-256)."""
    from portal.prefiling.models import Attachment

    attachments = sorted(
        (a.code, a.sha256)
        for a in db.session.scalars(select(Attachment).where(Attachment.prefiling_id == prefiling.id))
    )
    body = {
        "procedure": prefiling.procedure_code,
        "version": prefiling.procedure_version,
        "reservation_no": prefiling.reservation_no,
        "values": values(prefiling),
        "attachments": [{"code": c, "sha256": h} for c, h in attachments],
    }
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def form_digest(prefiling: PreFiling) -> str:
    return hashlib.sha256(canonical_form(prefiling)).hexdigest()


def minutes_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds() / 60
