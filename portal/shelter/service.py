"""Shelter check-in: opening shelters, checking people in (by card through the terminal agent —
online or synced later from its queue — or by hand), moves, check-outs, the roster, and what a
family sees. No flask.request here; views and the API pass in who acts.

Every stay has a UUID made by whoever recorded it; the server keeps one stay per UUID, so the
agent may send a queued check-in as often as it likes (idempotent). A resident has at most one
active stay: a check-in elsewhere is a move (docs/shelter-checkin.md)."""

from __future__ import annotations

import base64
import binascii
import re
import uuid as uuidlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from card import offline, termsig
from card.models import Basic4
from card.verify import VerificationError, verify_signature
from portal.access import service as access
from portal.cardid import service as cardid
from portal.cardid.models import CardCredential, Terminal
from portal.extensions import db
from portal.models_base import utcnow
from portal.registry import service as registry
from portal.registry.models import Resident
from portal.shelter.models import DisasterEvent, Shelter, ShelterOpening, ShelterStay

MAX_BATCH = 100
FUTURE_SKEW = timedelta(minutes=5)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

MESSAGES = {
    "capacity": _l("The capacity is a whole number from 1 to 10,000."),
    "already_open": _l("This shelter is already open for this event."),
    "shelter_unknown": _l("This shelter is not open. Choose an open shelter."),
    "shelter_closed": _l("This shelter was closed before this check-in."),
    "stay_unknown": _l("This stay was not found."),
    "not_active": _l("This person is no longer checked in here."),
    "same_shelter": _l("Choose another shelter to move to."),
    "name_required": _l("Enter the person's name."),
    "resident_unknown": _l(
        "No resident matches. Search the register, or record the person as not registered."
    ),
    "card_not_linked": _l(
        "This card is not linked. Read the card's basic 4 information with the PIN, or check in by hand."
    ),
    "entry_invalid": _l("The check-in could not be read."),
    "entry_signature": _l("The check-in is not signed by this terminal."),
    "entry_too_old": _l("The check-in is too old to be accepted. Check the person in by hand."),
    "entry_in_future": _l("The terminal's clock is wrong: the check-in time is in the future."),
    "wrong_terminal": _l("This check-in was made by another terminal."),
    "bad_signature": _l("The card's signature could not be verified. Check the person in by hand."),
}


class ShelterError(Exception):
    def __init__(self, code: str, status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.status = status

    @property
    def message(self) -> str:
        return str(MESSAGES.get(self.code, MESSAGES["entry_invalid"]))


class AlreadyHere(Exception):
    """The person is checked in at this shelter already: nothing new is recorded."""

    def __init__(self, stay: ShelterStay) -> None:
        super().__init__("already_here")
        self.stay = stay


@dataclass(frozen=True)
class Needs:
    allergy: str | None = None
    care: str | None = None
    disability: str | None = None


# --- events and openings ----------------------------------------------------------------------------


def current_events() -> list[DisasterEvent]:
    return list(
        db.session.scalars(
            select(DisasterEvent)
            .where(DisasterEvent.ended_at.is_(None))
            .order_by(DisasterEvent.started_at.desc())
        )
    )


def shelters() -> list[Shelter]:
    return list(db.session.scalars(select(Shelter).order_by(Shelter.code)))


def open_openings() -> list[ShelterOpening]:
    return list(
        db.session.scalars(
            select(ShelterOpening)
            .join(DisasterEvent)
            .where(ShelterOpening.closed_at.is_(None), DisasterEvent.ended_at.is_(None))
            .order_by(ShelterOpening.code)
        )
    )


def opening_by_code(code: str) -> ShelterOpening:
    opening = db.session.scalar(select(ShelterOpening).where(ShelterOpening.code == code))
    if opening is None:
        raise ShelterError("shelter_unknown", 404)
    return opening


def open_shelter(event: DisasterEvent, shelter: Shelter, capacity: int, *, by: str) -> ShelterOpening:
    if not isinstance(capacity, int) or not 1 <= capacity <= 10_000:
        raise ShelterError("capacity")
    existing = db.session.scalar(
        select(ShelterOpening).where(
            ShelterOpening.event_id == event.id, ShelterOpening.shelter_id == shelter.id
        )
    )
    if existing is not None:
        if existing.closed_at is None:
            raise ShelterError("already_open", 409)
        existing.closed_at, existing.capacity, existing.opened_at, existing.opened_by = (
            None,
            capacity,
            utcnow(),
            by,
        )
        return existing
    opening = ShelterOpening(
        code=f"{event.code}-{shelter.code}", event=event, shelter=shelter, capacity=capacity, opened_by=by
    )
    db.session.add(opening)
    db.session.flush()
    return opening


def head_counts(opening_ids: list[int]) -> dict[int, int]:
    if not opening_ids:
        return {}
    rows = db.session.execute(
        select(ShelterStay.opening_id, func.count())
        .where(ShelterStay.opening_id.in_(opening_ids), ShelterStay.status == "active")
        .group_by(ShelterStay.opening_id)
    )
    return {int(opening_id): int(n) for opening_id, n in rows.all()}


def roster(opening: ShelterOpening, *, actor: access.Actor) -> list[ShelterStay]:
    """Who is here now, with their needs; one access record per registered person listed."""
    stays = list(
        db.session.scalars(
            select(ShelterStay)
            .where(ShelterStay.opening_id == opening.id, ShelterStay.status == "active")
            .order_by(ShelterStay.checked_in_at, ShelterStay.id)
        )
    )
    ids = [s.resident_id for s in stays if s.resident_id is not None]
    if ids:
        access.record_many(
            actor, resident_ids=ids, data_items=["basic4", "shelter"], purpose="shelter_roster"
        )
    return stays


# --- placing a person -------------------------------------------------------------------------------


def _stay_by_uuid(value: str) -> ShelterStay | None:
    return db.session.scalar(select(ShelterStay).where(ShelterStay.uuid == value))


def _active_stay(resident_id: int) -> ShelterStay | None:
    return db.session.scalar(
        select(ShelterStay)
        .where(ShelterStay.resident_id == resident_id, ShelterStay.status == "active")
        .with_for_update()
    )


def _place(stay: ShelterStay) -> ShelterStay | None:
    """Add ``stay``; a resident's earlier active stay becomes a move to it. A check-in older than
    the active stay (synced late from a terminal's queue) is kept as history, already moved on.
    Returns the stay the person moved from, if any."""
    previous = _active_stay(stay.resident_id) if stay.resident_id is not None else None
    if previous is not None and previous.checked_in_at > stay.checked_in_at:
        stay.status, stay.checked_out_at, stay.moved_to_id = "moved", previous.checked_in_at, previous.id
        db.session.add(stay)
        db.session.flush()
        return None
    if previous is not None:
        previous.status, previous.checked_out_at = "moved", stay.checked_in_at
        db.session.flush()  # the old stay leaves "active" before the new one joins it
    db.session.add(stay)
    db.session.flush()
    if previous is not None:
        previous.moved_to_id = stay.id
    return previous


def check_in(
    opening: ShelterOpening,
    *,
    resident: Resident | None,
    guest_name: str | None = None,
    guest_note: str | None = None,
    method: str,
    actor: access.Actor,
    at: datetime | None = None,
    uuid: str | None = None,
    offline_entry: bool = False,
    needs: Needs | None = None,
) -> tuple[ShelterStay, ShelterStay | None]:
    """Record a check-in (the caller commits). Returns (stay, stay moved from)."""
    if opening.closed_at is not None and (at or utcnow()) >= opening.closed_at:
        raise ShelterError("shelter_closed", 409)
    if resident is None and not (guest_name or "").strip():
        raise ShelterError("name_required")
    if resident is not None:
        here = _active_stay(resident.id)
        if here is not None and here.opening_id == opening.id and here.checked_in_at <= (at or utcnow()):
            raise AlreadyHere(here)
    needs = needs or Needs()
    stay = ShelterStay(
        uuid=uuid or str(uuidlib.uuid4()),
        opening_id=opening.id,
        resident_id=resident.id if resident is not None else None,
        guest_name=None if resident is not None else (guest_name or "").strip()[:120],
        guest_note=(guest_note or "").strip() or None,
        method=method,
        status="active",
        checked_in_at=at or utcnow(),
        offline=offline_entry,
        terminal_code=actor.terminal_id,
        recorded_by=actor.id,
        allergy=needs.allergy,
        care=needs.care,
        disability=needs.disability,
    )
    moved_from = _place(stay)
    if moved_from is not None and needs == Needs():
        stay.allergy, stay.care, stay.disability = moved_from.allergy, moved_from.care, moved_from.disability
    if resident is not None:
        access.record(
            actor,
            resident_id=resident.id,
            data_items=["basic4", "shelter"],
            purpose=f"shelter_checkin: {method}",
        )
    return stay, moved_from


def check_out(stay: ShelterStay) -> None:
    if stay.status != "active":
        raise ShelterError("not_active", 409)
    stay.status, stay.checked_out_at = "left", utcnow()


def move(stay: ShelterStay, target: ShelterOpening, *, actor: access.Actor) -> ShelterStay:
    """Move to another open shelter: the old stay ends, a new one starts, needs go along."""
    if stay.status != "active":
        raise ShelterError("not_active", 409)
    if target.id == stay.opening_id:
        raise ShelterError("same_shelter")
    if target.closed_at is not None:
        raise ShelterError("shelter_unknown", 409)
    needs = Needs(stay.allergy, stay.care, stay.disability)
    if stay.resident is not None:
        new, _ = check_in(target, resident=stay.resident, method="hand", actor=actor, needs=needs)
    else:
        stay.status, stay.checked_out_at = "moved", utcnow()
        db.session.flush()
        new, _ = check_in(
            target,
            resident=None,
            guest_name=stay.guest_name,
            guest_note=stay.guest_note,
            method="unregistered",
            actor=actor,
            needs=needs,
        )
        stay.moved_to_id = new.id
    return new


def update_needs(stay: ShelterStay, needs: Needs) -> None:
    stay.allergy, stay.care, stay.disability = needs.allergy, needs.care, needs.disability


def search(query: str, *, actor: access.Actor) -> list[Resident]:
    """Register search for a check-in by hand; each person shown is recorded."""
    people = registry.search_residents(query, limit=20, include_inactive=False)
    if people:
        access.record_many(
            actor,
            resident_ids=[p.id for p in people],
            data_items=["basic4"],
            purpose="shelter_checkin: search",
        )
    return people


# --- check-ins from terminals (online, or synced from the agent's queue) ----------------------------


def _b64(entry: dict[str, Any], key: str) -> bytes:
    try:
        value = base64.b64decode(str(entry.get(key, "")), validate=True)
    except (binascii.Error, ValueError):
        raise ShelterError("entry_invalid") from None
    if not value:
        raise ShelterError("entry_invalid")
    return value


def _basic4(entry: dict[str, Any]) -> Basic4 | None:
    raw = entry.get("basic4")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ShelterError("entry_invalid")
    try:
        return Basic4(**{k: str(raw[k]) for k in ("name", "address", "birth_date", "sex")})
    except KeyError:
        raise ShelterError("entry_invalid") from None


def _card_holder(entry: dict[str, Any], terminal: Sender, origin: str, at: int) -> Resident | None:
    """The resident whose linked card signed this check-in; None when the card is not linked."""
    message = offline.checkin_message(entry["uuid"], entry["shelter"], terminal.code, at, origin)
    v = cardid.verifier()
    try:
        verified = verify_signature(
            _b64(entry, "certificate"),
            _b64(entry, "signature"),
            message,
            v.trust,
            v.revocation,
            expected_kind="auth",
        )
    except VerificationError as exc:
        raise ShelterError("bad_signature" if exc.reason == "bad_signature" else exc.reason, 403) from None
    cred = db.session.scalar(
        select(CardCredential).where(
            CardCredential.issuer == verified.issuer,
            CardCredential.serial == str(verified.serial),
            CardCredential.status == "active",
        )
    )
    if cred is None or cred.fingerprint_sha256 != verified.fingerprint_sha256:
        return None
    cred.last_used_at = utcnow()
    return cred.resident


@dataclass(frozen=True)
class Sender:
    """The terminal that sent a batch, read once (each entry commits, which expires the row)."""

    code: str
    key: Any
    actor: access.Actor

    @classmethod
    def of(cls, terminal: Terminal) -> Sender:
        key = termsig.load_public_key(terminal.public_key_pem)
        return cls(terminal.code, key, cardid.terminal_actor(terminal))


def _checked_entry(entry: Any, terminal: Sender) -> tuple[dict[str, Any], int]:
    if not isinstance(entry, dict):
        raise ShelterError("entry_invalid")
    uuid, at = entry.get("uuid"), entry.get("at")
    if not isinstance(uuid, str) or not _UUID.match(uuid) or not isinstance(at, int) or isinstance(at, bool):
        raise ShelterError("entry_invalid")
    if not isinstance(entry.get("shelter"), str) or entry.get("method") not in ("card", "text_ap"):
        raise ShelterError("entry_invalid")
    if entry.get("terminal") != terminal.code:
        raise ShelterError("wrong_terminal", 403)
    if not offline.entry_signature_valid(terminal.key, entry):
        raise ShelterError("entry_signature", 403)
    return entry, at


def apply_entry(raw: Any, terminal: Sender, *, origin: str, retry: bool = True) -> dict[str, Any]:
    """One check-in from a terminal; commits. The answer names the outcome for this UUID:
    ``created``, ``duplicate`` (already here: the same stay) or ``refused`` with a code."""
    ident = raw.get("uuid") if isinstance(raw, dict) else None
    try:
        entry, at = _checked_entry(raw, terminal)
        existing = _stay_by_uuid(entry["uuid"])
        if existing is not None:
            return _answer(existing, "duplicate")
        now = utcnow()
        when = datetime.fromtimestamp(at, UTC)
        if when > now + FUTURE_SKEW:
            raise ShelterError("entry_in_future")
        if when < now - timedelta(seconds=current_app.config.get("SHELTER_OFFLINE_MAX_SECONDS", 3 * 86400)):
            raise ShelterError("entry_too_old")
        opening = opening_by_code(entry["shelter"])
        resident, method = None, entry["method"]
        if entry.get("certificate"):
            resident = _card_holder(entry, terminal, origin, at)
        basic4 = _basic4(entry)
        if resident is None and basic4 is None:
            raise ShelterError("card_not_linked", 403)
        guest_name = guest_note = None
        if resident is None and basic4 is not None:
            method = "text_ap"
            matches = cardid.match_basic4(basic4)
            if len(matches) == 1:
                resident = matches[0]
            else:
                guest_name = basic4.name
                guest_note = (
                    "basic4: no match in the register" if not matches else "basic4: more than one match"
                )
        elif resident is not None:
            method = "card"
        stay, moved_from = check_in(
            opening,
            resident=resident,
            guest_name=guest_name,
            guest_note=guest_note,
            method=method,
            actor=terminal.actor,
            at=when,
            uuid=entry["uuid"],
            offline_entry=bool(entry.get("offline")),
        )
        answer = _answer(stay, "created", moved_from)  # before the commit expires what it reads
        db.session.commit()
    except ShelterError as exc:
        db.session.rollback()
        return {"uuid": ident, "status": "refused", "code": exc.code, "message": exc.message}
    except AlreadyHere as here:
        db.session.rollback()
        return {**_answer(here.stay, "already_here"), "uuid": ident}
    except IntegrityError:
        # the same UUID arrived twice at once (or the person checked in elsewhere at that moment)
        db.session.rollback()
        existing = _stay_by_uuid(str(ident))
        if existing is not None:
            return _answer(existing, "duplicate")
        if not retry:
            return {"uuid": ident, "status": "refused", "code": "conflict", "message": "try again"}
        return apply_entry(raw, terminal, origin=origin, retry=False)
    return answer


def _answer(stay: ShelterStay, status: str, moved_from: ShelterStay | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "uuid": stay.uuid,
        "status": status,
        "stay": stay.id,
        "name": stay.display_name,
        "matched": stay.resident_id is not None,
        "shelter": stay.opening.code,
        "method": stay.method,
    }
    if moved_from is not None:
        body["moved_from"] = moved_from.opening.code
    return body


def apply_batch(entries: Any, terminal: Terminal, *, origin: str) -> list[dict[str, Any]]:
    if terminal.kind != "shelter":
        raise ShelterError("wrong_terminal", 403)
    if not isinstance(entries, list) or not entries or len(entries) > MAX_BATCH:
        raise ShelterError("entry_invalid")
    sender = Sender.of(terminal)
    return [apply_entry(e, sender, origin=origin) for e in entries]


# --- what a family sees -----------------------------------------------------------------------------


def family_stays(resident: Resident, *, actor: access.Actor) -> list[tuple[Resident, ShelterStay | None]]:
    """Each member of the resident's household with their latest stay in a current event. Reading
    another member's stay is recorded for that member."""
    members = [m for m in registry.household_members(resident) if m.status == "active"]
    out: list[tuple[Resident, ShelterStay | None]] = []
    seen = []
    for member in members:
        stay = db.session.scalar(
            select(ShelterStay)
            .join(ShelterOpening)
            .join(DisasterEvent)
            .where(ShelterStay.resident_id == member.id, DisasterEvent.ended_at.is_(None))
            .order_by(ShelterStay.checked_in_at.desc(), ShelterStay.id.desc())
            .limit(1)
        )
        out.append((member, stay))
        if stay is not None and member.id != resident.id:
            seen.append(member.id)
    if seen:
        access.record_many(actor, resident_ids=seen, data_items=["shelter"], purpose="shelter_family")
    return out
