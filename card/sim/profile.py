"""Test card profiles: ``make_profile`` writes a card's keys, certificates and data into a directory.

Layout (TEST DATA ONLY — it holds PINs and a fake Individual Number in the clear)::

    DIR/profile.json          name, kana, address, birth, sex, PINs, number, serials, city records
    DIR/{auth,sign}_key.pem   the card's private keys
    DIR/{auth,sign}_cert.der  the card's certificates
    PKI/{auth,sign}_root.pem  trust anchors for the server; PKI/{auth,sign}_crl.der CRLs
    PKI/city_key.hex          the city's issuer key for the city application (AES-128)

``PKI`` defaults to ``DIR/pki``; pass ``pki_dir`` to let many cards share one test root.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from card.ids import my_number_check_digit
from card.models import Basic4
from card.pin import PinKind, normalize_pin
from card.sim.pki import TestPki, new_key

DEFAULT_CITY_AID = "F000000392434954590001"


def fake_my_number() -> str:
    """A random 12-digit number with a valid check digit (test data, starts with 99 to stand out)."""
    first = "99" + "".join(secrets.choice("0123456789") for _ in range(9))
    return first + str(my_number_check_digit(first))


@dataclass(frozen=True)
class Profile:
    directory: Path
    pki_dir: Path
    basic4: Basic4
    kana: str
    my_number: str
    auth_pin: str
    sign_pin: str
    text_pin: str
    auth_serial: int
    sign_serial: int
    city_aid: str
    city_records: dict[int, str]
    atr: str

    @classmethod
    def load(cls, directory: str | Path) -> Profile:
        d = Path(directory)
        raw = json.loads((d / "profile.json").read_text())
        return cls(
            directory=d,
            pki_dir=Path(raw["pki_dir"]),
            basic4=Basic4(**raw["basic4"]),
            kana=raw["kana"],
            my_number=raw["my_number"],
            auth_pin=raw["auth_pin"],
            sign_pin=raw["sign_pin"],
            text_pin=raw["text_pin"],
            auth_serial=raw["auth_serial"],
            sign_serial=raw["sign_serial"],
            city_aid=raw["city_aid"],
            city_records={int(k): v for k, v in raw["city_records"].items()},
            atr=raw["atr"],
        )

    @property
    def pki(self) -> TestPki:
        return TestPki.open(self.pki_dir)

    def certificate(self, kind: str) -> bytes:
        return (self.directory / f"{kind}_cert.der").read_bytes()

    def __repr__(self) -> str:  # never print PINs or the number
        return f"Profile({self.directory}, serial={self.auth_serial})"


def make_profile(
    directory: str | Path,
    name: str = "試験 太郎",
    kana: str = "シケン タロウ",
    address: str = "東京都千代田区霞が関二丁目1番2号",
    birth: str = "19800401",
    sex: str = "1",
    auth_pin: str = "1234",
    sign_pin: str = "ABC123",
    text_pin: str | None = None,
    *,
    my_number: str | None = None,
    pki_dir: str | Path | None = None,
    not_before: dt.datetime | None = None,
    valid_days: int = 365 * 5,
    atr: str = "3BE000FF8131FE4514",
    city_aid: str = DEFAULT_CITY_AID,
    city_records: dict[int, str] | None = None,
) -> Profile:
    """Make a test card in ``directory`` (created). Returns the :class:`Profile`.

    Fast: the roots are generated once per PKI directory; each card costs two RSA-2048 key pairs.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    normalize_pin(PinKind.AUTH, auth_pin)
    normalize_pin(PinKind.SIGN, sign_pin)
    text_pin = text_pin or auth_pin
    normalize_pin(PinKind.TEXT, text_pin)
    number = my_number or fake_my_number()
    if len(number) != 12 or my_number_check_digit(number[:11]) != int(number[11]):
        raise ValueError("my_number must be 12 digits with a valid check digit")
    if len(birth) != 8 or not birth.isdigit() or sex not in ("0", "1", "2", "9"):
        raise ValueError("birth is YYYYMMDD and sex an ISO 5218 code")
    pki = TestPki.open(pki_dir or d / "pki")
    basic4 = Basic4(name=name, address=address, birth_date=birth, sex=sex)
    serials = {}
    for kind in ("auth", "sign"):
        key = new_key()
        cert = pki.issue(
            kind,
            key.public_key(),
            basic4=basic4 if kind == "sign" else None,
            not_before=not_before,
            days=valid_days,
        )
        serials[kind] = cert.serial_number
        (d / f"{kind}_key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (d / f"{kind}_cert.der").write_bytes(cert.public_bytes(serialization.Encoding.DER))
    (d / "state.json").unlink(missing_ok=True)
    record = {
        "pki_dir": str(pki.directory.resolve()),
        "basic4": basic4.as_dict(),
        "kana": kana,
        "my_number": number,
        "auth_pin": auth_pin,
        "sign_pin": sign_pin.upper(),
        "text_pin": text_pin,
        "auth_serial": serials["auth"],
        "sign_serial": serials["sign"],
        "city_aid": city_aid,
        "city_records": {str(k): v for k, v in (city_records or {}).items()},
        "atr": atr,
    }
    (d / "profile.json").write_text(json.dumps(record, ensure_ascii=False, indent=1))
    return Profile.load(d)


def renew_certificate(directory: str | Path, kind: str = "auth") -> int:
    """Give the card a new key and certificate (更新), e.g. to test re-linking; returns the serial."""
    profile = Profile.load(directory)
    key = new_key()
    cert = profile.pki.issue(kind, key.public_key(), basic4=profile.basic4 if kind == "sign" else None)
    d = profile.directory
    (d / f"{kind}_key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (d / f"{kind}_cert.der").write_bytes(cert.public_bytes(serialization.Encoding.DER))
    raw = json.loads((d / "profile.json").read_text())
    raw[f"{kind}_serial"] = cert.serial_number
    (d / "profile.json").write_text(json.dumps(raw, ensure_ascii=False, indent=1))
    return cert.serial_number


def revoke(directory: str | Path, kind: str = "auth") -> None:
    """Revoke the profile's certificate in its PKI's CRL."""
    profile = Profile.load(directory)
    cert = x509.load_der_x509_certificate(profile.certificate(kind))
    profile.pki.revoke(kind, cert.serial_number)
