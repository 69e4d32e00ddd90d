"""What a terminal and the server agree on for a check-in made while the server may be unreachable
(shelter check-in, 避難所チェックイン; docs/shelter-checkin.md).

Two signatures make a queued check-in trustworthy when it reaches the server hours later:

- **The card's**: the user-authentication key (after the resident's 4-digit PIN) signs a card
  challenge of the usual protocol (:func:`card.login.challenge_message`) whose purpose is
  ``shelter_checkin``, whose id is the terminal-made UUID of the check-in and whose nonce names the
  shelter, the terminal and the time: the terminal makes the nonce because it cannot ask the server
  for one. The UUID makes the signature single-use (the server keeps one record per UUID).
- **The terminal's**: the whole entry (card signature, basic 4 info read from the text-input-support
  AP, shelter, time) is signed with the terminal's Ed25519 key when it is made, so nothing in the
  queue can be changed or added later without the key.

Framework-free: the agent (``kiosk.agent.shelter``) and the server (``portal.shelter``) both use it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from card.login import challenge_message

PURPOSE = "shelter_checkin"
ENTRY_PREFIX = b"jp.city.portal/offline-entry/v1\n"
SIGNATURE_FIELD = "entry_signature"


def checkin_nonce(shelter: str, terminal: str, at: int) -> str:
    """The terminal-made nonce: which shelter, which terminal, when (unix seconds)."""
    return f"{shelter}/{terminal}/{int(at)}"


def checkin_message(uuid: str, shelter: str, terminal: str, at: int, origin: str) -> bytes:
    """The exact bytes the card signs for a check-in (a ``shelter_checkin`` card challenge)."""
    return challenge_message(PURPOSE, uuid, checkin_nonce(shelter, terminal, at), origin)


def entry_bytes(entry: dict[str, Any]) -> bytes:
    """Canonical bytes of an entry without its terminal signature (sorted, compact UTF-8 JSON)."""
    body = {k: v for k, v in entry.items() if k != SIGNATURE_FIELD}
    return ENTRY_PREFIX + json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def sign_entry(key: Ed25519PrivateKey, entry: dict[str, Any]) -> dict[str, Any]:
    """The entry with its terminal signature added."""
    signature = base64.b64encode(key.sign(entry_bytes(entry))).decode("ascii")
    return {**entry, SIGNATURE_FIELD: signature}


def entry_signature_valid(key: Ed25519PublicKey, entry: dict[str, Any]) -> bool:
    try:
        signature = base64.b64decode(str(entry.get(SIGNATURE_FIELD, "")), validate=True)
        key.verify(signature, entry_bytes(entry))
    except (InvalidSignature, ValueError):
        return False
    return True
