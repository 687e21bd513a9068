"""How much of the page cache a supplier's written pieces may keep where they go through it: on a file system
that refuses direct I/O (direct_io.py writes them around the cache everywhere else).

Pieces are written once and read rarely. Left to the kernel, a supplier storing gigabytes fills the page cache
with them and pushes out what the machine uses; on VMs whose memory the host backs lazily, every page the cache
grows into costs a fault on the host first (storage_bench, on this VM: the suppliers' system time grew 3-4x
after 1 GiB of shares, and uploads fell from ~100 to ~70 MB/s). The most recently written pieces stay cached,
up to a bound, for the reads that follow a write soon (a health check, a restore just after a backup); older
ones are dropped from the cache, their bytes safe on disk.
"""

from __future__ import annotations

import collections
import os
import threading

# what the latest written pieces may keep cached: a 256 MiB file's shares on each of its suppliers
DEFAULT_KEPT = 256 * 1024 * 1024
# and at most this many of them (the list of small pieces stays small too)
DEFAULT_PIECES = 4096


class WrittenPieces:
    """The latest written pieces, up to `kept` bytes and `pieces` files together, stay cached; older ones leave."""

    def __init__(self, kept: int = DEFAULT_KEPT, pieces: int = DEFAULT_PIECES) -> None:
        self.kept = kept
        self.pieces = pieces
        # path -> its size, the oldest written first (a path written again counts once, as the newest)
        self._recent: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._cached = 0
        # writes may run in worker threads
        self._lock = threading.Lock()

    def written(self, path: str, size: int) -> None:
        """`path` was just written whole and fsynced (its pages are clean): remembered, and the oldest pieces
        beyond the bound dropped from the cache."""
        with self._lock:
            self._cached += size - self._recent.pop(path, 0)
            self._recent[path] = size
            leaving: list[str] = []
            while len(self._recent) > 1 and (self._cached > self.kept or len(self._recent) > self.pieces):
                old, old_size = self._recent.popitem(last=False)
                self._cached -= old_size
                leaving.append(old)
        for old in leaving:
            drop_cached(old)


def drop_cached(path: str) -> None:
    """Drop a written file's clean pages from the page cache (a file gone or replaced since is no matter, nor a
    file system that cannot: this is a hint)."""
    if not hasattr(os, "posix_fadvise"):
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass
    finally:
        os.close(fd)
