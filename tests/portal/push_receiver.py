"""Test stand-ins for the outside services of the PO box channels, all on 127.0.0.1:

``PushReceiver``  an HTTP server acting as the browser vendors' push service: records each POST
                  and answers with the status the test set for that path (201 by default).
``Browser``       what a browser holds for one subscription: an ECDH P-256 key pair and the
                  auth secret; decrypts what the push service received (RFC 8291, aes128gcm).
``SmtpSink``      a real SMTP server (aiosmtpd) that keeps every message it is given.
"""

from __future__ import annotations

import base64
import os
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class PushReceiver:
    received: list[Received] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=dict)  # path → status to answer

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                code = receiver.status.get(self.path, 201)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> PushReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Browser:
    """One browser's subscription keys, made here as a browser makes them."""

    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self, endpoint: str) -> dict:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"endpoint": endpoint, "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)}}

    def decrypt(self, body: bytes) -> bytes:
        return http_ece.decrypt(
            body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpSink:
    def __init__(self, *, hold_at: int | None = None) -> None:
        """``hold_at``: on that message (1-based), keep it but answer only after ``release`` is set
        (``held`` is set meanwhile) — a sender killed then never hears the 250."""
        import asyncio
        import logging

        from aiosmtpd.controller import Controller

        logging.getLogger("mail.log").setLevel(logging.WARNING)  # it logs addresses at DEBUG

        self.messages: list[EmailMessage] = []
        self.recipients: list[str] = []
        self._lock = threading.Lock()
        self.held, self.release = threading.Event(), threading.Event()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                with sink._lock:
                    sink.recipients.extend(envelope.rcpt_tos)
                    sink.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
                    count = len(sink.messages)
                if count == hold_at:
                    sink.held.set()
                    while not sink.release.is_set():
                        await asyncio.sleep(0.02)
                return "250 Message accepted for delivery"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.controller.stop()
