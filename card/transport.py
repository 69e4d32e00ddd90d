"""One interface to send an APDU and get data + status word, whatever carries it.

Backends: :class:`PcscTransport` (pyscard's PC/SC layer, talking to pcscd) and :class:`SimTransport`
(straight into an in-memory :class:`card.sim.VirtualCard`, for fast unit tests). Observers see every
exchange; :class:`PinMaskingTracer` logs them with PIN bytes replaced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol, Self

from card.apdu import Command, Response
from card.errors import CardRemovedError, MalformedResponseError

if TYPE_CHECKING:
    from card.sim.card import VirtualCard

Observer = Callable[[Command, "Response | None", float], None]

MAX_CHAINED_RESPONSE = 65536 + 256
MAX_GET_RESPONSE_ROUNDS = 260  # 65536 bytes in 256-byte pieces, and a margin


class Transport:
    """Base class: subclasses implement only :meth:`_transmit` (raw bytes in, raw bytes out)."""

    #: whether the reader path carries extended-length APDUs
    supports_extended = True

    def __init__(self) -> None:
        self._observers: list[Observer] = []

    # -- to override -------------------------------------------------------------------------
    def _transmit(self, raw: bytes) -> bytes:
        raise NotImplementedError

    @property
    def atr(self) -> bytes:
        return b""

    def close(self) -> None:
        """Release the reader."""

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the card exclusively for a multi-APDU operation (VERIFY then sign)."""
        yield

    # -- shared ------------------------------------------------------------------------------
    def add_observer(self, observer: Observer) -> None:
        self._observers.append(observer)

    def remove_observer(self, observer: Observer) -> None:
        self._observers.remove(observer)

    def transceive(self, command: Command) -> Response:
        """Send ``command``; follow ``61 xx`` (GET RESPONSE) and ``6C xx`` (wrong Le) transparently."""
        response = self._exchange(command)
        if response.sw1 == 0x6C:
            response = self._exchange(
                Command(
                    command.cla,
                    command.ins,
                    command.p1,
                    command.p2,
                    command.data,
                    response.sw2 or 256,
                    command.sensitive,
                )
            )
        data = bytearray(response.data)
        rounds = 0
        while response.sw1 == 0x61:
            rounds += 1
            if rounds > MAX_GET_RESPONSE_ROUNDS:
                raise MalformedResponseError("response chaining does not end")
            response = self._exchange(Command(0x00, 0xC0, 0x00, 0x00, le=response.sw2 or 256))
            data += response.data
            if len(data) > MAX_CHAINED_RESPONSE:
                raise MalformedResponseError("response chaining does not end")
        if len(data) != len(response.data):
            response = Response(bytes(data), response.sw)
        return response

    def _exchange(self, command: Command) -> Response:
        start = time.perf_counter()
        response: Response | None = None
        try:
            response = Response.decode(self._transmit(command.encode()))
            return response
        finally:
            if self._observers:
                elapsed = time.perf_counter() - start
                for observer in self._observers:
                    observer(command, response, elapsed)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Card(Protocol):
    def process(self, apdu: bytes) -> bytes: ...

    @property
    def atr(self) -> bytes: ...

    @property
    def present(self) -> bool: ...


class SimTransport(Transport):
    """In-memory transport to a virtual card (no pcscd): ``SimTransport(VirtualCard.from_profile(d))``."""

    def __init__(self, card: VirtualCard | _Card) -> None:
        super().__init__()
        self.card = card

    def _transmit(self, raw: bytes) -> bytes:
        if not self.card.present:
            raise CardRemovedError("card removed")
        return self.card.process(raw)

    @property
    def atr(self) -> bytes:
        return self.card.atr


def _hex(data: bytes) -> str:
    return data.hex(" ").upper()


class PinMaskingTracer:
    """An observer that logs every APDU, masking the data of PIN-bearing commands (VERIFY, CHANGE).

    Even without the ``sensitive`` flag, VERIFY/CHANGE REFERENCE DATA bodies are masked, and so is the
    response to a read of the Individual Number EF (the caller marks it with :meth:`mask_next_response`).
    """

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.DEBUG) -> None:
        self.logger = logger or logging.getLogger("card.apdu")
        self.level = level
        self.lines: list[str] = []
        self._mask_response = False
        self.private = False  # mask every response (personal data: text AP, signature cert)

    def mask_next_response(self) -> None:
        self._mask_response = True

    @staticmethod
    @contextmanager
    def privacy(transport: Transport) -> Iterator[None]:
        """While active, tracers on ``transport`` mask all response data."""
        tracers = [o for o in transport._observers if isinstance(o, PinMaskingTracer)]
        for tracer in tracers:
            tracer.private = True
        try:
            yield
        finally:
            for tracer in tracers:
                tracer.private = False

    def __call__(self, command: Command, response: Response | None, elapsed: float) -> None:
        header = _hex(bytes((command.cla, command.ins, command.p1, command.p2)))
        if command.data and (command.sensitive or command.ins in (0x20, 0x24, 0x2C)):
            body = f" Lc={len(command.data)} <{len(command.data)} bytes masked>"
        elif command.data:
            body = f" {_hex(command.data)}"
        else:
            body = ""
        if command.le is not None:
            body += f" Le={command.le}"
        if response is None:
            line = f"> {header}{body} ! no response ({elapsed * 1000:.1f} ms)"
        else:
            shown = (
                f"<{len(response.data)} bytes masked>"
                if (self._mask_response or self.private) and response.data
                else _hex(response.data[:64]) + (" …" if len(response.data) > 64 else "")
            )
            self._mask_response = False
            line = f"> {header}{body} < {shown} SW={response.sw:04X} ({elapsed * 1000:.1f} ms)"
        self.lines.append(line)
        self.logger.log(self.level, "%s", line)
