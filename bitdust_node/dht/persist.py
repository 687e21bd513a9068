"""SQLite file in the home that keeps layer ids, contacts and values across restarts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bitdust_node.dht.routing import Contact
from bitdust_node.dht.store import StoredValue

_SCHEMA = """
CREATE TABLE IF NOT EXISTS layers (layer INTEGER PRIMARY KEY, node_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contacts (
    layer INTEGER NOT NULL, node_id TEXT NOT NULL, host TEXT NOT NULL, port INTEGER NOT NULL,
    PRIMARY KEY (layer, node_id));
CREATE TABLE IF NOT EXISTS dht_values (
    layer INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, publisher TEXT NOT NULL,
    originally_published REAL NOT NULL, expire_seconds INTEGER NOT NULL, mine INTEGER NOT NULL,
    PRIMARY KEY (layer, key, mine));
"""


class DhtDatabase:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path))
        # WAL with normal sync: a crash may lose the last values, never corrupts the file
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    def layer_ids(self) -> dict[int, str]:
        return dict(self.db.execute("SELECT layer, node_id FROM layers").fetchall())

    def save_layer_id(self, layer: int, node_id: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO layers VALUES (?, ?)", (layer, node_id))
        self.db.commit()

    def contacts(self, layer: int) -> list[Contact]:
        rows = self.db.execute("SELECT node_id, host, port FROM contacts WHERE layer = ?", (layer,)).fetchall()
        return [Contact(node_id, host, port) for node_id, host, port in rows]

    def save_contacts(self, layer: int, contacts: list[Contact]) -> None:
        with self.db:
            self.db.execute("DELETE FROM contacts WHERE layer = ?", (layer,))
            self.db.executemany(
                "INSERT INTO contacts VALUES (?, ?, ?, ?)",
                [(layer, c.node_id, c.host, c.port) for c in contacts],
            )

    def values(self, layer: int, mine: bool) -> list[StoredValue]:
        rows = self.db.execute(
            "SELECT key, value, publisher, originally_published, expire_seconds FROM dht_values"
            " WHERE layer = ? AND mine = ?",
            (layer, int(mine)),
        ).fetchall()
        return [StoredValue(*row) for row in rows]

    def save_value(self, layer: int, item: StoredValue, mine: bool) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO dht_values VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    layer,
                    item.key,
                    item.value,
                    item.publisher_id,
                    item.originally_published,
                    item.expire_seconds,
                    int(mine),
                ),
            )

    def delete_values(self, layer: int, keys: list[str], mine: bool) -> None:
        with self.db:
            self.db.executemany(
                "DELETE FROM dht_values WHERE layer = ? AND key = ? AND mine = ?",
                [(layer, key, int(mine)) for key in keys],
            )
