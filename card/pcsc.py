"""PC/SC backend over pyscard's thin ``smartcard.scard`` layer (pcscd on Linux).

Reader events come from :class:`ReaderMonitor`, a thread that polls ``SCardGetStatusChange`` with a
short timeout and stops cleanly — run it in the kiosk agent, never inside a web server.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Self

from card.errors import CardError, CardRemovedError, NoCardError, NoReaderError
from card.transport import Transport

# pyscard ships no type information
scard: Any = importlib.import_module("smartcard.scard")

SCARD_PRESENT = getattr(scard, "SCARD_PRESENT", 0x0004)  # SCardStatus state bit (pcsclite)

_NO_SERVICE = {scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED}
_NO_READER = {
    scard.SCARD_E_NO_READERS_AVAILABLE,
    scard.SCARD_E_UNKNOWN_READER,
    scard.SCARD_E_READER_UNAVAILABLE,
}
_REMOVED = {
    scard.SCARD_W_REMOVED_CARD,
    scard.SCARD_W_RESET_CARD,
    scard.SCARD_E_NO_SMARTCARD,
    scard.SCARD_W_UNPOWERED_CARD,
    scard.SCARD_W_UNRESPONSIVE_CARD,
}


def _check(hresult: int, what: str) -> None:
    if hresult == scard.SCARD_S_SUCCESS:
        return
    text = scard.SCardGetErrorMessage(hresult)
    if hresult in _NO_SERVICE:
        raise NoReaderError(f"{what}: PC/SC service (pcscd) not running")
    if hresult in _NO_READER:
        raise NoReaderError(f"{what}: {text}")
    raise CardError(f"{what}: {text}")


def _context() -> int:
    hresult, hcontext = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    _check(hresult, "establish context")
    return int(hcontext)


def list_readers() -> list[str]:
    """Names of the PC/SC readers; raises :class:`NoReaderError` if pcscd is absent."""
    hcontext = _context()
    try:
        hresult, readers = scard.SCardListReaders(hcontext, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        _check(hresult, "list readers")
        return list(readers)
    finally:
        scard.SCardReleaseContext(hcontext)


def card_present(reader: str) -> bool:
    hcontext = _context()
    try:
        hresult, states = scard.SCardGetStatusChange(hcontext, 0, [(reader, scard.SCARD_STATE_UNAWARE)])
        _check(hresult, "reader status")
        return bool(states[0][1] & scard.SCARD_STATE_PRESENT)
    finally:
        scard.SCardReleaseContext(hcontext)


class PcscTransport(Transport):
    """A shared connection to the card in one reader."""

    def __init__(self, reader: str | None = None) -> None:
        super().__init__()
        readers = list_readers()
        if not readers:
            raise NoReaderError("no smart-card reader connected")
        if reader is not None and reader not in readers:
            raise NoReaderError("reader not found")
        self._hcontext = _context()
        candidates = [reader] if reader else readers
        last: CardError = NoCardError("no card in the reader")
        for name in candidates:
            hresult, hcard, protocol = scard.SCardConnect(
                self._hcontext,
                name,
                scard.SCARD_SHARE_SHARED,
                scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
            )
            if hresult == scard.SCARD_S_SUCCESS:
                self.reader, self._hcard, self._protocol = name, hcard, protocol
                break
            if hresult not in (scard.SCARD_E_NO_SMARTCARD, scard.SCARD_W_REMOVED_CARD):
                try:
                    _check(hresult, "connect")
                except CardError as exc:
                    last = exc
        else:
            scard.SCardReleaseContext(self._hcontext)
            raise last
        self._closed = False
        self._depth = 0

    def _transmit(self, raw: bytes) -> bytes:
        hresult, response = scard.SCardTransmit(self._hcard, self._protocol, list(raw))
        if hresult != scard.SCARD_S_SUCCESS:
            if hresult in _REMOVED:
                raise CardRemovedError("card removed during the operation")
            _check(hresult, "transmit")
        if len(response) < 2 and not self._still_present():
            # vpcd (and some readers) answer nothing when the card vanishes mid-command
            raise CardRemovedError("card removed during the operation")
        return bytes(response)

    def _still_present(self, settle: float = 1.5) -> bool:
        """After an empty answer: give pcscd time to notice a removal (it polls the reader)."""
        deadline = time.monotonic() + settle
        while True:
            hresult, _reader, state, _protocol, _atr = scard.SCardStatus(self._hcard)
            if hresult != scard.SCARD_S_SUCCESS or not state & SCARD_PRESENT:
                return False
            if time.monotonic() >= deadline:
                return True
            time.sleep(0.05)

    @property
    def atr(self) -> bytes:
        hresult, _reader, _state, _protocol, atr = scard.SCardStatus(self._hcard)
        if hresult in _REMOVED:
            raise CardRemovedError("card removed")
        _check(hresult, "status")
        return bytes(atr)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Exclusive access; re-entrant, so a kiosk can hold the card for a whole interaction."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        hresult = scard.SCardBeginTransaction(self._hcard)
        if hresult in _REMOVED:
            raise CardRemovedError("card removed")
        _check(hresult, "begin transaction")
        self._depth = 1
        try:
            yield
        finally:
            self._depth = 0
            scard.SCardEndTransaction(self._hcard, scard.SCARD_LEAVE_CARD)

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        scard.SCardDisconnect(self._hcard, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(self._hcontext)


@dataclass(frozen=True, slots=True)
class ReaderEvent:
    reader: str
    kind: str  # "inserted" | "removed"
    atr: bytes


class ReaderMonitor:
    """Calls ``callback(ReaderEvent)`` on card insertion and removal, in a thread, until :meth:`stop`."""

    def __init__(self, callback: Callable[[ReaderEvent], None], poll_ms: int = 250) -> None:
        self.callback = callback
        self.poll_ms = poll_ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="card-reader-monitor", daemon=True)
        self.error: CardError | None = None

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            hcontext = _context()
        except CardError as exc:
            self.error = exc
            return
        present: dict[str, bool] = {}
        try:
            while not self._stop.is_set():
                hresult, readers = scard.SCardListReaders(hcontext, [])
                if hresult != scard.SCARD_S_SUCCESS:
                    readers = []
                if not readers:
                    self._stop.wait(self.poll_ms / 1000)
                    continue
                states = [(r, scard.SCARD_STATE_UNAWARE) for r in readers]
                hresult, new = scard.SCardGetStatusChange(hcontext, 0, states)
                if hresult == scard.SCARD_S_SUCCESS:
                    for reader, state, atr in new:
                        now = bool(state & scard.SCARD_STATE_PRESENT)
                        if present.get(reader, False) != now:
                            present[reader] = now
                            kind = "inserted" if now else "removed"
                            self.callback(ReaderEvent(reader, kind, bytes(atr)))
                self._stop.wait(self.poll_ms / 1000)
        finally:
            scard.SCardReleaseContext(hcontext)
