"""The agent's calls to the server: JSON over ``urllib``, every request signed with the terminal's key.

Bodies are never logged (a link carries the Individual Number); only method, path and status are.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from card.login import LoginError, ServerError, http_json, normalize_origin, require_secure
from kiosk.agent.signing import sign_request

log = logging.getLogger("kiosk.agent.client")


class ServerUnreachableError(Exception):
    """The server could not be reached or did not answer in the protocol."""


class ServerClient:
    """``ServerClient("https://portal.city.example.jp", "T-ID", key).post("/api/card/…", {...})``.

    The server URL may have a path prefix; the signed path is the full path requested, and the
    path alone when there is no query.
    """

    def __init__(
        self,
        server: str,
        terminal_id: str,
        key: Ed25519PrivateKey,
        *,
        origin: str | None = None,
        timeout: float = 20.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        require_secure(server)
        self.base = server.rstrip("/")
        #: the origin challenges are bound to: the server's, unless the terminal reaches the server
        #: under another name than the public one (``PUBLIC_ORIGIN`` on the server)
        self.origin = normalize_origin(origin or server)
        self.terminal_id = terminal_id
        self.key = key
        self.timeout = timeout
        self.clock = clock

    def request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one signed request; the server's JSON object, or :class:`card.login.ServerError`
        (the server's error code and status) or :class:`ServerUnreachableError`."""
        url = self.base + path
        parts = urllib.parse.urlsplit(url)
        path_qs = parts.path + (f"?{parts.query}" if parts.query else "")
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        headers = sign_request(self.key, self.terminal_id, method, path_qs, body, int(self.clock()))
        try:
            status, data = http_json(
                method, url, headers=headers, body=body if payload is not None else None, timeout=self.timeout
            )
        except ServerError as exc:
            log.info("%s %s -> %d %s", method, path_qs, exc.status, exc.code)
            raise
        except LoginError as exc:
            log.warning("%s %s -> %s", method, path_qs, exc)
            raise ServerUnreachableError(str(exc)) from None
        log.info("%s %s -> %d", method, path_qs, status)
        return data

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", path, payload)

    def get(self, path: str) -> dict[str, Any]:
        return self.request("GET", path)
