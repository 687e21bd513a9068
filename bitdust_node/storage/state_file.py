"""A room's small state kept as JSON in the customer's folder: read once at the start, written whole (atomic, 0600,
fsynced) in a worker thread, in the order asked, so the newest write stays."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twisted.internet import defer, threads
from twisted.logger import Logger

from bitdust_node.crypto.keys import write_secret_file
from bitdust_node.storage.interfaces import Worker
from bitdust_node.storage.waits import shielded

log = Logger()


class StateFile:
    def __init__(self, path: Path, worker: Worker = threads.deferToThread, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.path = path
        self._worker = worker
        self._lock = defer.DeferredLock()
        self.max_bytes = max_bytes

    def load(self) -> dict[str, Any]:
        """The state written last; empty when there is none, or (said) when it cannot be read."""
        try:
            with self.path.open("rb") as state:
                text = state.read(self.max_bytes + 1)
            if len(text) > self.max_bytes:
                raise ValueError(f"over {self.max_bytes} bytes")
            doc = json.loads(text)
            return doc if isinstance(doc, dict) else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            log.error("{path} unreadable ({why}); starting afresh", path=str(self.path), why=str(err))
            return {}

    def write(self, doc: dict[str, Any]) -> defer.Deferred[None]:
        """The state written (in a worker thread, after the writes asked before). A caller that stops waiting (its
        REST client gone) does not stop the write: the next one would run beside it on the same temporary file."""
        writing = self._lock.run(self._worker, write_secret_file, self.path, json.dumps(doc).encode())
        return shielded(writing, lambda failure: log.failure("{path} not written", failure, path=str(self.path)))
