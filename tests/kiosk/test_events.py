"""Server-sent events from the agent: the state on connect, card insert/remove from the virtual
card, reader lost/found, and streams that end when the agent stops."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

import pytest

from kiosk.agent.reader import SIM_READER, ReaderWatcher

from .conftest import Running
from .standin import StandIn


class EventStream:
    def __init__(self, port: int, origin: str | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.conn.request("GET", "/events", headers={"Origin": origin} if origin else {})
        self.response = self.conn.getresponse()

    def next(self) -> tuple[str, Any] | None:
        """The next event (kind, data), skipping keep-alive comments; None when the stream ends."""
        fields: dict[str, str] = {}
        while True:
            line = self.response.readline()
            if not line:
                return None
            text = line.decode().rstrip("\n")
            if text.startswith(":"):
                continue
            if not text:
                if "event" in fields:
                    return fields["event"], json.loads(fields["data"])
                continue
            name, _, value = text.partition(": ")
            fields[name] = value

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def stream(running: Running, standin: StandIn) -> Any:
    events = EventStream(running.port, origin=standin.url)
    yield events
    events.close()


def test_stream_headers_and_first_state(stream: EventStream, standin: StandIn) -> None:
    assert stream.response.status == 200
    assert stream.response.getheader("Content-Type").startswith("text/event-stream")
    assert stream.response.getheader("Access-Control-Allow-Origin") == standin.url
    assert stream.next() == (
        "status",
        {"reader": True, "card": True, "tries": {"auth": 3, "sign": 5, "text": 3}},
    )


def test_remove_and_insert(running: Running, stream: EventStream) -> None:
    assert stream.next()[0] == "status"  # type: ignore[index]
    running.backend.remove()
    assert stream.next() == ("card-removed", {"reader": SIM_READER})
    running.backend.insert()
    assert stream.next() == ("card-inserted", {"reader": SIM_READER})


def test_every_stream_gets_every_event(running: Running, stream: EventStream, standin: StandIn) -> None:
    other = EventStream(running.port)
    try:
        assert stream.next()[0] == other.next()[0] == "status"  # type: ignore[index]
        running.backend.remove()
        assert stream.next() == other.next() == ("card-removed", {"reader": SIM_READER})
    finally:
        other.close()


def test_keepalive(running: Running) -> None:
    running.httpd.keepalive = 0.05
    stream = EventStream(running.port)
    try:
        assert stream.next()[0] == "status"  # type: ignore[index]
        line = b""
        while not line.startswith(b":"):
            line = stream.response.readline()
        assert line == b": keepalive\n"
    finally:
        stream.close()


def test_streams_end_and_threads_stop_on_shutdown(running: Running, stream: EventStream) -> None:
    assert stream.next()[0] == "status"  # type: ignore[index]
    started = time.monotonic()
    running.httpd.close()
    assert stream.next() is None
    assert time.monotonic() - started < 3
    assert not running.agent.watcher.alive


def test_reader_lost_and_found() -> None:
    """What the watcher says when a reader is unplugged with a card in it, and comes back."""

    class Readers:
        description = "fake"

        def __init__(self) -> None:
            self.now = {"R1": True}

        def poll(self) -> dict[str, bool]:
            return dict(self.now)

        def open(self, reader: str | None) -> Any:
            raise NotImplementedError

        def close(self) -> None:
            pass

    seen: list[tuple[str, str]] = []
    readers = Readers()
    watcher = ReaderWatcher(readers, lambda kind, data: seen.append((kind, data["reader"])))
    watcher.poll_once()
    readers.now = {}
    watcher.poll_once()
    readers.now = {"R1": False, "R2": False}
    watcher.poll_once()
    assert seen == [
        ("reader-found", "R1"),
        ("card-inserted", "R1"),
        ("card-removed", "R1"),
        ("reader-lost", "R1"),
        ("reader-found", "R1"),
        ("reader-found", "R2"),
    ]
    assert watcher.snapshot() == {"R1": False, "R2": False}
