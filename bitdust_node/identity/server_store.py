"""The identity server's files: one `<name>.xml` per hosted identity, replaced atomically.

The folder is public: Apache or nginx may serve `GET /<name>.xml` straight from it, as another
user, so files are 0644 and the folder 0755 whatever the process umask (systemd's is 0077).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import attrs
from twisted.logger import Logger

from bitdust_node.wire import identity_xml
from bitdust_node.wire.identity_xml import Identity

log = Logger()
_tmp_counter = itertools.count()
# what a hosted name counts for at least against the server's cap: room for its owner's next revisions (an
# identity with a 4096-bit key and a few servers is about 3.5 KB)
NAME_SLOT = 4096
# identities are public documents; a web server running as another user reads them
PUBLIC_FILE = 0o644
PUBLIC_FOLDER = 0o755


def charged(size: int) -> int:
    """What an identity file of `size` bytes counts for against the cap."""
    return max(size, NAME_SLOT)


@attrs.frozen
class StoredIdentity:
    xml: bytes
    identity: Identity
    # when it was last uploaded (even unchanged): drives Last-Modified and expiry
    touched: float


@attrs.define
class IdentityStore:
    """Hosted identities, on disk under `root` and in memory for serving; `size()` is their files' bytes."""

    root: Path
    _items: dict[str, StoredIdentity] = attrs.field(factory=dict)
    _bytes: int = 0
    _charged: int = 0

    def load(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(PUBLIC_FOLDER)
        for tmp in self.root.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)  # left by a crash between write and rename
        for path in sorted(self.root.glob("*.xml")):
            name = path.name[:-4]
            try:
                identity = identity_xml.parse(path.read_bytes())
            except (OSError, identity_xml.IdentityFormatError) as err:
                log.warn(
                    "skipping unreadable identity {path}: {err}",
                    path=str(path),
                    err=str(err),
                )
                continue
            if identity.name != name:
                log.warn(
                    "skipping {path}: holds {other}",
                    path=str(path),
                    other=identity.name,
                )
                continue
            self._keep(name, StoredIdentity(path.read_bytes(), identity, path.stat().st_mtime))

    def get(self, name: str) -> StoredIdentity | None:
        return self._items.get(name)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def size(self) -> int:
        return self._bytes

    def charged(self) -> int:
        """What the hosted names count for against the cap: each at least NAME_SLOT."""
        return self._charged

    def _keep(self, name: str, stored: StoredIdentity) -> None:
        old = self._items.get(name)
        self._bytes += len(stored.xml) - (len(old.xml) if old is not None else 0)
        self._charged += charged(len(stored.xml)) - (charged(len(old.xml)) if old is not None else 0)
        self._items[name] = stored

    def put(self, identity: Identity, xml: bytes, now: float) -> None:
        """Write to a unique temp file then rename: readers see the old or the new file, never a mix."""
        name = identity.name
        if not identity_xml.is_valid_name(name):
            raise ValueError(f"refusing to store invalid name {name!r}")
        path = self.root / f"{name}.xml"
        tmp = self.root / f".{name}.{os.getpid()}.{next(_tmp_counter)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PUBLIC_FILE)
        try:
            os.fchmod(fd, PUBLIC_FILE)  # the umask applies to os.open's mode, not to fchmod
            # no fsync: after a crash a file is old, or unreadable and skipped at load, never mixed,
            # and owners re-propagate; fsync would cap ingestion near one upload per disk flush
            with os.fdopen(fd, "wb") as out:
                out.write(xml)
            os.utime(tmp, (now, now))
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._keep(name, StoredIdentity(xml, identity, now))

    def remove(self, name: str) -> None:
        old = self._items.pop(name, None)
        if old is not None:
            self._bytes -= len(old.xml)
            self._charged -= charged(len(old.xml))
        (self.root / f"{name}.xml").unlink(missing_ok=True)

    def untouched_since(self, deadline: float) -> list[str]:
        return [name for name, item in self._items.items() if item.touched < deadline]
