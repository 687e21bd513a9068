"""Private message history, kept in the home (SQLite, WAL) across restarts.

Anyone with an identity may write to me, so the history is bounded: past `max_bytes` of messages (every byte their
rows and index entries hold, not only their data) the oldest of the conversation holding most are let go (a flood
from one peer goes before anyone else's history does)."""

from __future__ import annotations

import collections
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
# the messages kept at most (what their rows cost, see ROW_BYTES_SQL), all conversations together
MAX_HISTORY_BYTES = 64 * 1024 * 1024
# the bytes a row costs besides its texts: its time (in the row and the index by peer) and SQLite's own record
ROW_OVERHEAD = 64
# what a kept row costs in SQL, as row_bytes() counts it: the texts as UTF-8, the ones the two indexes copy twice
ROW_BYTES_SQL = (
    "2 * LENGTH(CAST(message_id AS BLOB)) + 2 * LENGTH(CAST(direction AS BLOB)) + LENGTH(CAST(sender AS BLOB)) "
    f"+ LENGTH(CAST(recipient AS BLOB)) + 2 * LENGTH(CAST(peer AS BLOB)) + LENGTH(CAST(data AS BLOB)) + {ROW_OVERHEAD}"
)
# the oldest messages let go at a time once over
_DROP_STEP = 64


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


def _utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def row_bytes(message: StoredMessage, data: str) -> int:
    """What keeping `message` (its data as the JSON text `data`) costs, as ROW_BYTES_SQL counts a kept row."""
    return (2 * _utf8(message.message_id) + 2 * _utf8(message.direction) + _utf8(message.sender)
            + _utf8(message.recipient) + 2 * _utf8(message.peer) + _utf8(data) + ROW_OVERHEAD)


def stored_bytes(message: StoredMessage) -> int:
    """What keeping `message` costs (its data written as the history writes it)."""
    return row_bytes(message, _data_json(message))


def _data_json(message: StoredMessage) -> str:
    return json.dumps(message.data, default=repr)


class MessageHistory:
    def __init__(self, path: Path, max_bytes: int = MAX_HISTORY_BYTES) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path))
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self.max_bytes = max_bytes
        # the bytes each conversation holds, and all of them
        self._bytes_by_peer: collections.Counter[str] = collections.Counter(
            {peer: int(size) for peer, size in self._db.execute(f"SELECT peer, SUM({ROW_BYTES_SQL}) FROM messages "
                                                                "GROUP BY peer")})
        self._bytes = sum(self._bytes_by_peer.values())
        # messages let go to stay within max_bytes
        self.dropped = 0

    def close(self) -> None:
        self._db.close()

    def add(self, message: StoredMessage) -> bool:
        """Keep a message; False when one with that id and direction is already kept (a replay)."""
        data = _data_json(message)
        size = row_bytes(message, data)
        with self._db:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)",
                (message.message_id, message.direction, message.sender, message.recipient, message.peer,
                 message.time, data),
            )
            if cursor.rowcount == 1:
                self._bytes_by_peer[message.peer] += size
                self._bytes += size
                self._make_room()
        return cursor.rowcount == 1

    def _make_room(self) -> None:
        """The oldest messages of the conversation holding most let go until all fit in max_bytes."""
        while self._bytes > self.max_bytes and self._bytes_by_peer:
            peer = max(self._bytes_by_peer, key=self._bytes_by_peer.__getitem__)
            rows = self._db.execute(
                f"SELECT rowid, {ROW_BYTES_SQL} FROM messages WHERE peer = ? ORDER BY time, rowid LIMIT ?",
                (peer, _DROP_STEP),
            ).fetchall()
            self._db.executemany("DELETE FROM messages WHERE rowid = ?", [(rowid,) for rowid, _size in rows])
            freed = sum(int(size) for _rowid, size in rows)
            self._bytes -= freed
            self._bytes_by_peer[peer] -= freed
            if not rows or self._bytes_by_peer[peer] <= 0:
                del self._bytes_by_peer[peer]
            self.dropped += len(rows)

    def held_bytes(self) -> int:
        return self._bytes

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
