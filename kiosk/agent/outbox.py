"""The agent's persistent queue of check-ins made while the server could not be reached.

One SQLite file under the agent's state directory (standard library ``sqlite3``, WAL, every write
committed before the page hears "queued"), so a power cut or a restart loses nothing. Each entry
is a JSON object with a client-made UUID, already signed with the terminal key
(:mod:`card.offline`); the server keeps one record per UUID, so sending an entry again after a lost
answer is harmless. An entry leaves the queue only when the server has answered for it.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    uuid        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    entry       TEXT NOT NULL,
    created_at  REAL NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    done_at     REAL,
    outcome     TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (done_at, created_at);
"""


class Outbox:
    """``Outbox(state_dir / "outbox.sqlite3")``: put, pending, done. Thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        with contextlib.suppress(OSError):
            self.path.chmod(0o600)  # entries hold basic 4 information read from cards

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def put(self, kind: str, entry: dict[str, Any]) -> None:
        """Store an entry (durably) unless its UUID is already queued."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO outbox (uuid, kind, entry, created_at) VALUES (?, ?, ?, ?)",
                (entry["uuid"], kind, json.dumps(entry, ensure_ascii=False), time.time()),
            )

    def pending(self, kind: str, limit: int = 50) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT entry FROM outbox WHERE kind = ? AND done_at IS NULL ORDER BY created_at LIMIT ?",
                (kind, limit),
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def attempted(self, uuids: list[str], error: str) -> None:
        with self._lock:
            self._db.executemany(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE uuid = ?",
                [(error, u) for u in uuids],
            )

    def done(self, uuid: str, outcome: str) -> None:
        """The server answered for this entry (created, duplicate or refused): it leaves the queue.
        A recorded entry is kept as its UUID and outcome only; a refused one keeps its content, so
        staff can still check that person in by hand (nothing is lost)."""
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET done_at = ?, outcome = ?, attempts = attempts + 1, "
                "entry = CASE WHEN ? = 'refused' THEN entry ELSE '{}' END "
                "WHERE uuid = ? AND done_at IS NULL",
                (time.time(), outcome, outcome, uuid),
            )

    def counts(self, kind: str) -> dict[str, int]:
        with self._lock:
            waiting = self._db.execute(
                "SELECT count(*) FROM outbox WHERE kind = ? AND done_at IS NULL", (kind,)
            ).fetchone()[0]
            refused = self._db.execute(
                "SELECT count(*) FROM outbox WHERE kind = ? AND outcome = 'refused'", (kind,)
            ).fetchone()[0]
        return {"waiting": waiting, "refused": refused}
