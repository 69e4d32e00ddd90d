"""The reader the agent owns: a backend (PC/SC through pcscd, or the in-memory virtual card) and a
watcher thread that turns what it sees into events.

The watcher polls instead of using :class:`card.pcsc.ReaderMonitor` because the page also needs to
know when the reader itself is unplugged or pcscd goes away (``reader-lost`` / ``reader-found``), which
that monitor does not report. It never blocks on card operations (those hold their own lock), so a
removal is reported while a signature is in progress.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from card.errors import CardError, NoCardError, NoReaderError
from card.session import CardSession
from card.transport import SimTransport

log = logging.getLogger("kiosk.agent.reader")

SIM_READER = "Virtual card (sim)"


class Backend(Protocol):
    """Where the card is: ``poll()`` says which readers exist and which hold a card."""

    description: str

    def poll(self) -> dict[str, bool]: ...
    def open(self, reader: str | None) -> CardSession: ...
    def close(self) -> None: ...


class PcscBackend:
    """Readers through pcscd (pyscard's ``scard`` layer), optionally only the one named."""

    def __init__(self, reader: str | None = None) -> None:
        from card import pcsc

        self._scard: Any = pcsc.scard
        self.reader = reader
        self.description = f"PC/SC reader {reader!r}" if reader else "PC/SC (any reader)"
        self._hcontext: int | None = None

    def _context(self) -> int | None:
        if self._hcontext is None:
            hresult, hcontext = self._scard.SCardEstablishContext(self._scard.SCARD_SCOPE_USER)
            if hresult != self._scard.SCARD_S_SUCCESS:
                return None
            self._hcontext = int(hcontext)
        return self._hcontext

    def _drop_context(self) -> None:
        if self._hcontext is not None:
            self._scard.SCardReleaseContext(self._hcontext)
            self._hcontext = None

    def poll(self) -> dict[str, bool]:
        s = self._scard
        hcontext = self._context()
        if hcontext is None:  # pcscd is not running
            return {}
        hresult, readers = s.SCardListReaders(hcontext, [])
        if hresult == s.SCARD_E_NO_READERS_AVAILABLE:
            return {}
        if hresult != s.SCARD_S_SUCCESS:
            self._drop_context()  # pcscd restarted: a new context next time
            return {}
        if self.reader is not None:
            readers = [r for r in readers if r == self.reader]
        if not readers:
            return {}
        hresult, states = s.SCardGetStatusChange(hcontext, 0, [(r, s.SCARD_STATE_UNAWARE) for r in readers])
        if hresult != s.SCARD_S_SUCCESS:
            self._drop_context()
            return {}
        return {reader: bool(state & s.SCARD_STATE_PRESENT) for reader, state, _atr in states}

    def open(self, reader: str | None) -> CardSession:
        from card.pcsc import PcscTransport

        return CardSession(PcscTransport(reader or self.reader))

    def close(self) -> None:
        self._drop_context()


class SimBackend:
    """The in-memory virtual card of a profile directory; :meth:`remove` / :meth:`insert` move it."""

    def __init__(self, profile: str | Path) -> None:
        from card.sim import VirtualCard

        # a card keeps its PIN counters, as ``open_card("sim")`` does
        self.card = VirtualCard.from_profile(profile, persist=True)
        self.description = f"virtual card {profile}"

    def poll(self) -> dict[str, bool]:
        return {SIM_READER: self.card.present}

    def open(self, reader: str | None) -> CardSession:
        if not self.card.present:
            raise NoCardError("no card in the reader")
        return CardSession(SimTransport(self.card))

    def remove(self) -> None:
        self.card.remove()

    def insert(self) -> None:
        self.card.insert()

    def close(self) -> None:
        pass


class ReaderWatcher:
    """Polls the backend in a thread; ``on_event(kind, data)`` for ``reader-found``, ``reader-lost``,
    ``card-inserted``, ``card-removed``. Stops within one poll interval of :meth:`stop`."""

    def __init__(
        self,
        backend: Backend,
        on_event: Callable[[str, dict[str, Any]], None],
        poll_ms: int = 200,
    ) -> None:
        self.backend = backend
        self.on_event = on_event
        self.poll_ms = poll_ms
        self._lock = threading.Lock()
        self._seen: dict[str, bool] = {}
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kiosk-agent-reader", daemon=True)

    # -- state -------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, bool]:
        self._ready.wait(2)
        with self._lock:
            return dict(self._seen)

    def card_reader(self) -> str | None:
        """The reader holding a card (the first one, in pcscd's order), if any."""
        return next((r for r, card in self.snapshot().items() if card), None)

    # -- thread ------------------------------------------------------------------------------
    def start(self) -> ReaderWatcher:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.backend.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def poll_once(self) -> None:
        try:
            now = self.backend.poll()
        except (CardError, OSError) as exc:  # NoReaderError and the like: nothing to see
            log.debug("reader poll failed: %s", exc)
            now = {}
        with self._lock:
            before, self._seen = self._seen, now
        for reader in before.keys() - now.keys():
            if before[reader]:
                self._emit("card-removed", reader)
            self._emit("reader-lost", reader)
        for reader, card in now.items():
            if reader not in before:
                self._emit("reader-found", reader)
            if card != before.get(reader, False):
                self._emit("card-inserted" if card else "card-removed", reader)
        self._ready.set()

    def _emit(self, kind: str, reader: str) -> None:
        log.info("%s: %s", kind, reader)
        try:
            self.on_event(kind, {"reader": reader})
        except Exception:  # a listener's failure must not stop the watcher
            log.exception("event listener failed")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.poll_ms / 1000)


def backend_for(reader: str | None = None, sim: str | Path | None = None) -> Backend:
    if sim is not None:
        return SimBackend(sim)
    try:
        return PcscBackend(reader)
    except ImportError as exc:  # pyscard missing on this terminal
        raise NoReaderError(f"PC/SC is not available: {exc}") from None
