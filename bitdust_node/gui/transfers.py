"""Files that pass through the browser: uploads staged in pieces in the home, downloads handed out once.

A browser sends a file in pieces of at most MAX_PIECE bytes (each request stays within the REST API's
body cap), in order; once whole, the customer stores it from the staged copy as `bitdust file upload`
would, and the copy is removed when that ends. A download is fetched by the customer into its own
folder and offered once, under an id of its session. Both are bounded in number and forgotten when idle.
"""

from __future__ import annotations

import re
import secrets
import shutil
from pathlib import Path
from typing import Any

import attrs

from bitdust_node.errors import Conflict, InvalidInput, NotFound, TooLarge
from bitdust_node.net.clock import TimeSource

MAX_PIECE = 512 * 1024
MAX_STAGED = 4
# a staged upload nobody sends to, or a download nobody fetches, is forgotten after this long
IDLE = 600.0
# the disk keeps at least this much free after a staged upload
DISK_MARGIN = 64 * 1024 * 1024
_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


def safe_name(name: str) -> str:
    """A file name as a browser gives it, without folders or control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base or base in (".", "..") or any(ord(c) < 32 for c in base) or len(base.encode()) > 255:
        raise InvalidInput(f"{name[:80]!r} is not a file name")
    return base


@attrs.define(eq=False)
class Staged:
    owner: str
    name: str
    size: int
    path: Path
    received: int = 0
    last_seen: float = 0.0
    sealed: bool = False


@attrs.define
class BrowserUploads:
    root: Path
    clock: TimeSource
    max_staged: int = MAX_STAGED
    staged: dict[str, Staged] = attrs.field(factory=dict)

    def start(self, owner: str, name: str, size: Any) -> str:
        self.expire()
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInput("size must be a whole number of bytes")
        name = safe_name(name)
        if len(self.staged) >= self.max_staged:
            raise Conflict(f"{self.max_staged} uploads are already on their way; wait for one to finish")
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        free = shutil.disk_usage(self.root).free
        if size > free - DISK_MARGIN:
            raise TooLarge(f"{name} ({size} bytes) does not fit on this disk ({free} bytes free)")
        upload_id = secrets.token_urlsafe(16)
        folder = self.root / upload_id
        folder.mkdir(mode=0o700)
        path = folder / name
        path.touch(mode=0o600)
        self.staged[upload_id] = Staged(owner, name, size, path, last_seen=self.clock.seconds())
        return upload_id

    def _find(self, owner: str, upload_id: str) -> Staged:
        found = self.staged.get(upload_id) if _ID.fullmatch(upload_id or "") else None
        if found is None or found.owner != owner:
            raise NotFound("no such upload (it may have been idle too long)")
        return found

    def piece(self, owner: str, upload_id: str, offset: Any, data: bytes) -> int:
        staged = self._find(owner, upload_id)
        if staged.sealed:
            raise Conflict("this upload is already complete")
        if str(offset) != str(staged.received):
            raise Conflict(f"expected the piece at offset {staged.received}")
        if len(data) > MAX_PIECE or staged.received + len(data) > staged.size:
            raise TooLarge("piece too large")
        with open(staged.path, "ab") as handle:
            handle.write(data)
        staged.received += len(data)
        staged.last_seen = self.clock.seconds()
        return staged.received

    def seal(self, owner: str, upload_id: str) -> Staged:
        """The staged file once whole; it stays until `drop` (the customer reads it while it uploads)."""
        staged = self._find(owner, upload_id)
        if staged.received != staged.size:
            raise Conflict(f"{staged.received} of {staged.size} bytes received")
        staged.sealed = True
        return staged

    def drop(self, upload_id: str) -> None:
        staged = self.staged.pop(upload_id, None)
        if staged is not None:
            shutil.rmtree(staged.path.parent, ignore_errors=True)

    def expire(self) -> None:
        now = self.clock.seconds()
        for upload_id, staged in list(self.staged.items()):
            if not staged.sealed and now - staged.last_seen >= IDLE:
                self.drop(upload_id)


@attrs.define(eq=False)
class Offered:
    owner: str
    path: Path
    folder: Path
    since: float


@attrs.define
class BrowserDownloads:
    root: Path
    clock: TimeSource
    max_offered: int = MAX_STAGED
    offered: dict[str, Offered] = attrs.field(factory=dict)

    def folder(self) -> tuple[str, Path]:
        """A fresh folder for the customer to restore into, and the id it will be offered under."""
        self.expire()
        if len(self.offered) >= self.max_offered:
            raise Conflict(f"{self.max_offered} downloads wait to be fetched; fetch or wait for them")
        download_id = secrets.token_urlsafe(16)
        folder = self.root / download_id
        folder.mkdir(parents=True, mode=0o700)
        return download_id, folder

    def offer(self, owner: str, download_id: str, path: Path, folder: Path) -> None:
        if not path.is_file() or folder.resolve() not in path.resolve().parents:
            shutil.rmtree(folder, ignore_errors=True)
            raise NotFound("the download did not produce a file")
        self.offered[download_id] = Offered(owner, path, folder, self.clock.seconds())

    def take(self, owner: str, download_id: str) -> Offered:
        """The offered file, once: the caller sends it and then calls `drop`."""
        found = self.offered.get(download_id) if _ID.fullmatch(download_id or "") else None
        if found is None or found.owner != owner:
            raise NotFound("no such download (it is fetched once, within ten minutes)")
        del self.offered[download_id]
        return found

    @staticmethod
    def drop(offered: Offered) -> None:
        shutil.rmtree(offered.folder, ignore_errors=True)

    def abandon(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)

    def expire(self) -> None:
        now = self.clock.seconds()
        for download_id, found in list(self.offered.items()):
            if now - found.since >= IDLE:
                del self.offered[download_id]
                self.drop(found)
