"""The card through OpenSC's PKCS#11 module (``opensc-pkcs11.so``) with python-pkcs11.

OpenSC's ``jpki`` driver shows one slot per PIN: "JPKI (User Authentication PIN)" and
"JPKI (Digital Signature PIN)". The signature key needs a fresh login per signature, so every
signature here opens its own session and logs in. Tries left come only as token flags
(count low / final try / locked) over PKCS#11, so :meth:`Pkcs11Card.pin_tries_left` is a best
estimate; the last-try refusal still holds because "final try" is exact.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pkcs11
from pkcs11 import Attribute, Mechanism, ObjectClass, TokenFlag
from pkcs11 import exceptions as p11

from card.errors import (
    CardError,
    CardRemovedError,
    LastTryRefusedError,
    NoCardError,
    NoReaderError,
    PinBlockedError,
    WrongPinError,
)
from card.jpki import CertKind, digest_info_sha256
from card.pin import PinKind, normalize_pin

DEFAULT_MODULE = "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so"
TOKEN_LABELS = {PinKind.AUTH: "JPKI (User Authentication PIN)", PinKind.SIGN: "JPKI (Digital Signature PIN)"}
CERT_LABELS = {
    CertKind.AUTH: "User Authentication Certificate",
    CertKind.AUTH_CA: "User Authentication Certificate CA",
    CertKind.SIGN: "Digital Signature Certificate",
    CertKind.SIGN_CA: "Digital Signature Certificate CA",
}
KEY_IDS = {PinKind.AUTH: b"\x01", PinKind.SIGN: b"\x02"}


class Pkcs11Card:
    """The same reads and signatures as :class:`card.session.CardSession`, over PKCS#11."""

    def __init__(self, module: str | None = None, reader: str | None = None) -> None:
        path = module or os.environ.get("CARD_PKCS11_MODULE", DEFAULT_MODULE)
        if not os.path.exists(path):
            raise NoReaderError("PKCS#11 module not found")
        self._lib = pkcs11.lib(path)
        self.reader = reader
        self._tokens()  # fail early without a card

    def _tokens(self) -> dict[PinKind, pkcs11.Token]:
        try:
            slots = self._lib.get_slots(token_present=True)
        except p11.PKCS11Error as exc:
            raise NoReaderError("no reader through PKCS#11") from exc
        tokens: dict[PinKind, pkcs11.Token] = {}
        for slot in slots:
            if self.reader and not slot.slot_description.strip().startswith(self.reader):
                continue
            try:
                token = slot.get_token()
            except (p11.TokenNotPresent, p11.TokenNotRecognised, p11.DeviceRemoved):
                continue
            for kind, label in TOKEN_LABELS.items():
                if token.label.strip() == label and kind not in tokens:
                    tokens[kind] = token
        if PinKind.AUTH not in tokens:
            raise NoCardError("no Individual Number Card visible through PKCS#11")
        return tokens

    def _token(self, kind: PinKind) -> pkcs11.Token:
        tokens = self._tokens()
        if kind not in tokens:
            raise NoCardError(f"no {kind.value} token")
        return tokens[kind]

    @contextmanager
    def _session(self, kind: PinKind, pin: str | None, allow_last_try: bool) -> Iterator[pkcs11.Session]:
        token = self._token(kind)
        encoded = normalize_pin(kind, pin).decode() if pin is not None else None
        if encoded is not None:
            flags = token.flags
            if flags & TokenFlag.USER_PIN_LOCKED:
                raise PinBlockedError("PIN blocked: the city counter can reset it")
            if flags & TokenFlag.USER_PIN_FINAL_TRY and not allow_last_try:
                raise LastTryRefusedError()
        try:
            with token.open(user_pin=encoded) as session:
                yield session
        except p11.PinIncorrect as exc:
            raise WrongPinError(self.pin_tries_left(kind)) from exc
        except p11.PinLocked as exc:
            raise PinBlockedError("PIN blocked: the city counter can reset it") from exc
        except (p11.PinLenRange, p11.PinInvalid) as exc:
            raise CardError("PIN rejected by the module") from exc
        except (p11.DeviceRemoved, p11.TokenNotPresent, p11.SessionHandleInvalid) as exc:
            raise CardRemovedError("card removed during the operation") from exc
        except p11.PKCS11Error as exc:
            raise CardError(f"PKCS#11 error: {type(exc).__name__}") from exc

    def read_token(self) -> str:
        """PKCS#11 cannot read EF 0006; the token label identifies the JPKI card instead."""
        return self._token(PinKind.AUTH).label.strip()

    def read_certificate(
        self, kind: CertKind, pin: str | None = None, *, allow_last_try: bool = False
    ) -> bytes:
        pin_kind = PinKind.SIGN if kind in (CertKind.SIGN, CertKind.SIGN_CA) else PinKind.AUTH
        if kind is CertKind.SIGN and pin is None:
            raise ValueError("the signature certificate needs the signature PIN")
        with self._session(pin_kind, pin if kind is CertKind.SIGN else None, allow_last_try) as s:
            for obj in s.get_objects(
                {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: CERT_LABELS[kind]}
            ):
                value = obj[Attribute.VALUE]
                assert isinstance(value, bytes)
                return value
        raise CardError("certificate not found")

    def read_auth_certificate(self) -> bytes:
        return self.read_certificate(CertKind.AUTH)

    def read_sign_certificate(self, pin: str, *, allow_last_try: bool = False) -> bytes:
        return self.read_certificate(CertKind.SIGN, pin, allow_last_try=allow_last_try)

    def pin_tries_left(self, kind: PinKind) -> int:
        """Best estimate from token flags: locked 0, final try 1, count low max−1, else max."""
        if kind is PinKind.TEXT:
            raise CardError("the text-input PIN is not reachable through PKCS#11")
        flags = self._token(kind).flags
        if flags & TokenFlag.USER_PIN_LOCKED:
            return 0
        if flags & TokenFlag.USER_PIN_FINAL_TRY:
            return 1
        if flags & TokenFlag.USER_PIN_COUNT_LOW:
            return kind.spec.max_tries - 1
        return kind.spec.max_tries

    def _sign(self, kind: PinKind, message: bytes, pin: str, allow_last_try: bool, prehashed: bool) -> bytes:
        digest = message if prehashed else hashlib.sha256(message).digest()
        with self._session(kind, pin, allow_last_try) as session:
            key = session.get_key(ObjectClass.PRIVATE_KEY, id=KEY_IDS[kind])
            if not isinstance(key, pkcs11.SignMixin):
                raise CardError("signing key not found")
            # RSA_PKCS over our own DigestInfo: the card pads, exactly as COMPUTE SIGNATURE does
            signature = key.sign(digest_info_sha256(digest=digest), mechanism=Mechanism.RSA_PKCS)
        return bytes(signature)

    def sign_auth(
        self, message: bytes, pin: str, *, allow_last_try: bool = False, prehashed: bool = False
    ) -> bytes:
        return self._sign(PinKind.AUTH, message, pin, allow_last_try, prehashed)

    def sign_sign(
        self, message: bytes, pin: str, *, allow_last_try: bool = False, prehashed: bool = False
    ) -> bytes:
        """Signature key: a login per signature (a fresh session each time)."""
        return self._sign(PinKind.SIGN, message, pin, allow_last_try, prehashed)

    def close(self) -> None:
        """Sessions are closed after each operation; the module stays loaded for the process."""

    def __enter__(self) -> Pkcs11Card:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
