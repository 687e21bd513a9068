"""The supplier's disk on its own: where pieces go, and paths that would lead out of the store."""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import shutil
import sys
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SkipTest, TestCase

from bitdust_node.storage import direct_io
from bitdust_node.storage.page_cache import WrittenPieces, drop_cached
from bitdust_node.storage.paths import PiecePath
from bitdust_node.storage.store import PieceStore, StoreError

CUSTOMER = "dave@127.0.0.1_8084"


def piece(*parts: str, customer: str = CUSTOMER) -> PiecePath:
    # built directly, not parsed: the store must hold even where the parser would have refused
    return PiecePath("master", customer, parts)


class StorePathTests(TestCase):
    def setUp(self) -> None:
        self.top = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.top, True)
        self.store = PieceStore(self.top / "customers")
        (self.top / "outside").write_bytes(b"not the store's")

    def test_a_piece_is_written_under_its_customer_and_read_back(self) -> None:
        grown = self.store.write_file(piece("3", "F20261201075109PM", "0-1-Data"), b"piece")
        self.assertEqual(grown, 5)
        where = self.top / "customers" / CUSTOMER / "master" / "3" / "F20261201075109PM" / "0-1-Data"
        self.assertEqual(where.read_bytes(), b"piece")
        self.assertEqual(self.store.read(piece("3", "F20261201075109PM", "0-1-Data")), b"piece")
        self.assertEqual(self.store.size_of(piece("3", "F20261201075109PM", "0-1-Data")), 5)

    def test_paths_leading_out_of_the_store_are_refused(self) -> None:
        for bad in (piece("..", "..", "..", "outside"), piece("/etc", "passwd"),
                    piece("x", customer="../.."), piece("..", "..", customer=".")):
            with self.assertRaises(StoreError, msg=str(bad)):
                self.store.write_file(bad, b"x")
            with self.assertRaises(StoreError):
                self.store.read(bad)
        self.assertEqual((self.top / "outside").read_bytes(), b"not the store's")

    def test_removing_a_customer_never_removes_the_store_or_what_is_beside_it(self) -> None:
        self.store.write_file(piece("1", "F1", "0-0-Data"), b"kept")
        for name in ("", ".", "..", "../outside"):
            self.store.remove_customer(name)
        self.assertEqual(self.store.read(piece("1", "F1", "0-0-Data")), b"kept")
        self.assertTrue((self.top / "outside").exists())
        self.store.remove_customer(CUSTOMER)
        self.assertIsNone(self.store.read(piece("1", "F1", "0-0-Data")))

    def test_a_store_whose_folder_is_a_link(self) -> None:
        real = self.top / "disk"
        real.mkdir()
        (self.top / "link").symlink_to(real)
        store = PieceStore(self.top / "link")
        store.write_file(piece("1", "F1", "0-0-Data"), b"through the link")
        self.assertEqual((real / CUSTOMER / "master" / "1" / "F1" / "0-0-Data").read_bytes(), b"through the link")
        self.assertEqual(PieceStore(self.top / "link").used[CUSTOMER], len(b"through the link"))


class _Vanishing:
    """A folder's listing during which `piece` is removed (by the disk worker) once listed, before it is looked at."""

    def __init__(self, entries: Any, piece: Path) -> None:
        self.entries, self.piece = entries, piece

    def __enter__(self) -> _Vanishing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.entries.close()

    def __iter__(self) -> Iterator[os.DirEntry[str]]:
        for entry in self.entries:
            if Path(entry.path) == self.piece:
                self.piece.unlink(missing_ok=True)
            yield entry


def folders_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir())


class FolderTests(TestCase):
    """Folders are made for a piece and go with the last piece in them: they are not counted in the quota."""

    def setUp(self) -> None:
        self.top = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.top, True)
        self.store = PieceStore(self.top / "customers")
        self.mine = self.top / "customers" / CUSTOMER

    def test_pieces_written_and_deleted_leave_no_folder_behind(self) -> None:
        # the audit's cycles: each piece as deep as a PacketID may go, at a path of its own
        for n in range(50):
            deep = piece(*[f"{n}x{level}" for level in range(30)], "0-0-Data")
            self.store.write_file(deep, b"p")
            self.assertEqual(self.store.remove(deep), 1)
        self.assertEqual(folders_under(self.mine), [])
        self.assertTrue(self.mine.is_dir())  # the customer's own folder stays, as its use does
        self.assertEqual(self.store._count(CUSTOMER), 0)

    def test_a_folder_holding_other_pieces_stays(self) -> None:
        self.store.write_file(piece("1", "2", "F1", "0-0-Data"), b"a")
        self.store.write_file(piece("1", "2", "F1", "0-0-Parity"), b"b")
        self.store.write_file(piece("1", "3", "F1", "0-0-Data"), b"c")
        self.store.remove(piece("1", "2", "F1", "0-0-Data"))
        self.assertEqual(self.store.read(piece("1", "2", "F1", "0-0-Parity")), b"b")
        self.store.remove(piece("1", "2", "F1", "0-0-Parity"))
        self.assertEqual(folders_under(self.mine), ["master", "master/1", "master/1/3", "master/1/3/F1"])
        self.assertEqual(zlib.decompress(self.store.listing(CUSTOMER, "master", 0)),
                         b"Q*\nKmaster\nF1 -1\nV1/3/F1 0 0-0 1 missing Parity:0\n")
        # a whole version (DeleteBackup) goes with the folders it leaves empty too
        self.assertEqual(self.store.remove(piece("1", "3", "F1")), 1)
        self.assertEqual(folders_under(self.mine), [])
        self.assertIsNone(self.store.remove(piece("1", "3", "F1")))
        # nothing stored any more: the heading, as official suppliers send while the customer's folder is there
        self.assertEqual(zlib.decompress(self.store.listing(CUSTOMER, "master", 0)), b"Q*\nKmaster\n")
        # nothing ever stored (no folder): nothing, as they send
        self.assertEqual(zlib.decompress(self.store.listing("alice@127.0.0.1_8084", "master", 0)), b"")

    def test_a_folder_or_piece_removed_while_the_listing_is_read_leaves_out_only_itself(self) -> None:
        for parts in (("1", "F1", "0-0-Data"), ("1", "2", "F2", "0-0-Data"), ("1", "3", "F3", "0-0-Data"),
                      ("1", "F1", "0-0-Parity")):
            self.store.write_file(piece(*parts), b"p")
        master = self.mine / "master"
        gone_folder, gone_piece = master / "1" / "2", master / "1" / "F1" / "0-0-Parity"
        real_scandir, real_stat = os.scandir, os.stat

        # (rmtree lists and stats by descriptor: those are let through)
        def scandir(path: Any = ".") -> Any:
            if isinstance(path, (str, os.PathLike)) and Path(path) == gone_folder:
                self.store.remove(piece("1", "2", "F2"))  # by the disk worker, just before this walk got there
            return _Vanishing(real_scandir(path), gone_piece)

        def stat(path: Any, *args: Any, **kwargs: Any) -> Any:
            found = real_stat(path, *args, **kwargs)
            if isinstance(path, (str, os.PathLike)) and Path(path) == gone_piece:
                gone_piece.unlink()  # right after it was seen
            return found

        self.patch(os, "scandir", scandir)
        self.patch(os, "stat", stat)
        self.assertEqual(zlib.decompress(self.store.listing(CUSTOMER, "master", 0)),
                         b"Q*\nKmaster\nF1 -1\nV1/3/F3 0 0-0 1 missing Parity:0\nV1/F1 0 0-0 1 missing Parity:0\n")
        self.assertFalse(gone_piece.exists() or gone_folder.exists())

    def test_a_write_that_failed_leaves_no_folder_it_made(self) -> None:
        self.store.write_file(piece("1", "F1", "0-0-Data"), b"kept")

        def full(*args: object) -> None:
            raise OSError(28, "No space left on device")

        self.patch(os, "replace", full)
        with self.assertRaises(StoreError):
            self.store.write_file(piece("1", "9", "8", "F2", "0-0-Data"), b"lost")
        with self.assertRaises(StoreError):
            self.store.write_file(piece("1", "F1", "1-0-Data"), b"lost")
        self.assertEqual(folders_under(self.mine), ["master", "master/1", "master/1/F1"])
        self.assertEqual(self.store.read(piece("1", "F1", "0-0-Data")), b"kept")


class UsageTests(TestCase):
    """The bytes each customer stores are not found by walking every piece at start."""

    def setUp(self) -> None:
        self.top = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.top, True)
        self.usage = self.top / "supplier" / "usage.json"

    def test_an_orderly_stop_leaves_the_use_for_the_next_start_which_reads_no_folder(self) -> None:
        store = PieceStore(self.top / "customers", self.usage)
        store.used[CUSTOMER] += store.write_file(piece("1", "F1", "0-0-Data"), b"twelve bytes")
        store.close()
        # behind the store's back: a start that trusts the usage file does not see it
        (self.top / "customers" / CUSTOMER / "master" / "1" / "F1" / "1-0-Data").write_bytes(b"unseen")
        again = PieceStore(self.top / "customers", self.usage)
        self.assertEqual(again.used[CUSTOMER], 12)
        self.assertEqual(again.used["nobody@127.0.0.1_8084"], 0)  # not listed: its folder counted, there is none

    def test_after_a_crash_each_customer_is_counted_when_first_needed(self) -> None:
        store = PieceStore(self.top / "customers", self.usage)
        store.used[CUSTOMER] += store.write_file(piece("1", "F1", "0-0-Data"), b"twelve bytes")
        other = "erin@127.0.0.1_8084"
        store.used[other] += store.write_file(piece("1", "F1", "0-0-Data", customer=other), b"four")
        store.close()
        PieceStore(self.top / "customers", self.usage)  # started, then it crashed: no orderly stop
        half = self.top / "customers" / CUSTOMER / "master" / "1" / "F1" / "2-0-Data.incoming"
        half.write_bytes(b"half written")
        after = PieceStore(self.top / "customers", self.usage)
        self.assertEqual(dict(after.used), {})  # nothing trusted, nothing counted yet
        self.assertEqual(after.used[CUSTOMER], 12)
        self.assertFalse(half.exists())
        self.assertEqual(dict(after.used), {CUSTOMER: 12})
        self.assertEqual(after.used.count_unknown(), {other: 4})  # the rest, as a worker thread counts it
        self.assertEqual(dict(after.used), {CUSTOMER: 12})  # recorded by the reactor, not by the count

    def test_an_unreadable_usage_file_means_counting(self) -> None:
        self.usage.parent.mkdir(parents=True)
        self.usage.write_bytes(b"{not json")
        store = PieceStore(self.top / "customers", self.usage)
        self.assertEqual(store.used[CUSTOMER], 0)
        self.usage.write_bytes(b'{"clean": true, "used": {"dave@127.0.0.1_8084": "many"}}')
        self.assertEqual(PieceStore(self.top / "customers", self.usage).used[CUSTOMER], 0)



def resident_pages(path: Path) -> int:
    """How many of the file's pages are in the page cache: mincore(2) over a read-only mapping of it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = path.stat().st_size
    pages = -(-size // mmap.PAGESIZE)
    with open(path, "rb") as f:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, f.fileno(), 0)
    if address in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap failed")
    try:
        vector = (ctypes.c_ubyte * pages)()
        if libc.mincore(address, size, vector) != 0:
            raise OSError(ctypes.get_errno(), "mincore failed")
        return sum(v & 1 for v in vector)
    finally:
        libc.munmap(address, size)


class PageCacheTests(TestCase):
    """Pieces are cold: the latest written stay in the page cache up to a bound, older ones leave it (a supplier
    storing gigabytes does not grow the cache by as much)."""

    def setUp(self) -> None:
        if not sys.platform.startswith("linux"):
            raise SkipTest("mincore and posix_fadvise as Linux has them")
        self.top = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.top, True)
        probe = self.top / "probe"
        with open(probe, "wb") as out:
            out.write(b"p" * 100_000)
            out.flush()
            os.fsync(out.fileno())  # dirty pages are not dropped: written pieces are fsynced first
        drop_cached(str(probe))
        if resident_pages(probe):
            raise SkipTest(f"{self.top}'s file system keeps its pages (tmpfs): nothing to drop")
        self.store = PieceStore(self.top / "customers", direct=False)  # the bound of pieces written buffered

    def write(self, name: str, data: bytes | tuple[bytes, ...]) -> Path:
        self.store.write_file(piece("1", "F1", name), data)
        return self.top / "customers" / CUSTOMER / "master" / "1" / "F1" / name

    def test_pieces_written_before_the_latest_bound_leave_the_page_cache(self) -> None:
        self.store.cached = WrittenPieces(kept=1_500_000)
        first = self.write("0-0-Data", (b"x" * 300_000, b"y" * 700_000))
        self.assertGreater(resident_pages(first), 0)  # the latest: kept, and the check sees cached pages
        second = self.write("1-0-Data", b"z" * 1_000_000)
        self.assertEqual(resident_pages(first), 0)
        self.assertGreater(resident_pages(second), 0)
        self.assertEqual(self.store.read(piece("1", "F1", "0-0-Data")), b"x" * 300_000 + b"y" * 700_000)

    def test_the_count_of_pieces_remembered_is_bounded_too(self) -> None:
        self.store.cached = WrittenPieces(kept=1 << 30, pieces=2)
        paths = [self.write(f"{n}-0-Data", b"p" * 10_000) for n in range(3)]
        self.assertEqual([resident_pages(p) > 0 for p in paths], [False, True, True])

    def test_a_piece_replaced_or_removed_meanwhile_is_no_matter(self) -> None:
        self.store.cached = WrittenPieces(kept=15_000)
        self.write("0-0-Data", b"a" * 10_000)
        self.store.remove(piece("1", "F1", "0-0-Data"))
        self.write("1-0-Data", b"b" * 10_000)
        self.assertIsNone(self.store.read(piece("1", "F1", "0-0-Data")))
        self.assertEqual(self.store.read(piece("1", "F1", "1-0-Data")), b"b" * 10_000)

    def test_a_piece_written_again_counts_once_as_the_newest(self) -> None:
        self.store.cached = WrittenPieces(kept=25_000)
        catalog = self.write("cat-0-Data", b"c" * 10_000)
        older = self.write("0-0-Data", b"x" * 10_000)
        self.write("cat-0-Data", b"d" * 10_000)  # the catalog's copy, rewritten at its path
        self.write("1-0-Data", b"y" * 10_000)
        self.assertGreater(resident_pages(catalog), 0)
        self.assertEqual(resident_pages(older), 0)


class DirectTests(TestCase):
    """Pieces go to the disk and come back around the page cache: none of their pages stay cached, whatever their
    size against the alignment and the buffer; a file system that refuses gets buffered writes."""

    def setUp(self) -> None:
        if not sys.platform.startswith("linux"):
            raise SkipTest("O_DIRECT and mincore as Linux has them")
        self.top = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.top, True)
        self.store = PieceStore(self.top / "customers")

    def path(self, name: str) -> Path:
        return self.top / "customers" / CUSTOMER / "master" / "1" / name

    def test_every_size_is_written_and_read_back_whole_and_leaves_no_page_cached(self) -> None:
        step, align = direct_io.STEP, direct_io.ALIGN
        for size in (0, 1, align - 1, align, align + 1, 3 * align + 7, step - 1, step, step + 1, 2 * step + 4099):
            data = os.urandom(size)
            # in pieces as a transfer hands them on: unaligned, one of them empty
            cut = min(size, 1000)
            self.store.write_file(piece("1", f"{size}-0-Data"), (data[:cut], b"", memoryview(data)[cut:]))
            self.assertEqual(self.path(f"{size}-0-Data").stat().st_size, size)
            self.assertEqual(resident_pages(self.path(f"{size}-0-Data")) if size else 0, 0, f"{size} bytes")
            self.assertEqual(self.store.read(piece("1", f"{size}-0-Data")), data, f"{size} bytes")
        self.assertTrue(self.store.direct)

    def test_a_piece_written_again_shorter_is_its_new_bytes_only(self) -> None:
        self.store.write_file(piece("1", "0-0-Data"), os.urandom(3 * direct_io.ALIGN))
        self.store.write_file(piece("1", "0-0-Data"), b"short")
        self.assertEqual(self.store.read(piece("1", "0-0-Data")), b"short")

    def test_a_short_read_of_whole_blocks_is_read_on_from(self) -> None:
        data = os.urandom(3 * direct_io.ALIGN + 100)
        self.store.write_file(piece("1", "0-0-Data"), data)
        real_readv = os.readv
        # as a network file system may answer: a block at a time
        self.patch(os, "readv", lambda fd, views: real_readv(fd, [views[0][: direct_io.ALIGN]]))
        self.assertEqual(self.store.read(piece("1", "0-0-Data")), data)

    def test_buffers_are_kept_for_reuse_a_few_at_most_whichever_threads_use_them(self) -> None:
        buffers = direct_io._Buffers(kept=2)
        with buffers.one() as first, buffers.one() as second, buffers.one() as third:
            self.assertEqual(len({id(first), id(second), id(third)}), 3)  # three at once: three buffers
        self.assertEqual(len(buffers._idle), 2)
        with self.assertRaises(ValueError):  # the one past the two kept was unmapped
            first[0]
        with buffers.one() as again:
            self.assertTrue(again is second or again is third)
        self.assertEqual(len(buffers._idle), 2)

    def test_no_piece_or_a_folder_reads_as_none(self) -> None:
        self.store.write_file(piece("1", "F1", "0-0-Data"), b"x")
        self.assertIsNone(self.store.read(piece("1", "F1")))
        self.assertIsNone(self.store.read(piece("1", "F2")))

    def test_a_file_system_refusing_direct_io_gets_buffered_writes_from_then_on(self) -> None:
        real_open = os.open

        def refusing(path: Any, flags: int, *args: Any) -> int:
            if flags & os.O_DIRECT:
                raise OSError(errno.EINVAL, "Invalid argument")  # as tmpfs before Linux 6.6 answers
            return real_open(path, flags, *args)

        self.patch(os, "open", refusing)
        data = os.urandom(100_000)
        with capturedLogs() as events:
            self.store.write_file(piece("1", "0-0-Data"), data)
            self.store.write_file(piece("1", "1-0-Data"), data)
        self.assertFalse(self.store.direct)
        said = f"{self.top / 'customers'}'s file system refuses direct I/O: pieces go through the page cache"
        self.assertEqual([formatEvent(e) for e in events], [said])
        self.assertGreater(resident_pages(self.path("1-0-Data")), 0)  # and the page cache's bound keeps them
        self.assertEqual(self.store.read(piece("1", "0-0-Data")), data)
