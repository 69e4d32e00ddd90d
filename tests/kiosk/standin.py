"""A stand-in for the portal's card endpoints (docs/card-identity.md), for agent and PC-helper tests
that need no database: it issues challenges, checks terminal signatures with
:mod:`kiosk.agent.signing`, verifies card signatures with :mod:`card.verify`, and records every
request so a test can see exactly what reached the server.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from card.login import challenge_message
from card.verify import TrustStore, VerificationError, verify_signature
from kiosk.agent.signing import TerminalSignatureError, verify_request


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    terminal: str | None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Challenge:
    id: str
    purpose: str
    nonce: str
    message: bytes
    terminal: str | None
    code: str | None
    used: bool = False

    def public(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "nonce": self.nonce,
            "purpose": self.purpose,
            "expires_in": 60,
            "message": base64.b64encode(self.message).decode(),
        }
        if self.code:
            data["code"] = self.code
        return data


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.status, self.code = status, code


@dataclass
class StandIn:
    terminals: dict[str, Ed25519PublicKey]
    trust_dir: Path
    requests: list[Recorded] = field(default_factory=list)
    challenges: dict[str, Challenge] = field(default_factory=dict)
    links: list[dict[str, Any]] = field(default_factory=list)
    #: test hook: called with the challenge a terminal just asked for
    on_challenge: Callable[[Challenge], None] | None = None
    #: test hook: path -> (status, code) answered instead of the real thing
    refuse: dict[str, tuple[int, str]] = field(default_factory=dict)
    #: the origin the challenges name (defaults to the stand-in's own)
    claimed_origin: str | None = None

    def __post_init__(self) -> None:
        self.trust = TrustStore.from_dir(self.trust_dir)
        stand_in = self

        class Handler(_Handler):
            server_state = stand_in

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self._thread.join(5)
        self.httpd.server_close()

    # -- the server's side of the protocol ---------------------------------------------------
    def new_challenge(self, purpose: str, terminal: str | None = None) -> Challenge:
        cid = "c_" + secrets.token_urlsafe(12)
        nonce = secrets.token_urlsafe(32)
        code = None
        if purpose == "login":
            raw = secrets.token_hex(4).upper()
            code = f"{raw[:4]}-{raw[4:]}"
        message = challenge_message(purpose, cid, nonce, self.claimed_origin or self.url)
        challenge = Challenge(cid, purpose, nonce, message, terminal, code)
        self.challenges[cid] = challenge
        return challenge

    def posted(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == path]

    def _answer(self, method: str, path: str, terminal: str | None, data: Any) -> tuple[int, dict[str, Any]]:
        if path in self.refuse:
            status, code = self.refuse[path]
            raise Refusal(status, code)
        if method == "POST" and path == "/api/card/challenges":
            if terminal is None:
                raise Refusal(401, "terminal_signature")
            challenge = self.new_challenge(data["purpose"], terminal)
            if self.on_challenge is not None:
                self.on_challenge(challenge)
            return 201, challenge.public()
        if method == "GET" and path.startswith("/api/card/challenges/by-code/"):
            code = urllib.parse.unquote(path.rsplit("/", 1)[1])
            for c in self.challenges.values():
                if c.code == code and not c.used:
                    return 200, {"id": c.id, "purpose": c.purpose, "message": c.public()["message"]}
            raise Refusal(404, "challenge_unknown")
        if method == "POST" and path in ("/api/card/responses", "/api/card/links"):
            challenge = self._check(data, terminal)
            if path == "/api/card/links":
                self.links.append(data)
                return 200, {"status": "linked", "credential": len(self.links)}
            answer: dict[str, Any] = {"status": "done", "purpose": challenge.purpose}
            if challenge.purpose == "kiosk_login":
                answer["ticket"] = "t_" + secrets.token_urlsafe(8)
            return 200, answer
        raise Refusal(404, "not_found")

    def _check(self, data: dict[str, Any], terminal: str | None) -> Challenge:
        challenge = self.challenges.get(data.get("challenge", ""))
        if challenge is None:
            raise Refusal(404, "challenge_unknown")
        if challenge.used:
            raise Refusal(409, "challenge_used")
        if challenge.code is not None:
            if terminal is None and data.get("code") != challenge.code:
                raise Refusal(403, "wrong_code")
        elif terminal is None:
            raise Refusal(401, "terminal_signature")
        elif challenge.terminal not in (None, terminal):
            raise Refusal(403, "wrong_terminal")
        try:
            verify_signature(
                base64.b64decode(data["certificate"]),
                base64.b64decode(data["signature"]),
                challenge.message,
                self.trust,
                expected_kind="auth",
            )
        except VerificationError as exc:
            raise Refusal(400, exc.reason) from None
        challenge.used = True
        return challenge


class _Handler(BaseHTTPRequestHandler):
    server_state: StandIn

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        state = self.server_state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urllib.parse.urlsplit(self.path).path
        headers = dict(self.headers.items())
        terminal: str | None = None
        try:
            claimed = self.headers.get("X-Terminal-Id")
            if claimed:
                key = state.terminals.get(claimed)
                if key is None:
                    raise Refusal(401, "terminal_unknown")
                try:
                    verify_request(key, self.headers, self.command, self.path, body, time.time())
                except TerminalSignatureError as exc:
                    raise Refusal(401, exc.code) from None
                terminal = claimed
            state.requests.append(Recorded(self.command, path, headers, body, terminal))
            status, data = state._answer(self.command, path, terminal, json.loads(body) if body else None)
        except Refusal as exc:
            status, data = exc.status, {"error": {"code": exc.code, "message": str(exc)}}
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = _handle
