"""The virtual Individual Number Card: JPKI, text-input-support, card-surface and city applications."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from card.apdu import ParsedCommand, parse_command

CONTACT_ATR = bytes.fromhex("3BE000FF8131FE4514")


class Applet(Protocol):
    aid: bytes
    name: str

    def reset(self) -> None: ...
    def handle(self, c: ParsedCommand) -> tuple[bytes, int]: ...


class VirtualCard:
    """A card that answers raw APDUs (:meth:`process`). Thread-safe; can be removed and inserted."""

    def __init__(self, applets: list[Applet], *, atr: bytes = CONTACT_ATR) -> None:
        self.applets = {a.aid: a for a in applets}
        self._atr = atr
        self._current: Applet | None = None
        self._present = True
        self._lock = threading.RLock()
        #: test hook: ``fault(command, response) -> response`` may mangle answers
        self.fault: Callable[[bytes, bytes], bytes] | None = None
        self.apdu_count = 0
        self.profile_dir: Path | None = None

    @classmethod
    def from_profile(cls, directory: str | Path, *, persist: bool = False) -> VirtualCard:
        """Build the card described by a ``make-profile`` directory (see :mod:`card.sim.profile`)."""
        from card.sim.build import build_card

        return build_card(Path(directory), persist=persist)

    @property
    def atr(self) -> bytes:
        return self._atr

    @property
    def present(self) -> bool:
        return self._present

    def remove(self) -> None:
        with self._lock:
            self._present = False
            self.power_off()

    def insert(self) -> None:
        with self._lock:
            self._present = True
            self.power_off()

    def power_off(self) -> None:
        """Power off / reset: every security status is lost, nothing is selected."""
        with self._lock:
            for applet in self.applets.values():
                applet.reset()
            self._current = None

    def process(self, raw: bytes) -> bytes:
        with self._lock:
            self.apdu_count += 1
            data, sw = self._dispatch(raw)
            response = data + sw.to_bytes(2, "big")
            if self.fault is not None:
                response = self.fault(raw, response)
            return response

    def _dispatch(self, raw: bytes) -> tuple[bytes, int]:
        try:
            c = parse_command(raw)
        except ValueError:
            return b"", 0x6700
        if c.cla not in (0x00, 0x80):
            return b"", 0x6E00
        if c.ins == 0xA4 and c.p1 == 0x04:
            return self._select_aid(c)
        if c.ins == 0xA4 and c.p1 not in (0x02,):
            return b"", 0x6A82  # no MF / path selection on this card
        if self._current is None:
            return (b"", 0x6A82) if c.ins == 0xA4 else (b"", 0x6985)
        return self._current.handle(c)

    def _select_aid(self, c: ParsedCommand) -> tuple[bytes, int]:
        applet = self.applets.get(c.data)
        if applet is None:
            return b"", 0x6A82
        if self._current is not None:
            self._current.reset()
        applet.reset()
        self._current = applet
        return b"", 0x9000


class StateStore:
    """Persists PIN counters (and PIN changes) of a profile in ``state.json``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, dict[str, object]]:
        if not self.path.exists():
            return {}
        loaded: dict[str, dict[str, object]] = json.loads(self.path.read_text())
        return loaded

    def save(self, state: dict[str, dict[str, object]]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.path)
