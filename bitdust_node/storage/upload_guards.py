"""The versions my uploads are storing, written down before their first piece goes (`HOME/customer/uploads.json`).

A guard names a version (its backup id) and the suppliers that may hold its pieces. It ends once a save wrote my
catalog's copy naming the version complete, or once the version's DeleteBackup is in the deletes journal (an upload
that stopped or failed). A guard found at a start is an upload of an earlier run that did not end (a crash, a power
cut): `Customer` confirms it against the newest catalog my suppliers hold before its pieces are deleted, since a
home copied mid-upload, or a customer started again while the first still ran, also leaves one behind. Kept apart
from the deletes journal: a folder of many small files writes a few hundred bytes a file here, not every delete owed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from twisted.internet import defer, threads

from bitdust_node.storage.interfaces import Worker
from bitdust_node.storage.state_file import StateFile

GUARDS_FILE = "uploads.json"
# uploads run one file at a time each; a folder's guards end every GUARDED_AT_MOST files (customer.py)
MAX_FILE_BYTES = 4 * 1024 * 1024


class UploadGuards:
    def __init__(self, folder: Path, worker: Worker = threads.deferToThread) -> None:
        self.file = StateFile(folder / GUARDS_FILE, worker, MAX_FILE_BYTES)
        # an earlier run's, not confirmed yet: backup id -> suppliers
        self.left: dict[str, list[str]] = self._load()
        # this run's
        self.running: dict[str, list[str]] = {}
        self.closed = False

    def _load(self) -> dict[str, list[str]]:
        found = self.file.load().get("guards", {})
        if not isinstance(found, dict):
            return {}
        return {backup_id: [i for i in idurls if isinstance(i, str)] for backup_id, idurls in found.items()
                if isinstance(backup_id, str) and isinstance(idurls, list)}

    def _write(self) -> defer.Deferred[None]:
        if self.closed:
            return defer.succeed(None)
        return self.file.write({"guards": {**self.left, **self.running}})

    def add(self, backup_id: str, idurls: Iterable[str]) -> defer.Deferred[None]:
        """A version about to be stored at `idurls`, written down (the Deferred fires once it is)."""
        self.running[backup_id] = sorted(set(idurls))
        return self._write()

    def cover(self, idurl: str) -> defer.Deferred[None]:
        """A supplier hired while uploads run: it may get their pieces too."""
        if not self.running:
            return defer.succeed(None)
        for idurls in self.running.values():
            if idurl not in idurls:
                idurls.append(idurl)
        return self._write()

    def end(self, backup_ids: Iterable[str]) -> defer.Deferred[None]:
        """Guards no longer needed: named by my copy of the catalog, or owed a DeleteBackup in the journal."""
        gone = [b for b in backup_ids if self.running.pop(b, None) is not None or self.left.pop(b, None) is not None]
        return self._write() if gone else defer.succeed(None)

    def close(self) -> None:
        """Nothing more written: a customer started again reads what this one left, an earlier run's to confirm."""
        self.closed = True
