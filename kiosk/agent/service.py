"""What the agent does with the card and the server, without HTTP: status, events, login, link.

PIN safety (暗証番号): a PIN arrives as a ``str`` argument, goes to the card library and nowhere else.
It is not logged, not put in an exception, not sent to the server; errors say which PIN and how many
tries are left, never its value. The card library refuses the last try unless ``allow_last_try``.
The Individual Number read for a link goes to the server in the request body only.
"""

from __future__ import annotations

import base64
import binascii
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from card import errors
from card.login import ChallengeMismatchError, ServerError, challenge_message, check_challenge_message
from card.pin import PinKind
from card.session import CardSession
from kiosk.agent.client import ServerClient, ServerUnreachableError
from kiosk.agent.reader import Backend, ReaderWatcher

log = logging.getLogger("kiosk.agent")

T = TypeVar("T")

#: purposes whose challenge the agent may ask for itself (docs/card-identity.md, "Challenges")
TERMINAL_ASKS = frozenset({"kiosk_login", "link"})
#: purposes a terminal may answer
TERMINAL_ANSWERS = frozenset({"login", "kiosk_login", "counter_scan", "link", "points_attendance"})
#: purposes a library terminal answers for the staff page (portal/library)
TERMINAL_ANSWERS |= {"library_link", "library_lookup"}
EVENT_KINDS = ("card-inserted", "card-removed", "reader-lost", "reader-found")


@dataclass
class AgentError(Exception):
    """An answer for the page: HTTP ``status`` and ``{"error": {"code", "message", **extra}}``."""

    code: str
    status: int
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


def card_error(exc: errors.CardError, pin: PinKind | None = None) -> AgentError:
    """One place that maps the card library's typed errors to the page's error codes."""
    which = {"pin": pin.value} if pin is not None else {}
    if isinstance(exc, errors.WrongPinError):
        return AgentError("wrong_pin", 400, "wrong PIN", {"tries_left": exc.tries_left, **which})
    if isinstance(exc, errors.LastTryRefusedError):
        return AgentError(
            "last_try", 400, "one PIN try left: confirm before using it", {"tries_left": 1, **which}
        )
    if isinstance(exc, errors.PinBlockedError):
        return AgentError(
            "pin_blocked", 400, "PIN blocked: the city counter can reset it", {"tries_left": 0, **which}
        )
    if isinstance(exc, errors.PinFormatError):
        return AgentError("pin_format", 400, str(exc), which)
    if isinstance(exc, errors.CardRemovedError):
        return AgentError("card_removed", 409, "the card was removed during the operation")
    if isinstance(exc, errors.NoCardError):
        return AgentError("no_card", 409, "no card in the reader")
    if isinstance(exc, errors.NoReaderError):
        return AgentError("no_reader", 409, "no card reader")
    if isinstance(exc, errors.NotIndividualNumberCardError):
        return AgentError("not_individual_number_card", 409, "this is not an Individual Number Card")
    return AgentError(exc.reason, 500, "the card did not answer as expected")


def server_error(exc: ServerError | ServerUnreachableError) -> AgentError:
    if isinstance(exc, ServerUnreachableError):
        return AgentError("server_unreachable", 502, str(exc))
    status = exc.status if 400 <= exc.status < 600 else 502
    return AgentError(exc.code, status, str(exc))


class EventHub:
    """Fan-out of reader events to the page's server-sent-event streams."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: set[queue.Queue[tuple[int, str, dict[str, Any]] | None]] = set()
        self._seq = 0
        self.closed = threading.Event()

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            item = (self._seq, kind, data)
            for q in self._subscribers:
                q.put(item)

    @contextmanager
    def subscribe(self) -> Iterator[queue.Queue[tuple[int, str, dict[str, Any]] | None]]:
        q: queue.Queue[tuple[int, str, dict[str, Any]] | None] = queue.Queue()
        with self._lock:
            self._subscribers.add(q)
        try:
            yield q
        finally:
            with self._lock:
                self._subscribers.discard(q)

    def close(self) -> None:
        """Wake every stream so it ends (shutdown)."""
        self.closed.set()
        with self._lock:
            for q in self._subscribers:
                q.put(None)


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise AgentError("bad_request", 400, f"{key!r} must be a non-empty string")
    return value


class Agent:
    """The terminal agent: owns the reader (through ``backend``) and talks to the server."""

    def __init__(
        self, backend: Backend, client: ServerClient, *, poll_ms: int = 200, report_removal: bool = False
    ) -> None:
        self.backend = backend
        self.client = client
        #: a kiosk: tell the server when the card goes, so the card holder's kiosk session ends
        #: there even when the page cannot (``POST /api/kiosk/card-removed``, terminal-signed)
        self.report_removal = report_removal
        self.events = EventHub()
        self.watcher = ReaderWatcher(backend, self._on_reader_event, poll_ms=poll_ms)
        self._card_lock = threading.Lock()
        self._tries: dict[str, int | None] | None = None

    # -- life --------------------------------------------------------------------------------
    def start(self) -> Agent:
        self.watcher.start()
        return self

    def close(self) -> None:
        self.events.close()
        self.watcher.stop()

    def _on_reader_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind in ("card-inserted", "card-removed", "reader-lost"):
            self._tries = None
        self.events.publish(kind, data)
        if self.report_removal and kind in ("card-removed", "reader-lost"):
            threading.Thread(target=self._report_removal, name="kiosk-agent-removal", daemon=True).start()

    def _report_removal(self) -> None:
        try:
            self.client.post("/api/kiosk/card-removed", {})
        except (ServerError, ServerUnreachableError) as exc:
            log.info(
                "could not tell the server the card was removed: %s", getattr(exc, "code", "unreachable")
            )

    # -- card access -------------------------------------------------------------------------
    @contextmanager
    def _card(self, wait: float = 30.0) -> Iterator[CardSession]:
        """The card, exclusively (one operation at a time), opened for this operation only."""
        if not self._card_lock.acquire(timeout=wait):
            raise AgentError("busy", 409, "the card is in use by another operation")
        try:
            try:
                session = self.backend.open(self.watcher.card_reader())
            except errors.CardError as exc:
                raise card_error(exc) from None
            with session:
                yield session
        finally:
            self._tries = None
            self._card_lock.release()

    def _read_tries(self, session: CardSession) -> dict[str, int | None]:
        tries: dict[str, int | None] = {}
        for kind in PinKind:
            try:
                tries[kind.value] = session.pin_tries_left(kind)
            except errors.CardError:
                tries[kind.value] = None
        return tries

    def status(self) -> dict[str, Any]:
        seen = self.watcher.snapshot()
        card = any(seen.values())
        unknown: dict[str, int | None] = {k.value: None for k in PinKind}
        tries = self._tries
        if card and tries is None and self._card_lock.acquire(timeout=2):
            try:
                with self.backend.open(self.watcher.card_reader()) as session:
                    tries = self._tries = self._read_tries(session)
            except errors.CardError as exc:
                log.debug("tries not readable: %s", exc.reason)
            finally:
                self._card_lock.release()
        return {"reader": bool(seen), "card": card, "tries": (tries or unknown) if card else unknown}

    # -- challenges --------------------------------------------------------------------------
    def _challenge(self, purpose: str, given: Any, message_b64: Any = None) -> tuple[str, bytes]:
        """(challenge id, bytes to sign), from what the page sent or, with nothing, asked for here.

        The page may send the server's challenge object (``id``, ``nonce``, ``message``) or its id
        and ``message`` (base64). Either way the agent signs only a challenge of this protocol, for
        this purpose and id, bound to its own server's origin: never arbitrary bytes.
        """
        if given is None:
            if purpose not in TERMINAL_ASKS:
                raise AgentError("bad_request", 400, f"the page asks the server for a {purpose!r} challenge")
            try:
                given = self.client.post("/api/card/challenges", {"purpose": purpose})
            except (ServerError, ServerUnreachableError) as exc:
                raise server_error(exc) from None
        nonce: str | None = None
        if isinstance(given, dict):
            challenge_id = _text(given, "id")
            if given.get("purpose", purpose) != purpose:
                raise AgentError("bad_challenge", 400, "the challenge is for another purpose")
            nonce = _text(given, "nonce") if given.get("nonce") is not None else None
            message_b64 = given.get("message", message_b64)
        elif isinstance(given, str) and given:
            challenge_id = given
        else:
            raise AgentError("bad_request", 400, "'challenge' must be the challenge's id or object")
        if message_b64 is None:
            if nonce is None:
                raise AgentError("bad_request", 400, "the challenge's 'message' (or 'nonce') is needed")
            return challenge_id, challenge_message(purpose, challenge_id, nonce, self.client.origin)
        try:
            message = base64.b64decode(message_b64, validate=True)
            check_challenge_message(
                message, purpose=purpose, origin=self.client.origin, challenge_id=challenge_id, nonce=nonce
            )
        except (ChallengeMismatchError, binascii.Error, ValueError, TypeError):
            raise AgentError(
                "bad_challenge", 400, "not a challenge of this server for this purpose"
            ) from None
        return challenge_id, message

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.client.post(path, payload)
        except (ServerError, ServerUnreachableError) as exc:
            raise server_error(exc) from None

    @staticmethod
    def _guard(kind: PinKind, call: Callable[[], T]) -> T:
        try:
            return call()
        except errors.CardError as exc:
            raise card_error(exc, kind) from None

    @staticmethod
    def _check_tries(session: CardSession, kind: PinKind, allow_last_try: bool) -> None:
        """Refuse before any PIN is used (and before the server is asked) when one would block."""
        left = Agent._guard(kind, lambda: session.pin_tries_left(kind))
        if left == 0:
            raise card_error(errors.PinBlockedError(), kind)
        if left == 1 and not allow_last_try:
            raise card_error(errors.LastTryRefusedError(), kind)

    # -- operations --------------------------------------------------------------------------
    def login(
        self,
        purpose: str,
        challenge: Any,
        pin: str,
        *,
        message: Any = None,
        allow_last_try: bool = False,
    ) -> dict[str, Any]:
        """Sign a challenge with the user-authentication key and post the answer (terminal-signed)."""
        if purpose not in TERMINAL_ANSWERS:
            raise AgentError("bad_request", 400, f"unknown purpose {purpose!r}")
        with self._card() as session:
            self._check_tries(session, PinKind.AUTH, allow_last_try)
            certificate = self._guard(PinKind.AUTH, session.read_auth_certificate)
            challenge_id, to_sign = self._challenge(purpose, challenge, message)
            signature = self._guard(
                PinKind.AUTH, lambda: session.sign_auth(to_sign, pin, allow_last_try=allow_last_try)
            )
        log.info("signed a %s challenge", purpose)
        return self._post(
            "/api/card/responses",
            {
                "challenge": challenge_id,
                "certificate": base64.b64encode(certificate).decode("ascii"),
                "signature": base64.b64encode(signature).decode("ascii"),
            },
        )

    def link(
        self,
        challenge: Any,
        pin: str,
        *,
        message: Any = None,
        text_pin: str | None = None,
        allow_last_try: bool = False,
    ) -> dict[str, Any]:
        """Identity proofing: the text AP (number + basic 4 info), the auth certificate and a
        signature over a ``link`` challenge, posted to ``/api/card/links``. ``text_pin`` defaults
        to ``pin`` (residents usually set the same 4 digits for both)."""
        text_pin = pin if text_pin is None else text_pin
        with self._card() as session:
            self._check_tries(session, PinKind.TEXT, allow_last_try)
            self._check_tries(session, PinKind.AUTH, allow_last_try)
            challenge_id, to_sign = self._challenge("link", challenge, message)
            number, basic4 = self._guard(
                PinKind.TEXT, lambda: session.read_text_ap(text_pin, allow_last_try=allow_last_try)
            )
            certificate = self._guard(PinKind.AUTH, session.read_auth_certificate)
            signature = self._guard(
                PinKind.AUTH, lambda: session.sign_auth(to_sign, pin, allow_last_try=allow_last_try)
            )
        log.info("read the card for a link")
        return self._post(
            "/api/card/links",
            {
                "challenge": challenge_id,
                "certificate": base64.b64encode(certificate).decode("ascii"),
                "signature": base64.b64encode(signature).decode("ascii"),
                "my_number": number.reveal(),
                "basic4": basic4.as_dict(),
            },
        )
