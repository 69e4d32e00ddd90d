"""Card identity logic: challenges, verifying card answers, linking cards, terminals.
No flask.request here; the API module passes in who asked."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from card import termsig
from card.ids import IndividualNumber
from card.models import Basic4
from card.verify import (
    CrlIndex,
    TrustStore,
    VerificationError,
    VerifiedCertificate,
    verify_certificate,
    verify_signature,
)
from portal.access import service as access
from portal.cardid.models import TERMINAL_KINDS, CardChallenge, CardCredential, ExternalIdentity, Terminal
from portal.extensions import db
from portal.models_base import utcnow
from portal.registry.models import Resident
from portal.registry.names import normalise
from portal.vault import service as vault

MAGIC = "jp.city.portal/card-challenge/v1"
PURPOSES = ["login", "counter_scan", "link", "kiosk_login", "points_attendance", "points_member"]
#: purposes whose challenge is bound to a terminal (issue_challenge needs one)
TERMINAL_BOUND = {"counter_scan", "link", "kiosk_login", "points_attendance"}
#: purposes answered through answer(): a linked card proves its holder
ANSWERED = {"login", "counter_scan", "kiosk_login", "points_attendance"}
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class CardIdError(Exception):
    """A refused card operation: ``code`` for the API and the page, ``status`` for HTTP."""

    def __init__(self, code: str, status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


# --- trust anchors and revocation ---------------------------------------------------------------


@dataclass
class Verifier:
    trust: TrustStore
    revocation: CrlIndex | None


def verifier() -> Verifier:
    cached = current_app.extensions.get("card_verifier")
    if cached is None:
        trust = TrustStore.from_dir(current_app.config["CARD_TRUST_DIR"])
        crls = [Path(p) for p in current_app.config["CARD_CRL_FILES"]]
        revocation = (
            CrlIndex(crls, trust, refresh_interval=current_app.config["CARD_CRL_REFRESH_SECONDS"])
            if crls
            else None
        )
        cached = Verifier(trust, revocation)
        current_app.extensions["card_verifier"] = cached
    return cached


def _verify(cert_der: bytes, signature: bytes, message: bytes, kind: str) -> VerifiedCertificate:
    from portal.ops.metrics import card_verification

    v = verifier()
    try:
        verified = verify_signature(cert_der, signature, message, v.trust, v.revocation, expected_kind=kind)
    except VerificationError as exc:
        card_verification(exc.reason)
        raise CardIdError(exc.reason, 403) from None
    card_verification("ok")
    return verified


# --- challenges -----------------------------------------------------------------------------------


def verify_certificate_only(cert_der: bytes, kind: str = "auth") -> VerifiedCertificate:
    """Chain, validity, key usage and revocation of a certificate, without a signature."""
    v = verifier()
    try:
        return verify_certificate(cert_der, v.trust, v.revocation, expected_kind=kind)
    except VerificationError as exc:
        raise CardIdError(exc.reason, 403) from None


def challenge_message(ch: CardChallenge) -> bytes:
    return "\n".join((MAGIC, ch.purpose, ch.id, ch.nonce, ch.origin)).encode()


def _new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def issue_challenge(
    purpose: str,
    *,
    origin: str,
    session_binding: str | None = None,
    terminal: Terminal | None = None,
) -> CardChallenge:
    if purpose not in PURPOSES:
        raise CardIdError("purpose_unknown")
    if purpose in ("login", "points_member") and not session_binding:
        raise CardIdError("session_required")
    if purpose in TERMINAL_BOUND and terminal is None:
        raise CardIdError("terminal_required", 403)
    if purpose == "kiosk_login" and terminal is not None and terminal.kind != "kiosk":
        raise CardIdError("wrong_terminal", 403)  # a kiosk session only on a kiosk terminal
    seconds = current_app.config["CARD_CHALLENGE_SECONDS"]
    ch = CardChallenge(
        id="c_" + secrets.token_urlsafe(18),
        nonce=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("="),
        purpose=purpose,
        code=_new_code() if purpose == "login" else None,
        session_binding=session_binding,
        terminal_code=terminal.code if terminal else None,
        origin=origin,
        expires_at=utcnow() + timedelta(seconds=seconds),
    )
    db.session.add(ch)
    db.session.flush()
    return ch


def pending_by_code(code: str) -> CardChallenge:
    clean = code.strip().upper().replace(" ", "")
    if len(clean) == 8:
        clean = f"{clean[:4]}-{clean[4:]}"
    ch = db.session.scalar(select(CardChallenge).where(CardChallenge.code == clean))
    if ch is None:
        raise CardIdError("challenge_unknown", 404)
    _check_open(ch)
    return ch


def _check_open(ch: CardChallenge) -> None:
    if ch.status != "pending":
        raise CardIdError("challenge_used", 409)
    if ch.expires_at <= utcnow():
        raise CardIdError("challenge_expired", 410)


def _take(challenge_id: str, *, terminal: Terminal | None, code: str | None, purposes: tuple[str, ...]):
    """Lock the challenge row and check it may be answered by this caller, now."""
    ch = db.session.scalar(select(CardChallenge).where(CardChallenge.id == challenge_id).with_for_update())
    if ch is None or ch.purpose not in purposes:
        raise CardIdError("challenge_unknown", 404)
    _check_open(ch)
    if ch.terminal_code is not None:
        if terminal is None:
            raise CardIdError("terminal_required", 403)
        if terminal.code != ch.terminal_code:
            raise CardIdError("wrong_terminal", 403)
    elif terminal is None and (not code or code.strip().upper() != (ch.code or "")):
        raise CardIdError("code_mismatch", 403)
    return ch


def _fail(ch: CardChallenge, code: str) -> None:
    """A refused answer uses the challenge up: a new attempt needs a new challenge."""
    ch.status, ch.error_code, ch.completed_at = "failed", code, utcnow()
    db.session.commit()


def _credential_for(verified: VerifiedCertificate) -> CardCredential:
    cred = db.session.scalar(
        select(CardCredential).where(
            CardCredential.issuer == verified.issuer, CardCredential.serial == str(verified.serial)
        )
    )
    if cred is None or cred.fingerprint_sha256 != verified.fingerprint_sha256 or cred.status != "active":
        raise CardIdError("card_not_linked", 403)
    return cred


def answer(
    challenge_id: str,
    certificate: bytes,
    signature: bytes,
    *,
    terminal: Terminal | None = None,
    code: str | None = None,
) -> CardChallenge:
    """Verify a card's answer and complete the challenge for the session that asked."""
    ch = _take(
        challenge_id,
        terminal=terminal,
        code=code,
        purposes=tuple(ANSWERED),
    )
    return _complete(ch, certificate, signature)


def answer_bound(
    challenge_id: str, certificate: bytes, signature: bytes, *, purpose: str, session_binding: str
) -> CardChallenge:
    """A card answer posted by the party that asked (a points partner's server for its terminal):
    the challenge must be theirs, of this purpose, pending; done at once (consumed)."""
    ch = db.session.scalar(select(CardChallenge).where(CardChallenge.id == challenge_id).with_for_update())
    if ch is None or ch.purpose != purpose or ch.session_binding != session_binding:
        raise CardIdError("challenge_unknown", 404)
    _check_open(ch)
    ch = _complete(ch, certificate, signature)
    ch.consumed_at = utcnow()
    return ch


def _complete(ch: CardChallenge, certificate: bytes, signature: bytes) -> CardChallenge:
    try:
        verified = _verify(certificate, signature, challenge_message(ch), "auth")
        cred = _credential_for(verified)
        if cred.resident.status != "active":
            raise CardIdError("resident_not_active", 403)
    except CardIdError as exc:
        current_app.logger.info("card answer refused: %s (challenge %s)", exc.code, ch.purpose)
        _fail(ch, exc.code)
        raise
    ch.status, ch.completed_at = "done", utcnow()
    ch.resident_id, ch.credential_id = cred.resident_id, cred.id
    cred.last_used_at = utcnow()
    current_app.logger.info("card answer accepted (%s) credential=%s", ch.purpose, cred.id)
    return ch


def add_terminal_purpose(purpose: str) -> None:
    """A feature's purpose (e.g. ``library_link``): a staff page asks for a challenge bound to the
    terminal on its desk, and the linked card answers it through answer()."""
    if purpose not in PURPOSES:
        PURPOSES.append(purpose)
    TERMINAL_BOUND.add(purpose)
    ANSWERED.add(purpose)


def consume_for_session(challenge_id: str, session_binding: str) -> CardChallenge:
    """The browser session that asked collects its completed challenge exactly once."""
    ch = db.session.scalar(select(CardChallenge).where(CardChallenge.id == challenge_id).with_for_update())
    if ch is None or not session_binding or ch.session_binding != session_binding:
        raise CardIdError("challenge_unknown", 404)
    return ch


# --- linking (identity proofing) ------------------------------------------------------------------


def _same_name(card_name: str, resident: Resident) -> bool:
    return normalise(card_name) == normalise(resident.family_name + resident.given_name)


def _address_agrees(card_address: str, resident: Resident) -> bool:
    """The card holds the full address (prefecture first); the register line is the city part."""
    register = normalise(resident.address.line_ja(current_app.config["CITY_NAME_JA"]))
    return normalise(card_address).endswith(register) or register.endswith(normalise(card_address))


def basic4_agrees(basic4: Basic4, resident: Resident) -> bool:
    return (
        _same_name(basic4.name, resident)
        and basic4.birth_date == resident.birth_date.strftime("%Y%m%d")
        and str(basic4.sex) == str(resident.sex)
        and _address_agrees(basic4.address, resident)
    )


def match_basic4(basic4: Basic4) -> list[Resident]:
    """Active residents whose register basic 4 info agrees with the given one (names normalised)."""
    try:
        from datetime import date

        birth = date(int(basic4.birth_date[:4]), int(basic4.birth_date[4:6]), int(basic4.birth_date[6:8]))
    except ValueError:
        return []
    candidates = db.session.scalars(
        select(Resident).where(Resident.birth_date == birth, Resident.status == "active")
    )
    return [r for r in candidates if basic4_agrees(basic4, r)]


def _link(
    verified: VerifiedCertificate, resident: Resident, *, via: str, actor: access.Actor
) -> CardCredential:
    existing = db.session.scalar(
        select(CardCredential).where(
            CardCredential.issuer == verified.issuer, CardCredential.serial == str(verified.serial)
        )
    )
    if existing is not None:
        if existing.resident_id != resident.id:
            raise CardIdError("card_linked_elsewhere", 409)
        existing.status, existing.revoked_at, existing.revoked_reason = "active", None, None
        cred = existing
    else:
        cred = CardCredential.from_verified(verified, resident_id=resident.id, linked_by=actor.id, via=via)
        db.session.add(cred)
    # One card at a time: a renewed or replaced card supersedes the resident's earlier ones.
    for old in db.session.scalars(
        select(CardCredential).where(
            CardCredential.resident_id == resident.id, CardCredential.status == "active"
        )
    ):
        if old is not cred:
            old.status = "superseded"
    db.session.flush()
    return cred


def link_with_text_ap(
    challenge_id: str,
    certificate: bytes,
    signature: bytes,
    number: str | IndividualNumber,
    basic4: Basic4,
    *,
    terminal: Terminal,
) -> CardCredential:
    """Counter or kiosk, with the resident's PIN: the text AP's number and basic 4 info identify
    the resident; the auth certificate (whose key signed the challenge) becomes the credential."""
    ch = _take(challenge_id, terminal=terminal, code=None, purposes=("link",))
    try:
        verified = _verify(certificate, signature, challenge_message(ch), "auth")
        try:
            resident_id = vault.find_resident_id(number)
        except vault.InvalidNumber:
            raise CardIdError("number_invalid") from None
        resident = db.session.get(Resident, resident_id) if resident_id else None
        if resident is None:
            raise CardIdError("resident_unknown", 404)
        if resident.status != "active":
            raise CardIdError("resident_not_active", 403)
        if not basic4_agrees(basic4, resident):
            raise CardIdError("basic4_mismatch", 409)
        actor = terminal_actor(terminal)
        cred = _link(verified, resident, via="text_ap", actor=actor)
        access.record(
            actor,
            resident_id=resident.id,
            data_items=["basic4", "individual_number", "card_credential"],
            purpose="card_link: text_ap",
        )
    except CardIdError as exc:
        db.session.rollback()
        ch = db.session.get(CardChallenge, challenge_id)
        _fail(ch, exc.code)
        raise
    ch.status, ch.completed_at, ch.resident_id, ch.credential_id = "done", utcnow(), resident.id, cred.id
    return cred


def link_with_sign_certificate(
    challenge_id: str,
    auth_certificate: bytes,
    auth_signature: bytes,
    sign_certificate: bytes,
    sign_signature: bytes,
    *,
    terminal: Terminal,
) -> CardCredential:
    """The signature certificate's basic 4 info (verified, not revoked) identifies the resident."""
    ch = _take(challenge_id, terminal=terminal, code=None, purposes=("link",))
    message = challenge_message(ch)
    try:
        auth = _verify(auth_certificate, auth_signature, message, "auth")
        sign = _verify(sign_certificate, sign_signature, message, "sign")
        if sign.basic4 is None:
            raise CardIdError("basic4_missing")
        matches = match_basic4(sign.basic4)
        if len(matches) != 1:
            raise CardIdError("resident_unknown" if not matches else "basic4_ambiguous", 404)
        actor = terminal_actor(terminal)
        cred = _link(auth, matches[0], via="sign_cert", actor=actor)
        access.record(
            actor,
            resident_id=matches[0].id,
            data_items=["basic4", "card_credential"],
            purpose="card_link: sign_cert",
        )
    except CardIdError as exc:
        db.session.rollback()
        _fail(db.session.get(CardChallenge, challenge_id), exc.code)
        raise
    ch.status, ch.completed_at, ch.resident_id, ch.credential_id = "done", utcnow(), matches[0].id, cred.id
    return cred


def revoke_credential(credential_id: int, resident_id: int) -> None:
    cred = db.session.get(CardCredential, credential_id)
    if cred is None or cred.resident_id != resident_id:
        raise CardIdError("credential_unknown", 404)
    cred.status, cred.revoked_at, cred.revoked_reason = "revoked", utcnow(), "by resident"


def credentials_of(resident_id: int) -> list[CardCredential]:
    return list(
        db.session.scalars(
            select(CardCredential)
            .where(CardCredential.resident_id == resident_id)
            .order_by(CardCredential.linked_at.desc())
        )
    )


# --- terminals ------------------------------------------------------------------------------------


def terminal_actor(terminal: Terminal) -> access.Actor:
    return access.Actor(
        kind="terminal",
        id=terminal.code,
        role=terminal.kind,
        organisation=terminal.organisation,
        terminal_id=terminal.code,
    )


def authenticate_terminal(headers, method: str, path_qs: str, body: bytes) -> Terminal | None:
    """The terminal that signed this request, or None when the request is not terminal-signed."""
    code = headers.get(termsig.HEADER_ID)
    if not code:
        return None
    terminal = db.session.scalar(select(Terminal).where(Terminal.code == code))
    if terminal is None:
        raise CardIdError("terminal_unknown", 401)
    try:
        termsig.verify_request(
            termsig.load_public_key(terminal.public_key_pem), headers, method, path_qs, body
        )
    except termsig.TerminalSignatureError as exc:
        raise CardIdError(exc.code, 401) from None
    if not terminal.active:
        raise CardIdError("terminal_disabled", 403)
    terminal.last_seen_at = utcnow()
    return terminal


def add_terminal(code: str, kind: str, name: str, organisation: str, public_key_pem: str) -> Terminal:
    if kind not in TERMINAL_KINDS:
        raise CardIdError("terminal_kind")
    termsig.load_public_key(public_key_pem)  # refuse anything but an Ed25519 public key
    if db.session.scalar(select(Terminal.id).where(Terminal.code == code)):
        raise CardIdError("terminal_exists", 409)
    terminal = Terminal(
        code=code, kind=kind, name=name, organisation=organisation, public_key_pem=public_key_pem
    )
    db.session.add(terminal)
    db.session.flush()
    return terminal


def rotate_terminal_key(terminal: Terminal, public_key_pem: str) -> None:
    termsig.load_public_key(public_key_pem)
    terminal.public_key_pem = public_key_pem
    terminal.rotated_at = utcnow()


def external_identity(issuer: str, subject: str) -> ExternalIdentity | None:
    return db.session.scalar(
        select(ExternalIdentity).where(ExternalIdentity.issuer == issuer, ExternalIdentity.subject == subject)
    )


def terminal_by_code(code: str) -> Terminal:
    terminal = db.session.scalar(select(Terminal).where(Terminal.code == code))
    if terminal is None or not terminal.active:
        raise CardIdError("terminal_unknown", 404)
    return terminal


def account_for_resident(resident_id: int | None):
    from portal.accounts.models import ResidentAccount

    if resident_id is None:
        return None
    return db.session.scalar(
        select(ResidentAccount).where(ResidentAccount.resident_id == resident_id, ResidentAccount.active)
    )
