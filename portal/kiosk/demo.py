"""The demo kiosk (development only): a registered kiosk terminal with its key in the instance
folder, and the demo resident's virtual card linked, so ``make run`` prints how to start the agent
with that card and open the kiosk page."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from card import termsig
from portal.accounts.models import ResidentAccount
from portal.cardid import service as cardid
from portal.cardid.models import CardCredential
from portal.extensions import db

TERMINAL = "kiosk-demo-01"
DEMO_RESIDENT_EMAIL = "resident1@demo.city.example.jp"


@dataclass
class DemoKiosk:
    terminal: str
    key_file: Path
    card_dir: Path | None


def _key(path: Path) -> Ed25519PrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, Ed25519PrivateKey)
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return key


def setup(instance_path: str) -> DemoKiosk:
    """Register the demo kiosk (once; its key is kept) and link the demo resident's virtual card."""
    key_file = Path(instance_path) / "kiosk" / f"{TERMINAL}.pem"
    key = _key(key_file)
    public = termsig.public_pem(key)
    terminal = db.session.scalar(select(cardid.Terminal).where(cardid.Terminal.code == TERMINAL))
    if terminal is None:
        cardid.add_terminal(TERMINAL, "kiosk", "キオスク（デモ）", "中央区役所 市民課", public)
    elif terminal.public_key_pem.strip() != public.strip():
        cardid.rotate_terminal_key(terminal, public)
    account = db.session.scalar(select(ResidentAccount).where(ResidentAccount.email == DEMO_RESIDENT_EMAIL))
    card_dir = None
    if account is not None and account.resident is not None:
        candidate = Path(instance_path) / "cards" / account.resident.atena_no
        if (candidate / "auth_cert.der").exists():
            card_dir = candidate
            verified = cardid.verify_certificate_only((candidate / "auth_cert.der").read_bytes())
            linked = db.session.scalar(
                select(CardCredential).where(CardCredential.fingerprint_sha256 == verified.fingerprint_sha256)
            )
            if linked is None:
                db.session.add(
                    CardCredential.from_verified(
                        verified, resident_id=account.resident.id, linked_by="demo", via="text_ap"
                    )
                )
    db.session.commit()
    return DemoKiosk(TERMINAL, key_file, card_dir)
