"""Shelter check-in at the terminal (避難所チェックイン), online or offline.

The page on the shelter's tablet posts ``/shelter/checkin`` with the shelter's code and the PIN the
evacuee typed. The agent:

1. with ``method: "card"`` signs a ``shelter_checkin`` card challenge it makes itself (UUID, shelter,
   terminal, time: :func:`card.offline.checkin_message`) with the user-authentication key; with
   ``method: "text_ap"`` (a card not linked yet) reads the basic 4 information from the
   text-input-support AP with the PIN (the Individual Number is not read);
2. signs the entry with the terminal key and posts it to ``/api/shelter/checkins``;
3. when the server cannot be reached, also reads the basic 4 information (the server will need it
   if the card turns out not to be linked), and stores the entry in the :class:`Outbox`; a
   background thread and ``/shelter/sync`` send the queue later. The server is idempotent on the
   UUID, so an entry sent twice (an answer lost on the way back) stays one record.

The PIN goes to the card only, as everywhere in the agent.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import uuid as uuidlib
from typing import Any

from card import offline
from card.login import ServerError
from card.pin import PinKind
from kiosk.agent.client import ServerUnreachableError
from kiosk.agent.outbox import Outbox
from kiosk.agent.service import Agent, AgentError, server_error

log = logging.getLogger("kiosk.agent.shelter")

KIND = "shelter_checkin"
PATH = "/api/shelter/checkins"
BATCH = 20


class ShelterDesk:
    """Check-ins for one terminal: card work through the :class:`Agent`, the queue in ``outbox``."""

    def __init__(self, agent: Agent, outbox: Outbox, *, sync_seconds: float = 30.0) -> None:
        self.agent = agent
        self.outbox = outbox
        self.sync_seconds = sync_seconds
        self._stop = threading.Event()
        self._sync_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- life --------------------------------------------------------------------------------
    def start(self) -> ShelterDesk:
        if self.sync_seconds > 0:
            self._thread = threading.Thread(target=self._run, name="kiosk-agent-shelter-sync", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.outbox.close()

    def _run(self) -> None:
        while not self._stop.wait(self.sync_seconds):
            try:
                if self.outbox.counts(KIND)["waiting"]:
                    self.sync()
            except Exception:  # keep the thread alive; the next round tries again
                log.exception("shelter sync failed")

    # -- the page's calls ----------------------------------------------------------------------
    def routes(self) -> dict[str, Any]:
        """POST routes for :class:`kiosk.agent.api.AgentServer` (``extra_post``/``extra_get``)."""
        return {
            "POST /shelter/checkin": self._checkin_call,
            "POST /shelter/sync": lambda data: self.sync(),
            "GET /shelter/queue": lambda data: self.queue(),
        }

    def _checkin_call(self, data: dict[str, Any]) -> dict[str, Any]:
        shelter, pin = data.get("shelter"), data.get("pin")
        method = data.get("method", "card")
        if not isinstance(shelter, str) or not shelter or "\n" in shelter or "/" in shelter:
            raise AgentError("bad_request", 400, "'shelter' must be the shelter's code")
        if not isinstance(pin, str) or not pin:
            raise AgentError("bad_request", 400, "'pin' must be a string of digits")
        if method not in ("card", "text_ap"):
            raise AgentError("bad_request", 400, "'method' is 'card' or 'text_ap'")
        allow_last_try = data.get("allow_last_try", False)
        if not isinstance(allow_last_try, bool):
            raise AgentError("bad_request", 400, "'allow_last_try' must be bool")
        return self.checkin(shelter, pin, method=method, allow_last_try=allow_last_try)

    def queue(self) -> dict[str, Any]:
        return self.outbox.counts(KIND)

    # -- check-in ------------------------------------------------------------------------------
    def checkin(
        self, shelter: str, pin: str, *, method: str = "card", allow_last_try: bool = False
    ) -> dict[str, Any]:
        client = self.agent.client
        entry: dict[str, Any] = {
            "uuid": str(uuidlib.uuid4()),
            "shelter": shelter,
            "terminal": client.terminal_id,
            "at": int(client.clock()),
            "method": method,
        }
        with self.agent._card() as session:
            if method == "card":
                self.agent._check_tries(session, PinKind.AUTH, allow_last_try)
                certificate = self.agent._guard(PinKind.AUTH, session.read_auth_certificate)
                message = offline.checkin_message(
                    entry["uuid"], shelter, client.terminal_id, entry["at"], client.origin
                )
                signature = self.agent._guard(
                    PinKind.AUTH, lambda: session.sign_auth(message, pin, allow_last_try=allow_last_try)
                )
                entry["certificate"] = base64.b64encode(certificate).decode("ascii")
                entry["signature"] = base64.b64encode(signature).decode("ascii")
            else:
                self.agent._check_tries(session, PinKind.TEXT, allow_last_try)
                basic4 = self.agent._guard(
                    PinKind.TEXT, lambda: session.read_basic4(pin, allow_last_try=allow_last_try)
                )
                entry["basic4"] = basic4.as_dict()
            try:
                return self._send_one(offline.sign_entry(client.key, entry))
            except ServerUnreachableError:
                pass
            # Offline: the server cannot tell us now whether the card is linked; read what it
            # needs to find the person in the register when the entry arrives.
            if "basic4" not in entry:
                try:
                    self.agent._check_tries(session, PinKind.TEXT, False)
                    entry["basic4"] = session.read_basic4(pin).as_dict()
                except Exception as exc:  # a different text PIN: the card signature alone still counts
                    log.info("offline check-in without basic 4 information (%s)", type(exc).__name__)
        entry["offline"] = True
        signed = offline.sign_entry(client.key, entry)
        self.outbox.put(KIND, signed)
        log.info("check-in queued (server unreachable)")
        return {"status": "queued", "uuid": entry["uuid"], **self.queue()}

    def _send_one(self, entry: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = self.agent.client.post(PATH, {"entries": [entry]})
        except ServerError as exc:
            raise server_error(exc) from None
        result = (answer.get("results") or [{}])[0]
        if result.get("status") == "refused":
            status = (
                403 if result.get("code") in ("card_not_linked", "entry_signature", "wrong_terminal") else 400
            )
            raise AgentError(str(result.get("code")), status, str(result.get("message", "")))
        return result

    # -- sync ----------------------------------------------------------------------------------
    def sync(self) -> dict[str, Any]:
        """Send the queue, oldest first, in batches; stop at the first unreachable server."""
        sent = {"created": 0, "duplicate": 0, "refused": 0}
        with self._sync_lock:
            while True:
                batch = self.outbox.pending(KIND, BATCH)
                if not batch:
                    break
                try:
                    answer = self.agent.client.post(PATH, {"entries": batch})
                except ServerUnreachableError:
                    self.outbox.attempted([e["uuid"] for e in batch], "server_unreachable")
                    return {"status": "offline", **sent, **self.queue()}
                except ServerError as exc:
                    self.outbox.attempted([e["uuid"] for e in batch], exc.code)
                    raise server_error(exc) from None
                results = answer.get("results")
                if not isinstance(results, list) or len(results) != len(batch):
                    raise AgentError(
                        "server_unreachable", 502, "the server's answer does not match the queue"
                    )
                for entry, result in zip(batch, results, strict=True):
                    outcome = str(result.get("status"))
                    if outcome == "already_here":
                        outcome = "duplicate"
                    if outcome not in sent or result.get("uuid") != entry["uuid"]:
                        raise AgentError(
                            "server_unreachable", 502, "the server's answer does not match the queue"
                        )
                    self.outbox.done(entry["uuid"], outcome)
                    sent[outcome] += 1
                time.sleep(0)  # let a check-in take the card between batches
        log.info("shelter queue synced: %s", sent)
        return {"status": "synced", **sent, **self.queue()}
