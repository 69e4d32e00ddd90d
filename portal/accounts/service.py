"""Account logic: passwords (argon2id), e-mail verification and reset tokens, TOTP, activation codes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import pyotp
from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select

from portal import sealed
from portal.accounts.models import ActivationCode, ResidentAccount, StaffUser
from portal.authz import STAFF_ROLES
from portal.extensions import db
from portal.models_base import utcnow


def _hasher() -> PasswordHasher:
    """argon2id with RFC 9106's low-memory profile; tests use the cheapest one for speed."""
    cached = current_app.extensions.get("password_hasher")
    if cached is None:
        profile = getattr(profiles, current_app.config["PASSWORD_HASH_PROFILE"])
        hasher = PasswordHasher.from_parameters(profile)
        # Verified against when the account does not exist, so timing does not reveal who has one.
        cached = (hasher, hasher.hash("dummy-password-for-timing"))
        current_app.extensions["password_hasher"] = cached
    return cached[0]


def _dummy_hash() -> str:
    _hasher()
    return current_app.extensions["password_hasher"][1]


ACTIVATION_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


class AccountError(Exception):
    """A domain error whose ``code`` the views turn into a translated message."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def check_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher().verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_account(email: str) -> ResidentAccount | None:
    return db.session.scalar(select(ResidentAccount).where(ResidentAccount.email == normalise_email(email)))


def register(email: str, password: str, locale: str = "ja") -> ResidentAccount:
    if find_account(email) is not None:
        raise AccountError("email_taken")
    account = ResidentAccount(
        email=normalise_email(email), password_hash=hash_password(password), locale=locale
    )
    db.session.add(account)
    db.session.flush()
    return account


def authenticate_resident(email: str, password: str) -> ResidentAccount | None:
    account = find_account(email)
    ok = check_password(account.password_hash if account else None, password)
    if not ok or account is None or not account.active:
        return None
    if _hasher().check_needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    return account


def authenticate_staff(login_id: str, password: str) -> StaffUser | None:
    user = db.session.scalar(select(StaffUser).where(StaffUser.login_id == login_id.strip()))
    ok = check_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.active:
        return None
    return user


def create_staff(
    login_id: str, display_name: str, organisation: str, roles: list[str], password: str
) -> StaffUser:
    bad = [r for r in roles if r not in STAFF_ROLES]
    if bad or not roles:
        raise AccountError("unknown_role")
    user = StaffUser(
        login_id=login_id,
        display_name=display_name,
        organisation=organisation,
        roles=" ".join(roles),
        password_hash=hash_password(password),
    )
    db.session.add(user)
    db.session.flush()
    return user


# --- signed e-mail tokens -------------------------------------------------------------------


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def make_email_token(account: ResidentAccount) -> str:
    return _serializer("verify-email").dumps({"a": account.id, "e": account.email})


def verify_email_token(token: str) -> ResidentAccount:
    try:
        data = _serializer("verify-email").loads(token, max_age=current_app.config["EMAIL_TOKEN_MAX_AGE"])
    except SignatureExpired:
        raise AccountError("token_expired") from None
    except BadSignature:
        raise AccountError("token_invalid") from None
    account = db.session.get(ResidentAccount, data["a"])
    if account is None or account.email != data["e"]:
        raise AccountError("token_invalid")
    if account.email_verified_at is None:
        account.email_verified_at = utcnow()
    return account


def make_reset_token(account: ResidentAccount) -> str:
    # The password hash's tail binds the token to the current password: it works once.
    return _serializer("reset-password").dumps(
        {"a": account.id, "h": account.password_hash[-16:], "v": account.session_version}
    )


def reset_password(token: str, new_password: str) -> ResidentAccount:
    try:
        data = _serializer("reset-password").loads(token, max_age=current_app.config["RESET_TOKEN_MAX_AGE"])
    except SignatureExpired:
        raise AccountError("token_expired") from None
    except BadSignature:
        raise AccountError("token_invalid") from None
    account = db.session.get(ResidentAccount, data["a"])
    if account is None or account.password_hash[-16:] != data["h"] or account.session_version != data["v"]:
        raise AccountError("token_invalid")
    account.password_hash = hash_password(new_password)
    account.session_version += 1
    return account


def change_password(account: ResidentAccount, current: str, new: str) -> None:
    if not check_password(account.password_hash, current):
        raise AccountError("wrong_password")
    account.password_hash = hash_password(new)
    account.session_version += 1


# --- TOTP -----------------------------------------------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, label: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=label, issuer_name="City Portal")


def _check_totp(secret: str, code: str, last_step: int | None) -> int | None:
    """Return the accepted time step, or None. A step is accepted once (no replay)."""
    totp = pyotp.TOTP(secret)
    code = code.strip().replace(" ", "")
    now = utcnow()
    for drift in (-1, 0, 1):
        at = now + timedelta(seconds=30 * drift)
        step = totp.timecode(at)
        if totp.at(at) == code and (last_step is None or step > last_step):
            return step
    return None


def enable_totp(user: ResidentAccount | StaffUser, secret: str, code: str) -> None:
    step = _check_totp(secret, code, None)
    if step is None:
        raise AccountError("totp_wrong")
    user.totp_secret_enc = sealed.seal("totp", secret.encode())
    user.totp_last_step = step


def disable_totp(user: ResidentAccount | StaffUser) -> None:
    user.totp_secret_enc = None
    user.totp_last_step = None


def verify_totp(user: ResidentAccount | StaffUser, code: str) -> bool:
    if user.totp_secret_enc is None:
        return True
    secret = sealed.unseal("totp", user.totp_secret_enc).decode()
    step = _check_totp(secret, code, user.totp_last_step)
    if step is None:
        return False
    user.totp_last_step = step
    return True


# --- activation codes (登録コード) ------------------------------------------------------------


def _code_hash(code: str) -> str:
    clean = code.strip().upper().replace("-", "").replace(" ", "")
    return hashlib.sha256((current_app.config["SECRET_KEY"] + clean).encode()).hexdigest()


def issue_activation_code(resident_id: int, issued_by: str, days: int = 30) -> str:
    """Returns the code once (to print or hand over); only its hash is stored."""
    raw = "".join(secrets.choice(ACTIVATION_ALPHABET) for _ in range(12))
    db.session.add(
        ActivationCode(
            resident_id=resident_id,
            code_hash=_code_hash(raw),
            issued_by=issued_by,
            expires_at=utcnow() + timedelta(days=days),
        )
    )
    db.session.flush()
    return "-".join(raw[i : i + 4] for i in range(0, 12, 4))


def link_with_activation_code(account: ResidentAccount, code: str, birth_date) -> None:
    """Link the account to the register record the code was issued for; birth date cross-checks."""
    if account.resident_id is not None:
        raise AccountError("already_linked")
    row = db.session.scalar(select(ActivationCode).where(ActivationCode.code_hash == _code_hash(code)))
    if row is None or row.used_at is not None or row.expires_at < utcnow():
        raise AccountError("code_invalid")
    from portal.registry.models import Resident

    resident = db.session.get(Resident, row.resident_id)
    if resident is None or resident.birth_date != birth_date:
        raise AccountError("code_invalid")
    if resident.status != "active":
        raise AccountError("not_active_resident")
    taken = db.session.scalar(
        select(func.count()).select_from(ResidentAccount).where(ResidentAccount.resident_id == resident.id)
    )
    if taken:
        raise AccountError("resident_has_account")
    row.used_at = utcnow()
    account.resident_id = resident.id
