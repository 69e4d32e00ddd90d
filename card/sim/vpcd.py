"""Serve a :class:`VirtualCard` to pcscd through the vsmartcard ``vpcd`` driver.

The card is the TCP *client*: it connects to vpcd (127.0.0.1:35963 for "Virtual PCD 00 00", 35964 for
the second slot). Each message is a 2-byte big-endian length and a payload; a 1-byte payload is
control (``00`` power off, ``01`` power on, ``02`` reset, ``04`` send ATR — only the last is answered);
anything else is a command APDU, answered with data + SW. Disconnecting = removing the card.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Self

from card.sim.card import VirtualCard

log = logging.getLogger("card.sim.vpcd")

DEFAULT_PORT = 35963
CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0x00, 0x01, 0x02, 0x04


def _quickack(sock: socket.socket) -> None:
    option = getattr(socket, "TCP_QUICKACK", None)
    if option is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, option, 1)


class VpcdClient:
    """Runs the card in a thread, connected to vpcd, until :meth:`stop`; :meth:`remove`/:meth:`insert`."""

    def __init__(
        self,
        card: VirtualCard,
        port: int = DEFAULT_PORT,
        host: str = "127.0.0.1",
        on_apdu: Callable[[bytes], None] | None = None,
    ) -> None:
        self.card = card
        self.host, self.port = host, port
        #: test hook called before each APDU is processed (may call :meth:`remove`)
        self.on_apdu = on_apdu
        self._inserted = threading.Event()
        self._inserted.set()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"vpcd-{port}", daemon=True)

    # -- control -----------------------------------------------------------------------------
    def start(self) -> Self:
        self._thread.start()
        return self

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return self._connected.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        self._drop()
        self._thread.join(5)

    def remove(self) -> None:
        """Pull the card out of the reader (closes the vpcd connection)."""
        self._inserted.clear()
        self.card.remove()
        self._drop()

    def insert(self) -> None:
        self.card.insert()
        self._inserted.set()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- loop --------------------------------------------------------------------------------
    def _drop(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        self._connected.clear()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._inserted.wait(0.1):
                continue
            try:
                sock = socket.create_connection((self.host, self.port), timeout=1.0)
            except OSError:
                self._stop.wait(0.2)  # pcscd not up yet
                continue
            sock.settimeout(0.2)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sock = sock
            self._connected.set()
            log.info("card inserted into vpcd port %d", self.port)
            try:
                self._serve(sock)
            except OSError:
                pass
            finally:
                self._drop()
                self.card.power_off()

    def _recv_exact(self, sock: socket.socket, n: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            if self._stop.is_set() or not self._inserted.is_set():
                return None
            try:
                chunk = sock.recv(n - len(buf))
            except TimeoutError:
                continue
            # vpcd writes the length and the payload separately; with Nagle on its side, our
            # delayed ACK would stall every APDU by ~40 ms, so acknowledge at once
            _quickack(sock)
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _serve(self, sock: socket.socket) -> None:
        while True:
            header = self._recv_exact(sock, 2)
            if header is None:
                return
            payload = self._recv_exact(sock, int.from_bytes(header, "big"))
            if payload is None:
                return
            if len(payload) == 1:
                if payload[0] == CTRL_ATR:
                    reply = self.card.atr
                elif payload[0] in (CTRL_OFF, CTRL_RESET, CTRL_ON):
                    self.card.power_off()
                    continue
                else:
                    continue
            else:
                if self.on_apdu is not None:
                    self.on_apdu(payload)
                    if not self._inserted.is_set():
                        return
                reply = self.card.process(payload)
            sock.sendall(len(reply).to_bytes(2, "big") + reply)


def serve_forever(client: VpcdClient) -> None:
    client.start()
    try:
        while True:
            time.sleep(3600)
    finally:
        client.stop()
