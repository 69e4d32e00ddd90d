"""The city application in the card's free space (IC空き領域): service numbers kept on the card.

Records are readable without a PIN; writing (at a city counter) needs mutual authentication with the
city's issuer key (:mod:`card.citycrypto`). Services must work without it too: they key on the auth
certificate (issuer + serial), as the national MyKey platform does — this is a convenience, not the
identity.
"""

from __future__ import annotations

import enum
import hmac
import os
import secrets

from card.apdu import Command
from card.citycrypto import (
    CHALLENGE_LEN,
    IssuerKey,
    card_cryptogram,
    host_cryptogram,
    session_key,
    write_mac,
)
from card.errors import AuthenticationFailedError, CardError, MalformedResponseError, raise_for_sw
from card.iso import select_aid
from card.transport import Transport

DEFAULT_AID = bytes.fromhex(os.environ.get("CARD_CITY_AID", "F000000392434954590001"))
MAX_RECORD_LEN = 64


class CityRecord(enum.IntEnum):
    """Record numbers of the city application."""

    LIBRARY_PATRON = 1  # 図書館利用者番号
    POINTS_MEMBER = 2  # ポイント会員番号


class CityApp:
    """Client for the city application under a configurable AID."""

    def __init__(self, transport: Transport, aid: bytes = DEFAULT_AID) -> None:
        self.transport = transport
        self.aid = aid
        self._ks: bytes | None = None
        self._seq = 0

    def select(self) -> bool:
        """Select the application; ``False`` if this card has none (services fall back to the cert)."""
        self._ks = None
        try:
            select_aid(self.transport, self.aid)
        except CardError as exc:
            if exc.sw == 0x6A82:
                return False
            raise
        return True

    def read(self, record: int) -> str | None:
        """A record's value, or ``None`` if it is empty."""
        r = self.transport.transceive(Command(0x00, 0xB2, record, 0x04, le=256))
        if r.sw == 0x6A83:
            return None
        raise_for_sw(r.sw, "read record")
        try:
            return r.data.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedResponseError("record is not UTF-8") from None

    def read_all(self) -> dict[int, str]:
        values = {}
        for record in CityRecord:
            value = self.read(record)
            if value is not None:
                values[int(record)] = value
        return values

    def authenticate(self, key: IssuerKey) -> None:
        """Mutual authentication: the card proves it knows the key, and so do we."""
        r = self.transport.transceive(Command(0x00, 0x84, 0x00, 0x00, le=CHALLENGE_LEN))
        raise_for_sw(r.sw, "get challenge")
        if len(r.data) != CHALLENGE_LEN:
            raise MalformedResponseError("challenge has a wrong length")
        rnd_card, rnd_host = r.data, secrets.token_bytes(CHALLENGE_LEN)
        data = rnd_host + host_cryptogram(key, rnd_card, rnd_host)
        r = self.transport.transceive(Command(0x00, 0x82, 0x00, 0x00, data, le=16))
        if r.sw in (0x6300, 0x6982):
            raise AuthenticationFailedError("the card refused the city key", sw=r.sw)
        raise_for_sw(r.sw, "mutual authenticate")
        if not hmac.compare_digest(r.data, card_cryptogram(key, rnd_card, rnd_host)):
            raise AuthenticationFailedError("the card did not prove the city key")
        self._ks = session_key(key, rnd_card, rnd_host)
        self._seq = 0

    def write(self, record: int, value: str) -> None:
        """Write a record (after :meth:`authenticate`); each write is MACed with the session key."""
        if self._ks is None:
            raise AuthenticationFailedError("authenticate before writing")
        raw = value.encode("utf-8")
        if len(raw) > MAX_RECORD_LEN:
            raise ValueError(f"a record holds at most {MAX_RECORD_LEN} bytes")
        mac = write_mac(self._ks, self._seq, record, raw)
        r = self.transport.transceive(Command(0x00, 0xDC, record, 0x04, raw + mac))
        if r.sw in (0x6988, 0x6982):  # bad MAC / no authenticated session on the card
            self._ks = None
            raise AuthenticationFailedError("the card refused the write", sw=r.sw)
        raise_for_sw(r.sw, "update record")
        self._seq += 1
