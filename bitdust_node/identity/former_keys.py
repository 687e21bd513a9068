"""IDURLs the identity cache let go, each still bound to the key that held it: another key cannot claim one with a
self-signed identity while its record lasts.

A record is 16 bytes (8-byte digests of the IDURL and of the key) appended to a file, read back at start. At
most MAX_RECORDS are kept, the oldest dropped first, and at most PER_KEY for one key (its own oldest first), so
one key signing identity after identity cannot push the others' records out: that takes MAX_RECORDS / PER_KEY
keys. The file is rewritten with what is kept once as many records again were appended.
"""

from __future__ import annotations

import collections
import hashlib
import os
import struct
from pathlib import Path

from twisted.logger import Logger

from bitdust_node.crypto.keys import write_secret_file

log = Logger()
MAX_RECORDS = 65_536
# a user holds at most 64 IDURLs in the cache; as many let go are remembered for it
PER_KEY = 64
_RECORD = struct.Struct(">QQ")  # the IDURL's digest, its key's digest


def digest(text: str) -> int:
    """8 bytes standing for an IDURL or a key."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


class FormerKeys:
    def __init__(self, path: Path, max_records: int = MAX_RECORDS, per_key: int = PER_KEY) -> None:
        self.path = path
        self.max_records = max_records
        self.per_key = per_key
        # IDURL digest -> key digest, the oldest first; and each key's IDURL digests, the oldest first
        self._key_of: collections.OrderedDict[int, int] = collections.OrderedDict()
        self._of_key: dict[int, dict[int, None]] = {}
        self._appended = 0
        self._unwritten: list[bytes] = []

    def __len__(self) -> int:
        return len(self._key_of)

    def load(self) -> None:
        """The records in the file, the latest 2 x max_records at most; a torn last record is cut off."""
        try:
            with open(self.path, "rb") as records:
                size = os.fstat(records.fileno()).st_size
                whole = size - size % _RECORD.size
                start = max(0, whole - 2 * self.max_records * _RECORD.size)
                records.seek(start)
                data = records.read(whole - start)
        except FileNotFoundError:
            return
        except OSError as err:
            log.warn("records of forgotten identities not read ({why}): their IDURLs are free", why=str(err))
            return
        for idurl, key in _RECORD.iter_unpack(data):
            self._add(idurl, key)
        self._appended = len(data) // _RECORD.size - len(self._key_of)
        if size != whole or start:
            try:
                self._rewrite()  # appends must land on whole records again
            except OSError as err:
                log.warn("records of forgotten identities not rewritten ({why})", why=str(err))

    def holder(self, idurl: str) -> int | None:
        """The digest of the key that held `idurl` when it was let go, if remembered."""
        return self._key_of.get(digest(idurl)) if self._key_of else None

    def claimed_by_another(self, idurl: str, key: str) -> bool:
        holder = self.holder(idurl)
        return holder is not None and holder != digest(key)

    def let_go(self, idurl: str, key: str) -> None:
        """Remember that `key` held `idurl` (written at the next `flush`)."""
        idurl_digest, key_digest = digest(idurl), digest(key)
        self._add(idurl_digest, key_digest)
        self._unwritten.append(_RECORD.pack(idurl_digest, key_digest))

    def taken_back(self, idurl: str) -> None:
        """`idurl` is in the cache again (its user is back): its record is not needed."""
        if self._key_of:
            self._drop(digest(idurl))

    def flush(self) -> None:
        """The records let go since the last flush, to the disk in one write (the file rewritten once it doubled).
        A failing disk loses them, with a warning: their IDURLs are then free, nothing else breaks."""
        if not self._unwritten:
            return
        unwritten, self._unwritten = self._unwritten, []
        try:
            if self._appended + len(unwritten) > self.max_records:
                self._rewrite()
                return
            with open(self.path, "ab") as records:
                records.write(b"".join(unwritten))
                records.flush()
                os.fsync(records.fileno())
            os.chmod(self.path, 0o600)
            self._appended += len(unwritten)
        except OSError as err:
            log.warn("records of {n} forgotten IDURLs not written ({why})", n=len(unwritten), why=str(err))

    def _add(self, idurl: int, key: int) -> None:
        self._drop(idurl)
        self._key_of[idurl] = key
        mine = self._of_key.setdefault(key, {})
        mine[idurl] = None
        if len(mine) > self.per_key:
            self._drop(next(iter(mine)))
        while len(self._key_of) > self.max_records:
            self._drop(next(iter(self._key_of)))

    def _drop(self, idurl: int) -> None:
        key = self._key_of.pop(idurl, None)
        if key is None:
            return
        mine = self._of_key[key]
        del mine[idurl]
        if not mine:
            del self._of_key[key]

    def _rewrite(self) -> None:
        write_secret_file(self.path, b"".join(_RECORD.pack(i, k) for i, k in self._key_of.items()))
        self._appended = 0
