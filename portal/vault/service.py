"""The only code that encrypts, matches and reveals Individual Numbers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import unicodedata
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy import select

from card.ids import IndividualNumber, is_valid_my_number
from portal.access import service as access
from portal.extensions import db
from portal.vault.models import IndividualNumberRecord

# What every page shows instead of the number.
MASK = "●●●●●●●●●●●●"


class InvalidNumber(ValueError):
    """The input is not a valid Individual Number (the message never repeats the input)."""

    def __init__(self) -> None:
        super().__init__("not a valid Individual Number (12 digits with a correct check digit)")


class PurposeRequired(ValueError):
    pass


@dataclass(frozen=True)
class Keys:
    key_id: str
    encryption: bytes
    lookup: bytes


def _keys() -> Keys:
    cached = current_app.extensions.get("vault_keys")
    if cached is None:
        master = base64.b64decode(current_app.config["VAULT_KEY"])
        lookup = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"individual-number-lookup"
        ).derive(master)
        cached = Keys(current_app.config["VAULT_KEY_ID"], master, lookup)
        current_app.extensions["vault_keys"] = cached
    return cached


def clean(number: str | IndividualNumber) -> str:
    """Digits only (spaces and hyphens removed, full-width folded); raises InvalidNumber.
    Accepts the card library's masked wrapper as read from a card."""
    if isinstance(number, IndividualNumber):
        return number.reveal()
    text = unicodedata.normalize("NFKC", number or "").replace("-", "").replace(" ", "")
    if not is_valid_my_number(text):
        raise InvalidNumber()
    return text


def lookup_hash(number: str | IndividualNumber) -> bytes:
    return hmac.new(_keys().lookup, clean(number).encode(), hashlib.sha256).digest()


def _aad(resident_id: int) -> bytes:
    return f"resident:{resident_id}".encode()


def store(resident_id: int, number: str | IndividualNumber) -> IndividualNumberRecord:
    """Store (or replace) a resident's number. Validates the check digit on the way in."""
    digits = clean(number)
    keys = _keys()
    nonce = os.urandom(12)
    ciphertext = nonce + AESGCM(keys.encryption).encrypt(nonce, digits.encode(), _aad(resident_id))
    record = db.session.scalar(
        select(IndividualNumberRecord).where(IndividualNumberRecord.resident_id == resident_id)
    )
    if record is None:
        record = IndividualNumberRecord(resident_id=resident_id)
        db.session.add(record)
    record.lookup_hash = lookup_hash(digits)
    record.ciphertext = ciphertext
    record.key_id = keys.key_id
    return record


def find_resident_id(number: str | IndividualNumber) -> int | None:
    """Match a number (e.g. read from a card) to a resident through the keyed hash only."""
    return db.session.scalar(
        select(IndividualNumberRecord.resident_id).where(
            IndividualNumberRecord.lookup_hash == lookup_hash(number)
        )
    )


def has_number(resident_id: int) -> bool:
    return (
        db.session.scalar(
            select(IndividualNumberRecord.id).where(IndividualNumberRecord.resident_id == resident_id)
        )
        is not None
    )


def reveal(resident_id: int, *, purpose: str, actor: access.Actor) -> str:
    """Decrypt a resident's number for a stated legal purpose; writes an access record first."""
    if not purpose or not purpose.strip():
        raise PurposeRequired("a purpose is required to reveal an Individual Number")
    record = db.session.scalar(
        select(IndividualNumberRecord).where(IndividualNumberRecord.resident_id == resident_id)
    )
    if record is None:
        raise LookupError("no Individual Number on file")
    access.record(actor, resident_id=resident_id, data_items=["individual_number"], purpose=purpose)
    keys = _keys()
    nonce, body = record.ciphertext[:12], record.ciphertext[12:]
    return AESGCM(keys.encryption).decrypt(nonce, body, _aad(resident_id)).decode()
