"""High-level card operations: what a kiosk, a counter or a resident's PC asks of the card.

>>> with open_card("sim", profile="/tmp/card") as card:       # doctest: +SKIP
...     cert = card.read_auth_certificate()
...     sig = card.sign_auth(challenge, pin)

PIN safety (暗証番号): the format is checked before anything is sent, the tries left are read without
using one, and VERIFY is refused when one try is left unless ``allow_last_try=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Self

from card import iso, jpki, textap
from card.errors import (
    CardError,
    CardRemovedError,
    LastTryRefusedError,
    MalformedResponseError,
    NoCardError,
    NoReaderError,
    NotIndividualNumberCardError,
    PinBlockedError,
    raise_for_sw,
)
from card.ids import IndividualNumber
from card.models import Basic4, PinStatus
from card.pin import JPKI_AID, TEXT_AID, PinKind, normalize_pin
from card.transport import PinMaskingTracer, Transport


class CardReader(Protocol):
    """What every backend (PC/SC session, PKCS#11) offers."""

    def read_token(self) -> str: ...
    def read_certificate(
        self, kind: jpki.CertKind, pin: str | None = None, *, allow_last_try: bool = False
    ) -> bytes: ...
    def read_auth_certificate(self) -> bytes: ...
    def read_sign_certificate(self, pin: str, *, allow_last_try: bool = False) -> bytes: ...
    def pin_tries_left(self, kind: PinKind) -> int: ...
    def sign_auth(
        self, message: bytes, pin: str, *, allow_last_try: bool = False, prehashed: bool = False
    ) -> bytes: ...
    def sign_sign(
        self, message: bytes, pin: str, *, allow_last_try: bool = False, prehashed: bool = False
    ) -> bytes: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> None: ...


class CardSession:
    """An Individual Number Card (マイナンバーカード) behind a :class:`Transport`."""

    def __init__(
        self,
        transport: Transport,
        *,
        extended_length: bool = False,
        detect: bool = True,
    ) -> None:
        self.transport = transport
        self.extended_length = extended_length
        self._selected: bytes | None = None
        if detect:
            self.detect()

    # -- selection ---------------------------------------------------------------------------
    def detect(self) -> None:
        """Select the JPKI AID; anything but success means this is not an Individual Number Card."""
        self._selected = None
        try:
            self._select(JPKI_AID)
        except (CardRemovedError, NoCardError, NoReaderError):
            raise
        except CardError as exc:
            raise NotIndividualNumberCardError("not an Individual Number Card") from exc

    def _select(self, aid: bytes) -> None:
        if self._selected != aid:
            self._selected = None
            iso.select_aid(self.transport, aid)
            self._selected = aid

    # -- JPKI reads --------------------------------------------------------------------------
    def read_token(self) -> str:
        """EF 0006: ``JPKIAPICCTOKEN2`` for an Individual Number Card."""
        self._select(JPKI_AID)
        iso.select_ef(self.transport, jpki.EF_TOKEN)
        return jpki.parse_token(iso.read_binary(self.transport, 0, 32))

    def read_certificate(
        self,
        kind: jpki.CertKind,
        pin: str | None = None,
        *,
        allow_last_try: bool = False,
    ) -> bytes:
        """Read a certificate (DER). The signature certificate needs the signature PIN first."""
        with self.transport.transaction():
            self._select(JPKI_AID)
            if kind is not jpki.CertKind.SIGN:
                return iso.read_der_ef(self.transport, kind.ef, extended=self.extended_length)
            if pin is None:
                raise ValueError("the signature certificate needs the signature PIN")
            with PinMaskingTracer.privacy(self.transport):  # it carries the basic 4 info
                self._verify(PinKind.SIGN, pin, allow_last_try)
                return iso.read_der_ef(self.transport, kind.ef, extended=self.extended_length)

    def read_auth_certificate(self) -> bytes:
        return self.read_certificate(jpki.CertKind.AUTH)

    def read_auth_ca_certificate(self) -> bytes:
        return self.read_certificate(jpki.CertKind.AUTH_CA)

    def read_sign_certificate(self, pin: str, *, allow_last_try: bool = False) -> bytes:
        return self.read_certificate(jpki.CertKind.SIGN, pin, allow_last_try=allow_last_try)

    def read_sign_ca_certificate(self) -> bytes:
        return self.read_certificate(jpki.CertKind.SIGN_CA)

    # -- PINs --------------------------------------------------------------------------------
    def pin_tries_left(self, kind: PinKind) -> int:
        """Tries left for ``kind`` without using one (VERIFY with no data → ``63 Cx``)."""
        self._select(kind.spec.aid)
        iso.select_ef(self.transport, kind.spec.ef)
        sw = iso.verify_status(self.transport)
        if sw & 0xFFF0 == 0x63C0:
            return sw & 0x0F
        if sw in (0x6983, 0x6984):
            return 0
        if sw == 0x9000:  # already verified in this session
            return kind.spec.max_tries
        raise_for_sw(sw, "PIN status")
        raise MalformedResponseError("unexpected PIN status")

    def pin_status(self) -> list[PinStatus]:
        return [PinStatus(k.value, self.pin_tries_left(k), k.spec.max_tries) for k in PinKind]

    def verify_pin(self, kind: PinKind, pin: str, *, allow_last_try: bool = False) -> None:
        with self.transport.transaction():
            self._verify(kind, pin, allow_last_try)

    def _verify(self, kind: PinKind, pin: str, allow_last_try: bool) -> None:
        encoded = normalize_pin(kind, pin)  # format first: a malformed PIN never costs a try
        tries = self.pin_tries_left(kind)
        if tries == 0:
            raise PinBlockedError("PIN blocked: the city counter can reset it")
        if tries == 1 and not allow_last_try:
            raise LastTryRefusedError()
        sw = iso.verify(self.transport, encoded)
        raise_for_sw(sw, "verify PIN")

    # -- signatures --------------------------------------------------------------------------
    def _sign(
        self,
        key: str,
        kind: PinKind,
        message: bytes,
        pin: str,
        allow_last_try: bool,
        prehashed: bool,
    ) -> bytes:
        info = jpki.digest_info_sha256(digest=message) if prehashed else jpki.digest_info_sha256(message)
        with self.transport.transaction():
            self._select(JPKI_AID)
            self._verify(kind, pin, allow_last_try)
            iso.select_ef(self.transport, jpki.KEY_EF[key])
            return jpki.compute_signature(self.transport, info)

    def sign_auth(
        self,
        message: bytes,
        pin: str,
        *,
        allow_last_try: bool = False,
        prehashed: bool = False,
    ) -> bytes:
        """Sign with the user-authentication key (利用者証明用, 4-digit PIN); PKCS#1 v1.5 SHA-256."""
        return self._sign("auth", PinKind.AUTH, message, pin, allow_last_try, prehashed)

    def sign_sign(
        self,
        message: bytes,
        pin: str,
        *,
        allow_last_try: bool = False,
        prehashed: bool = False,
    ) -> bytes:
        """Sign with the signature key (署名用, 6–16 alnum PIN, upper-cased)."""
        return self._sign("sign", PinKind.SIGN, message, pin, allow_last_try, prehashed)

    # -- text-input-support AP ---------------------------------------------------------------
    def read_text_ap(
        self,
        pin: str,
        *,
        allow_last_try: bool = False,
    ) -> tuple[IndividualNumber, Basic4]:
        """Individual Number (check digit verified) and basic 4 info, after the text PIN."""
        with self.transport.transaction(), PinMaskingTracer.privacy(self.transport):
            self._select(TEXT_AID)
            self._verify(PinKind.TEXT, pin, allow_last_try)
            iso.select_ef(self.transport, textap.EF_MY_NUMBER)
            number = textap.parse_my_number(iso.read_binary(self.transport, 0, textap.MY_NUMBER_READ))
            return number, self._read_basic4()

    def read_basic4(self, pin: str, *, allow_last_try: bool = False) -> Basic4:
        with self.transport.transaction(), PinMaskingTracer.privacy(self.transport):
            self._select(TEXT_AID)
            self._verify(PinKind.TEXT, pin, allow_last_try)
            return self._read_basic4()

    def _read_basic4(self) -> Basic4:
        iso.select_ef(self.transport, textap.EF_BASIC4)
        header = iso.read_binary(self.transport, 0, 8)
        total = textap.tlv_total_length(header)
        if total > iso.MAX_EF_SIZE:
            raise MalformedResponseError("basic 4 info length implausible")
        raw = header[:total] + (
            iso.read_binary(self.transport, len(header), total - len(header)) if total > len(header) else b""
        )
        return textap.parse_basic4(raw)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_card(
    backend: str = "pcsc",
    *,
    reader: str | None = None,
    profile: str | Path | None = None,
    module: str | None = None,
    extended_length: bool = False,
) -> CardSession | CardReader:
    """Open a card by configuration: ``pcsc`` (pyscard), ``pkcs11`` (OpenSC module) or ``sim``."""
    if backend == "pcsc":
        from card.pcsc import PcscTransport

        return CardSession(PcscTransport(reader), extended_length=extended_length)
    if backend == "sim":
        from card.sim import VirtualCard
        from card.transport import SimTransport

        if profile is None:
            raise ValueError("the sim backend needs a profile directory")
        # a card keeps its PIN counters: persist them in the profile like the real thing
        card = VirtualCard.from_profile(profile, persist=True)
        return CardSession(SimTransport(card), extended_length=extended_length)
    if backend == "pkcs11":
        from card.pkcs11 import Pkcs11Card

        return Pkcs11Card(module=module, reader=reader)
    raise ValueError(f"unknown card backend {backend!r}")
