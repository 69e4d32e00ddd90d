"""Kiosk sessions: a ticket for a card login on a kiosk terminal, redeemed once by the kiosk page
on that terminal, then a short-lived session for that resident on that terminal. No flask.request.

The ticket travels server → agent (terminal-signed exchange) → page (loopback) → server. It is
single-use, expires in ``KIOSK_TICKET_SECONDS``, and is redeemed only by a page that names the same
terminal. The session ends by removing the card (the page tells the server at once), by the idle
timeout (checked here on every request), by its absolute limit, by the resident finishing, or by
the next login on the same terminal.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from portal.access import service as access
from portal.cardid.models import CardChallenge, Terminal
from portal.extensions import db
from portal.kiosk.models import KioskPrint, KioskSession
from portal.models_base import utcnow

END_REASONS = ("finished", "card_removed", "idle", "expired", "replaced", "ended")


class KioskError(Exception):
    def __init__(self, code: str, status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def issue_ticket(challenge: CardChallenge, terminal: Terminal) -> str:
    """After a ``kiosk_login`` challenge is answered by ``terminal``: a one-time ticket for it."""
    if challenge.purpose != "kiosk_login" or challenge.resident_id is None or challenge.credential_id is None:
        raise KioskError("bad_request")
    if challenge.terminal_code != terminal.code:
        raise KioskError("wrong_terminal", 403)
    ticket = "kt_" + secrets.token_urlsafe(24)
    db.session.add(
        KioskSession(
            id="ks_" + secrets.token_urlsafe(24),
            ticket_hash=_hash(ticket),
            terminal_code=terminal.code,
            resident_id=challenge.resident_id,
            credential_id=challenge.credential_id,
            challenge_id=challenge.id,
            ticket_expires_at=utcnow() + timedelta(seconds=current_app.config["KIOSK_TICKET_SECONDS"]),
        )
    )
    challenge.consumed_at = utcnow()
    db.session.flush()
    return ticket


def redeem(ticket: str, terminal_code: str | None) -> KioskSession:
    """The kiosk page on ``terminal_code`` turns the ticket into its session, exactly once."""
    if not terminal_code:
        raise KioskError("terminal_not_set", 403)
    if not isinstance(ticket, str) or not ticket.startswith("kt_"):
        raise KioskError("ticket_unknown", 404)
    row = db.session.scalar(
        select(KioskSession).where(KioskSession.ticket_hash == _hash(ticket)).with_for_update()
    )
    if row is None:
        raise KioskError("ticket_unknown", 404)
    if row.redeemed_at is not None or row.ended_at is not None:
        raise KioskError("ticket_used", 409)
    if row.terminal_code != terminal_code:
        raise KioskError("wrong_terminal", 403)
    now = utcnow()
    if row.ticket_expires_at <= now:
        row.ended_at, row.end_reason = now, "expired"
        db.session.commit()
        raise KioskError("ticket_expired", 410)
    terminal = db.session.scalar(select(Terminal).where(Terminal.code == terminal_code))
    if terminal is None or not terminal.active or terminal.kind != "kiosk":
        raise KioskError("terminal_disabled", 403)
    # one resident at a time on a terminal: whatever was still open there ends now
    end_open_sessions(terminal_code, "replaced", except_id=row.id)
    row.redeemed_at = row.last_seen_at = now
    row.expires_at = now + timedelta(seconds=current_app.config["KIOSK_SESSION_MAX_SECONDS"])
    access.record(
        actor(terminal),
        resident_id=row.resident_id,
        data_items=["card_credential", "basic4"],
        purpose="kiosk_session",
    )
    return row


def actor(terminal: Terminal) -> access.Actor:
    return access.Actor(
        kind="terminal",
        id=terminal.code,
        role=terminal.kind,
        organisation=terminal.organisation,
        terminal_id=terminal.code,
    )


def terminal(code: str | None) -> Terminal | None:
    """The active kiosk terminal with this code, or None."""
    if not code:
        return None
    found = db.session.scalar(select(Terminal).where(Terminal.code == code))
    if found is None or not found.active or found.kind != "kiosk":
        return None
    return found


def current(session_id: str | None, terminal_code: str | None, *, touch: bool = True) -> KioskSession | None:
    """The open session with this id on this terminal, or None; an idle or expired one ends here."""
    if not session_id or not terminal_code:
        return None
    row = db.session.get(KioskSession, session_id)
    if row is None or row.ended_at is not None or row.redeemed_at is None:
        return None
    if row.terminal_code != terminal_code:
        return None
    now = utcnow()
    idle = timedelta(seconds=current_app.config["KIOSK_IDLE_SECONDS"])
    if row.expires_at is not None and row.expires_at <= now:
        end(row, "expired")
        return None
    if row.last_seen_at is not None and row.last_seen_at + idle <= now:
        end(row, "idle")
        return None
    if touch:
        row.last_seen_at = now
    return row


def end(row: KioskSession, reason: str) -> None:
    """End a session: nothing it showed or printed stays reachable."""
    if reason not in END_REASONS:
        reason = "ended"
    if row.ended_at is None:
        row.ended_at, row.end_reason = utcnow(), reason
    db.session.execute(update(KioskPrint).where(KioskPrint.session_id == row.id).values(pdf=None))


def end_open_sessions(terminal_code: str, reason: str, *, except_id: str | None = None) -> int:
    """End every open session on a terminal (card removed, next login); returns how many."""
    rows = db.session.scalars(
        select(KioskSession).where(
            KioskSession.terminal_code == terminal_code,
            KioskSession.ended_at.is_(None),
            KioskSession.id != (except_id or ""),
        )
    ).all()
    for row in rows:
        end(row, reason)
    return len(rows)


def end_stale(now=None) -> int:
    """End every session past its idle or absolute limit (a sweep; ``current`` also does it)."""
    now = now or utcnow()
    idle = timedelta(seconds=current_app.config["KIOSK_IDLE_SECONDS"])
    ended = 0
    for row in db.session.scalars(select(KioskSession).where(KioskSession.ended_at.is_(None))):
        unused_ticket = row.redeemed_at is None and row.ticket_expires_at <= now
        idle_out = row.last_seen_at is not None and row.last_seen_at + idle <= now
        expired = row.expires_at is not None and row.expires_at <= now
        if unused_ticket or idle_out or expired:
            end(row, "idle" if idle_out else "expired")
            ended += 1
    return ended
