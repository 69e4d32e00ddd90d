"""The agent's HTTP API for the page on the same terminal: loopback only, the server's origin only.

``GET /status``, ``GET /events`` (server-sent events), ``POST /login``, ``POST /link``
(docs/card-identity.md, "Terminal agent"). Standard library ``http.server``: the agent runs where
there is no server stack.

Who may call: the listening socket is bound to 127.0.0.1; the ``Host`` header must name it (so a
DNS-rebinding page is refused); a request with an ``Origin`` must come from an allowed origin (the
server's, by default) — others get ``403`` and no CORS headers; a ``POST`` must be
``application/json`` (which a cross-site form cannot send, and which makes a browser preflight).
Request bodies are never logged, and the log shows paths without query strings.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.parse
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from card.login import normalize_origin
from kiosk.agent.service import Agent, AgentError

log = logging.getLogger("kiosk.agent.api")

DEFAULT_PORT = 47100
MAX_BODY = 16 * 1024
KEEPALIVE_SECONDS = 15.0


class AgentServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` on 127.0.0.1 bound to one :class:`Agent`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, agent: Agent, port: int = DEFAULT_PORT, allowed_origins: list[str] | None = None
    ) -> None:
        super().__init__(("127.0.0.1", port), AgentHandler)
        self.agent = agent
        origins = [agent.client.origin, *(allowed_origins or [])]
        self.allowed_origins = frozenset(normalize_origin(o) for o in origins)
        self.port = self.server_address[1]
        self.allowed_hosts = frozenset({f"127.0.0.1:{self.port}", f"localhost:{self.port}"})
        self.keepalive = KEEPALIVE_SECONDS
        self._thread: threading.Thread | None = None
        #: more calls, by "METHOD /path", each taking the JSON body (``{}`` for GET) and answering a
        #: JSON object or raising AgentError — e.g. kiosk.agent.shelter.ShelterDesk.routes()
        self.extra_routes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AgentServer:
        """Serve from a background thread (tests, and the CLI, whose main thread waits for signals)."""
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, name="kiosk-agent-http", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, end the event streams, stop the reader watcher."""
        self.agent.close()
        if self._thread is not None:
            self.shutdown()
            self._thread.join(10)
        self.server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("agent request failed")


class AgentHandler(BaseHTTPRequestHandler):
    server: AgentServer
    server_version = "kiosk-agent/1"
    sys_version = ""

    # -- logging: method, path and status only ----------------------------------------------
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = urllib.parse.urlsplit(getattr(self, "path", "")).path
        log.info("%s %s -> %s", getattr(self, "command", "?"), path, code)

    def log_error(self, format: str, *args: Any) -> None:
        log.warning("malformed request from the page")  # args can hold the raw request line

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- helpers -----------------------------------------------------------------------------
    def _cors(self) -> None:
        origin = self.headers.get("Origin")
        if origin and self._origin_allowed(origin):
            self.send_header("Access-Control-Allow-Origin", origin)
        self.send_header("Vary", "Origin")

    def _origin_allowed(self, origin: str) -> bool:
        try:
            return normalize_origin(origin) in self.server.allowed_origins
        except ValueError:  # "null", garbage
            return False

    def _send_json(self, status: int, data: dict[str, Any]) -> None:
        body = json.dumps(data, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self._cors()
        self.end_headers()
        self.wfile.write(body)

    def _error(self, error: AgentError) -> None:
        self._send_json(error.status, error.body())

    def _refused(self) -> AgentError | None:
        """Host and Origin checks, for every method."""
        if self.headers.get("Host", "").lower() not in self.server.allowed_hosts:
            return AgentError("bad_host", 403, "the agent answers on 127.0.0.1 only")
        origin = self.headers.get("Origin")
        if origin is not None and not self._origin_allowed(origin):
            return AgentError("origin_refused", 403, "this origin may not use the card agent")
        return None

    def _json_body(self) -> dict[str, Any]:
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise AgentError("unsupported_media_type", 415, "send application/json")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise AgentError("length_required", 411, "Content-Length is required") from None
        if length < 0 or length > MAX_BODY:
            raise AgentError("too_large", 413, "request body too large")
        raw = self.rfile.read(length)
        try:
            data = json.loads(raw)
        except ValueError:  # the message of a JSON error can quote the body: never echo it
            raise AgentError("bad_request", 400, "the body is not JSON") from None
        if not isinstance(data, dict):
            raise AgentError("bad_request", 400, "the body must be a JSON object")
        return data

    @property
    def _route(self) -> str:
        return urllib.parse.urlsplit(self.path).path

    # -- methods -----------------------------------------------------------------------------
    def do_OPTIONS(self) -> None:
        refused = self._refused()
        if refused is not None or not self.headers.get("Origin"):
            self._error(refused or AgentError("bad_request", 400, "a preflight needs an Origin"))
            return
        self.send_response(HTTPStatus.NO_CONTENT)
        self._cors()
        self.send_header("Access-Control-Allow-Methods", "GET, POST")
        self.send_header("Access-Control-Allow-Headers", "Content-Type")
        self.send_header("Access-Control-Max-Age", "600")
        if self.headers.get("Access-Control-Request-Private-Network", "").lower() == "true":
            self.send_header("Access-Control-Allow-Private-Network", "true")  # Chromium's PNA
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        refused = self._refused()
        if refused is not None:
            self._error(refused)
        elif self._route == "/status":
            self._send_json(200, self.server.agent.status())
        elif self._route == "/events":
            self._events()
        elif f"GET {self._route}" in self.server.extra_routes:
            try:
                self._send_json(200, self.server.extra_routes[f"GET {self._route}"]({}))
            except AgentError as exc:
                self._error(exc)
        elif self._route in ("/login", "/link"):
            self._error(AgentError("method_not_allowed", 405, "use POST"))
        else:
            self._error(AgentError("not_found", 404, "no such call"))

    def do_POST(self) -> None:
        refused = self._refused()
        if refused is not None:
            self._error(refused)
            return
        agent = self.server.agent
        try:
            if self._route == "/login":
                data = self._json_body()
                answer = agent.login(
                    _field(data, "purpose", str, "kiosk_login"),
                    data.get("challenge"),
                    _pin(data, "pin"),
                    message=data.get("message"),
                    allow_last_try=_field(data, "allow_last_try", bool, False),
                )
            elif self._route == "/link":
                data = self._json_body()
                answer = agent.link(
                    data.get("challenge"),
                    _pin(data, "pin"),
                    message=data.get("message"),
                    text_pin=_pin(data, "text_pin") if data.get("text_pin") is not None else None,
                    allow_last_try=_field(data, "allow_last_try", bool, False),
                )
            elif f"POST {self._route}" in self.server.extra_routes:
                answer = self.server.extra_routes[f"POST {self._route}"](self._json_body())
            elif self._route in ("/status", "/events"):
                raise AgentError("method_not_allowed", 405, "use GET")
            else:
                raise AgentError("not_found", 404, "no such call")
        except AgentError as exc:
            log.info("%s %s refused: %s", self.command, self._route, exc.code)
            self._error(exc)
            return
        self._send_json(200, answer)

    # -- server-sent events ------------------------------------------------------------------
    def _events(self) -> None:
        hub = self.server.agent.events
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Accel-Buffering", "no")
        self._cors()
        self.end_headers()
        self.close_connection = True
        with hub.subscribe() as q:
            try:
                # first the state as it is now (subscribed already, so nothing falls in between)
                self._event(0, "status", self.server.agent.status(), retry=2000)
                while not hub.closed.is_set():
                    try:
                        item = q.get(timeout=self.server.keepalive)
                    except queue.Empty:
                        self.wfile.write(b": keepalive\n\n")
                        self.wfile.flush()
                        continue
                    if item is None:
                        return
                    self._event(*item)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                return  # the page went away

    def _event(self, seq: int, kind: str, data: dict[str, Any], retry: int | None = None) -> None:
        lines = [f"retry: {retry}"] if retry else []
        lines += [f"id: {seq}", f"event: {kind}", f"data: {json.dumps(data, ensure_ascii=False)}", "", ""]
        self.wfile.write("\n".join(lines).encode())
        self.wfile.flush()


def _field(data: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = data.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, kind):
        raise AgentError("bad_request", 400, f"{key!r} must be {kind.__name__}")
    return value


def _pin(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        # never echo the value: it may be a PIN sent as a number
        raise AgentError("bad_request", 400, f"{key!r} must be a string of digits")
    return value
