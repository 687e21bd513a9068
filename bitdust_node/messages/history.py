"""Private message history, kept in the home (SQLite, WAL) across restarts."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    peer TEXT NOT NULL,
    time REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (message_id, direction)
);
CREATE INDEX IF NOT EXISTS messages_by_peer ON messages (peer, time);
"""


@attrs.frozen
class StoredMessage:
    message_id: str
    direction: str
    sender: str
    recipient: str
    peer: str
    time: float
    data: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "dir": self.direction,
            "message_id": self.message_id,
            "recipient": self.recipient,
            "sender": self.sender,
            "time": int(self.time),
        }


class MessageHistory:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path))
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(self, message: StoredMessage) -> bool:
        """Keep a message; False when one with that id and direction is already kept (a replay)."""
        with self._db:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)",
                (message.message_id, message.direction, message.sender, message.recipient, message.peer,
                 message.time, json.dumps(message.data, default=repr)),
            )
        return cursor.rowcount == 1

    def has(self, message_id: str, direction: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM messages WHERE message_id = ? AND direction = ?", (message_id, direction)
        ).fetchone()
        return row is not None

    def peers(self, limit: int) -> list[str]:
        """The IDURLs of the `limit` peers I exchanged messages with most recently, newest first."""
        rows = self._db.execute(
            "SELECT peer FROM messages GROUP BY peer ORDER BY MAX(time) DESC LIMIT ?", (limit,)
        ).fetchall()
        return [r[0] for r in rows]

    def list(self, peer: str | Sequence[str] | None = None, offset: int = 0, limit: int = 100) -> list[StoredMessage]:
        """Newest last; with a peer (an IDURL, or every IDURL of one user), only the conversation with that peer."""
        peers = [peer] if isinstance(peer, str) else list(peer or ())
        where = f"WHERE peer IN ({', '.join('?' * len(peers))})" if peers else ""
        rows = self._db.execute(
            f"SELECT * FROM (SELECT * FROM messages {where} ORDER BY time DESC, rowid DESC LIMIT ? OFFSET ?) "
            "ORDER BY time, rowid",
            [*peers, limit, offset],
        ).fetchall()
        return [StoredMessage(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows]
