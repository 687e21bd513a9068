"""The supplier's disk: each stored piece is the whole Data packet a customer sent, one file per piece under
`HOME/customers/<customer global id>/<alias>/<path>` (PROTOCOL-P2P.md 5.1), written atomically.

A write goes to a temporary file in the same folder (around the page cache: direct_io.py), is fsynced, renamed
over the old one and the folder fsynced: a crash, a full disk or a refused packet leaves the old piece as it was,
never half a file. Folders are made for a piece and removed with the last piece in them (a delete, a failed
write): they are not counted in a customer's use, so none is left empty for a customer to pile up. (A piece's
path may be paths.MAX_DEPTH deep: official customers' path ids have a component per folder of the local path
backed up, so honest ones go deep too.)
Bytes used per customer (`used`) are not found by walking every piece at start: a supplier stopped in order
left them in its usage file (`HOME/supplier/usage.json`), and once read the file is marked unclean until the next
orderly stop. A customer it does not list (after a crash, all of them) is counted the first time its use is
needed, one folder at a time, and what a crash left half written there removed. The supplier keeps the count up
to date from what writes and removals return (they may run in a worker thread, the count stays on the reactor's).
"""

from __future__ import annotations

import collections
import errno
import json
import os
import shutil
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import attrs
from twisted.logger import Logger

from bitdust_node.crypto.keys import write_secret_file
from bitdust_node.storage import direct_io
from bitdust_node.storage.page_cache import WrittenPieces
from bitdust_node.storage.paths import PiecePath
from bitdust_node.wire.tcp_frames import FileBytes, file_size

log = Logger()

TEMP_SUFFIX = ".incoming"


class StoreError(OSError):
    """The disk refused (full, read-only, broken): the official `write error`."""


@attrs.frozen
class Version:
    """One version folder of a file as ListFiles reports it for one supplier position."""

    path: str
    last_block: int
    size: int
    missing_data: tuple[int, ...]
    missing_parity: tuple[int, ...]


class Usage(collections.Counter[str]):
    """Bytes stored per customer: those known (from the usage file of an orderly stop, then kept up to date), and
    the others counted on first need (`count`), one folder at a time, or all at once in a worker thread."""

    def __init__(self, count: Callable[[str], int], customers: Callable[[], Iterable[str]],
                 known: dict[str, int] | None = None) -> None:
        super().__init__(known or {})
        self._count = count
        self._customers = customers

    def __missing__(self, customer: str) -> int:
        counted = self[customer] = self._count(customer)
        return counted

    def counted(self, customer: str) -> int:
        """The customer's use, its folder counted now if it is not known yet."""
        return self[customer]

    def count_unknown(self) -> dict[str, int]:
        """The use of every customer folder not known yet, counted without recording it (for a worker thread: the
        reactor records what is still unknown when the counts come back, see Supplier.usage_of_all)."""
        return {customer: self._count(customer) for customer in self._customers() if customer not in self}


class PieceStore:
    def __init__(self, root: Path, usage_file: Path | None = None, direct: bool = True) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        # resolved once: a piece's path is checked on its text, with no system call a component
        self._real_root = os.path.realpath(root)
        self.usage_file = usage_file
        self.used = Usage(self._count, self.customers, self._clean_usage())
        # pieces go to the disk and come back around the page cache (direct_io.py) while the file system lets them
        self.direct = direct
        # pieces written through the page cache (direct I/O refused) keep at most this much of it
        self.cached = WrittenPieces()

    def _clean_usage(self) -> dict[str, int] | None:
        """What an orderly stop left in the usage file (then marked unclean until the next one), else None."""
        if self.usage_file is None:
            return None
        try:
            doc = json.loads(self.usage_file.read_bytes())
            used = doc["used"] if isinstance(doc, dict) and doc.get("clean") is True else None
            known = {str(k): int(v) for k, v in used.items()} if isinstance(used, dict) else None
        except FileNotFoundError:
            known = None
        except (OSError, ValueError, TypeError, AttributeError) as err:
            log.warn("{path} unreadable ({why}): customers' use is counted again", path=str(self.usage_file),
                     why=str(err))
            known = None
        # from now on a crash must not leave these figures looking right
        write_secret_file(self.usage_file, json.dumps({"clean": False}).encode())
        return known

    def close(self) -> None:
        """An orderly stop (no write or removal under way): the use known of each customer, for the next start
        (one not listed is counted when first needed)."""
        if self.usage_file is not None:
            doc = {"clean": True, "used": dict(self.used)}
            write_secret_file(self.usage_file, json.dumps(doc, sort_keys=True).encode())

    def _count(self, customer: str) -> int:
        """The bytes of one customer's folder, what a crash left half written removed."""
        folder = self._inside(customer)
        return _folder_bytes(str(folder)) if folder is not None and folder.is_dir() else 0

    def _file(self, piece: PiecePath) -> Path:
        """Where a piece lives. The parser already refuses `..`; this holds even if it did not. Everything under
        the root is what this node made (no customer makes links), so the path's text is what is checked."""
        path = self._inside(piece.relative())
        if path is None:
            raise StoreError(errno.EPERM, "path escapes the customer's folder")
        return path

    def _inside(self, relative: str | Path) -> Path | None:
        """`relative` under the root, or None if it leads out of it."""
        path = os.path.normpath(os.path.join(self._real_root, relative))
        return Path(path) if path.startswith(self._real_root + os.sep) else None

    def size_of(self, piece: PiecePath) -> int:
        try:
            return self._file(piece).stat().st_size
        except FileNotFoundError:
            return 0

    def write_file(self, piece: PiecePath, data: FileBytes) -> int:
        """Store a piece, whole or in pieces written one after another (safe in a worker thread, one at a time):
        how many bytes the customer's use grows by, for the caller to count in `used` on the reactor's thread."""
        path = self._file(piece)
        old = self.size_of(piece)
        temp = path.with_name(path.name + TEMP_SUFFIX)
        pieces = (data,) if isinstance(data, bytes) else data
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            went_direct = direct_io.write_new(temp, pieces, self.direct)
            os.replace(temp, path)
            folder = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        except OSError as err:
            temp.unlink(missing_ok=True)
            self._remove_empty(path.parent, piece.customer)
            raise StoreError(err.errno or errno.EIO, f"write error: {err.strerror or err}") from None
        if not went_direct:
            if self.direct:
                self.direct = False
                log.warn("{root}'s file system refuses direct I/O: pieces go through the page cache", root=self.root)
            self.cached.written(str(path), file_size(data))  # a hint: stored is stored, whatever it does
        return file_size(data) - old

    def read(self, piece: PiecePath) -> bytes | None:
        try:
            return direct_io.read_whole(self._file(piece), self.direct)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def remove(self, piece: PiecePath) -> int | None:
        """Remove a piece or a whole folder (a file, a backup version) (safe in a worker thread, one at a time):
        the bytes freed, for the caller to count in `used`; None when there was nothing to remove."""
        path = self._file(piece)
        if path.is_dir():
            freed = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            shutil.rmtree(path)
        elif path.is_file():
            freed = path.stat().st_size
            path.unlink()
        else:
            return None
        self._remove_empty(path.parent, piece.customer)
        return freed

    def _remove_empty(self, folder: Path, customer: str) -> None:
        """`folder` and those above it removed while empty, up to (not including) the customer's own."""
        top = self._inside(customer)
        while top is not None and top in folder.parents:
            try:
                folder.rmdir()
            except FileNotFoundError:
                pass  # already gone: the one above may be empty now
            except OSError:
                return  # not empty: it and those above hold other pieces
            folder = folder.parent

    def remove_customer(self, customer: str) -> None:
        """Remove all a customer stored (safe in a worker thread, one at a time); the caller forgets its `used`."""
        folder = self._inside(customer)
        if folder is not None and folder.is_dir():
            shutil.rmtree(folder)

    def customers(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    # -- ListFiles

    def listing(self, customer: str, alias: str, position: int) -> bytes:
        """The Files text (section 5.1): `Q*`, `K<alias>`, then `F`/`D`/`V` lines, zlib-compressed."""
        if not (self.root / customer).is_dir():
            return zlib.compress(b"")  # nothing ever stored: official suppliers find no folder and send nothing
        # everything deleted (the alias folder went with its last piece): official suppliers still send the heading
        lines = ["Q*", f"K{alias}"]
        folder = self.root / customer / alias
        try:
            tops = sorted(folder.iterdir(), key=lambda p: p.name)
        except (FileNotFoundError, NotADirectoryError):
            tops = []
        for top in tops:
            if top.name.endswith(TEMP_SUFFIX):
                continue
            # the disk worker may remove a piece, and the folders it leaves empty, while this is read
            try:
                if top.is_file():
                    lines.append(f"F{top.name} {top.stat().st_size}")
                    continue
            except FileNotFoundError:
                continue
            lines.append(f"F{top.name} -1")
            lines.extend(_version_line(v, position) for v in _versions(top, folder))
        return zlib.compress(("\n".join(lines) + "\n").encode("utf-8"))


def _folder_bytes(folder: str) -> int:
    total = 0
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                # the disk worker may remove what is being counted: what is gone counts nothing
                try:
                    if entry.is_dir(follow_symlinks=False):
                        total += _folder_bytes(entry.path)
                    elif entry.name.endswith(TEMP_SUFFIX):
                        os.unlink(entry.path)  # what a crash left half written
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    continue
    except FileNotFoundError:
        return 0
    return total


def _versions(top: Path, alias_folder: Path) -> list[Version]:
    """Version folders (`F2026...`) under a file's folder, with the blocks and pieces found in each. What the disk
    worker removes while this is read is left out, a folder or a piece at a time (not the whole file or version)."""
    found = []
    for version in sorted(_version_folders(top)):
        pieces = _piece_sizes(version)
        data, parity = set(), set()
        for name in pieces:
            block, _sep, rest = name.partition("-")
            if block.isdigit() and rest.endswith("-Data"):
                data.add(int(block))
            elif block.isdigit() and rest.endswith("-Parity"):
                parity.add(int(block))
        blocks = data | parity
        if not blocks:
            continue
        last = max(blocks)
        every = set(range(last + 1))
        found.append(Version(
            str(version.relative_to(alias_folder)), last, sum(pieces.values()),
            tuple(sorted(every - data)), tuple(sorted(every - parity)),
        ))
    return found


def _version_folders(folder: Path) -> list[Path]:
    """The folders named `F...` under `folder` (not it), at any depth (paths.MAX_DEPTH at most); a version's own
    folder holds pieces, and is not walked (as official suppliers do not)."""
    try:
        with os.scandir(folder) as entries:
            subfolders = [Path(e.path) for e in entries if e.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []  # removed while this is read (Path.rglob raises then, and would end the whole walk)
    found = []
    for sub in subfolders:
        if sub.name.startswith("F"):
            found.append(sub)
        else:
            found.extend(_version_folders(sub))
    return found


def _piece_sizes(version: Path) -> dict[str, int]:
    sizes = {}
    try:
        with os.scandir(version) as entries:
            for entry in entries:
                if entry.name.endswith(TEMP_SUFFIX):
                    continue
                try:
                    if entry.is_file():
                        sizes[entry.name] = entry.stat().st_size
                except FileNotFoundError:
                    continue  # this piece removed while it is read: the others stand
    except (FileNotFoundError, NotADirectoryError):
        pass
    return sizes


def _version_line(version: Version, position: int) -> str:
    line = f"V{version.path} {position} 0-{version.last_block} {version.size}"
    missing = []
    if version.missing_data:
        missing.append("Data:" + ",".join(map(str, version.missing_data)))
    if version.missing_parity:
        missing.append("Parity:" + ",".join(map(str, version.missing_parity)))
    return line + (" missing " + " ".join(missing) if missing else "")
