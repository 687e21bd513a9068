"""The customer's own copy of its catalog, written in worker threads: saves asked together land in order; a large
one is a root and its pages, of which a save writes those that changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.trial.unittest import TestCase

from bitdust_node.crypto import keys
from bitdust_node.storage import catalog_disk
from bitdust_node.storage import catalog_pages as paging
from bitdust_node.storage.catalog import Catalog, CatalogError, text_of, text_size
from bitdust_node.storage.catalog_disk import CATALOG_FILE, PAGES_FOLDER, CatalogDisk
from bitdust_node.storage.catalog_pages import PageRef
from tests.storage.grid import small_pages


class CatalogFileTests(TestCase):
    @defer.inlineCallbacks
    def test_the_newest_of_many_saves_asked_at_once_is_what_stays(self) -> Any:
        folder = Path(self.mktemp())
        disk = CatalogDisk(folder)  # real worker threads: the writes race unless kept in order
        texts = [f"revision {n} ".encode() * (1 + 5000 * (n % 3)) for n in range(30)]
        yield defer.gatherResults([disk.write(text) for text in texts], consumeErrors=True)
        self.assertEqual((folder / CATALOG_FILE).read_bytes(), texts[-1])
        self.assertEqual(sorted(p.name for p in folder.iterdir()), [CATALOG_FILE])  # no temp file left
        self.assertEqual((folder / CATALOG_FILE).stat().st_mode & 0o777, 0o600)

    @defer.inlineCallbacks
    def test_a_text_written_reads_back_whole_and_as_a_catalog_of_the_size_counted(self) -> Any:
        folder = Path(self.mktemp())
        disk = CatalogDisk(folder)
        catalog = Catalog(5)
        for name in ("a", "b/c", "b/d"):
            catalog.ensure(name, "file", 1.0)
        yield disk.write(catalog.serialize())
        self.assertEqual((folder / CATALOG_FILE).read_bytes(), catalog.serialize())
        self.assertEqual(disk.load(), catalog)
        self.assertEqual((folder / CATALOG_FILE).stat().st_mode & 0o777, 0o600)
        self.assertEqual(text_size(5, catalog.entry_texts().values()), len(catalog.serialize()))
        self.assertEqual(text_size(0, []), len(Catalog(0).serialize()))


class PagedCopyTests(TestCase):
    """A large catalog's copy in the home: its root, and its pages in catalog.d by their texts' SHA-256."""

    def setUp(self) -> None:
        small_pages(self)
        self.folder = Path(self.mktemp())
        self.catalog = Catalog(3)
        for number in range(300):
            self.catalog.ensure(f"photos/{number // 50}/img{number}.jpg", "file", 1000.0 + number)
        self.written: list[str] = []
        real = keys.write_secret_file

        def counted(path: Path, data: Any) -> None:
            self.written.append(path.name)
            real(path, data)

        self.patch(catalog_disk, "write_secret_file", counted)

    def write(self, disk: CatalogDisk, catalog: Catalog, before: list[PageRef] | None = None) -> list[PageRef]:
        entry_texts = catalog.entry_texts()
        count = paging.page_count(len(text_of(catalog.revision, entry_texts.values())))
        cut = paging.paged(catalog.revision, entry_texts, count, before or [], disk.lacks, catalog.values_of)
        pages, texts = cut.pages, cut.texts
        self.successResultOf(disk.write_paged(catalog.revision, pages, texts))
        return pages

    def page_files(self) -> set[str]:
        return {p.name for p in (self.folder / PAGES_FOLDER).iterdir()}

    def test_a_paged_copy_reads_back_and_a_change_writes_one_page_and_the_root(self) -> None:
        disk = CatalogDisk(self.folder, worker=defer.maybeDeferred)
        pages = self.write(disk, self.catalog)
        self.assertGreater(len(pages), 4)
        self.assertEqual(self.page_files(), {page.digest for page in pages})
        self.assertEqual(paging.parse_root((self.folder / CATALOG_FILE).read_bytes()), (3, pages))
        for path in (self.folder / PAGES_FOLDER).iterdir():
            self.assertEqual(path.stat().st_mode & 0o777, 0o600)
        self.assertEqual((self.folder / PAGES_FOLDER).stat().st_mode & 0o777, 0o700)
        self.assertEqual(CatalogDisk(self.folder).load(), self.catalog)
        self.written.clear()
        self.catalog.revision += 1
        self.catalog.ensure("photos/late.jpg", "file", 9000.0)
        after = self.write(disk, self.catalog, pages)
        changed = [page for page in after if page not in pages]
        self.assertEqual(len(changed), 1)
        self.assertEqual(self.written, [changed[0].digest, CATALOG_FILE])  # not the other pages again
        self.assertEqual(self.page_files(), {page.digest for page in after})  # the page it replaced is gone
        self.assertEqual(CatalogDisk(self.folder).load(), self.catalog)

    def test_a_catalog_that_shrinks_is_one_text_again_and_its_pages_go(self) -> None:
        disk = CatalogDisk(self.folder, worker=defer.maybeDeferred)
        self.write(disk, self.catalog)
        small = Catalog(4)
        small.ensure("notes.txt", "file", 1.0)
        self.successResultOf(disk.write(small.serialize()))
        self.assertEqual(self.page_files(), set())
        self.assertEqual(CatalogDisk(self.folder).load(), small)

    def test_a_damaged_or_missing_page_leaves_my_copy_unread_for_the_suppliers_one(self) -> None:
        disk = CatalogDisk(self.folder, worker=defer.maybeDeferred)
        pages = self.write(disk, self.catalog)
        damaged = self.folder / PAGES_FOLDER / pages[2].digest
        damaged.write_bytes(damaged.read_bytes()[:-1] + b" ")
        self.assertEqual(CatalogDisk(self.folder).load(), Catalog())
        pages = self.write(CatalogDisk(self.folder, worker=defer.maybeDeferred), self.catalog)
        (self.folder / PAGES_FOLDER / pages[2].digest).unlink()
        self.assertEqual(CatalogDisk(self.folder).load(), Catalog())
        self.flushLoggedErrors()

    def test_an_unreadable_copy_is_set_aside_with_its_pages_and_no_write_touches_it(self) -> None:
        disk = CatalogDisk(self.folder, worker=defer.maybeDeferred)
        pages = self.write(disk, self.catalog)
        damaged = self.folder / PAGES_FOLDER / pages[2].digest
        damaged.write_bytes(damaged.read_bytes()[:-1] + b" ")
        before = self.files(self.folder / CATALOG_FILE, self.folder / PAGES_FOLDER)
        fresh = CatalogDisk(self.folder, worker=defer.maybeDeferred)
        self.assertEqual(fresh.load(), Catalog())
        self.flushLoggedErrors()
        small = Catalog(1)
        small.ensure("only.txt", "file", 1.0)
        self.successResultOf(fresh.write(small.serialize()))
        self.assertEqual(CatalogDisk(self.folder).load(), small)
        aside = (self.folder / (CATALOG_FILE + ".unreadable-1"), self.folder / (PAGES_FOLDER + ".unreadable-1"))
        self.assertEqual(self.files(*aside), before)
        # a second unreadable copy goes beside the first, not over it
        (self.folder / CATALOG_FILE).write_bytes(b"7\n{broken")
        self.assertEqual(CatalogDisk(self.folder).load(), Catalog())
        self.flushLoggedErrors()
        self.assertEqual((self.folder / (CATALOG_FILE + ".unreadable-2")).read_bytes(), b"7\n{broken")
        self.assertEqual(self.files(*aside), before)

    @staticmethod
    def files(root: Path, pages: Path) -> tuple[bytes, dict[str, bytes]]:
        """A copy's root and its pages' files, by name."""
        return root.read_bytes(), {page.name: page.read_bytes() for page in pages.iterdir()}

    def test_a_copy_that_cannot_be_read_for_now_is_an_error_and_stays_where_it_is(self) -> None:
        # from helper-38's review: a passing error (no descriptor left, no permission) is no damage to set aside
        import errno

        good = Catalog(7)
        good.ensure("keys.txt", "file", 1.0)
        self.successResultOf(CatalogDisk(self.folder, worker=defer.maybeDeferred).write(good.serialize()))
        real = Path.read_bytes

        def failing(path: Path) -> bytes:
            if path.name == CATALOG_FILE:
                raise OSError(errno.EMFILE, "Too many open files")
            return real(path)

        self.patch(Path, "read_bytes", failing)
        self.assertRaises(OSError, CatalogDisk(self.folder).load)
        self.flushLoggedErrors()
        self.patch(Path, "read_bytes", real)
        self.assertEqual(CatalogDisk(self.folder).load(), good)
        self.assertEqual(sorted(p.name for p in self.folder.iterdir()), [CATALOG_FILE])

    def test_a_root_naming_a_page_by_anything_but_a_digest_is_refused(self) -> None:
        (self.folder / PAGES_FOLDER).mkdir(parents=True)
        (self.folder / "secret").write_bytes(b"not a page")
        root = paging.root_text(3, [PageRef("0/C3-x/0-0-Data", "../secret", 10)])
        (self.folder / CATALOG_FILE).write_bytes(root)
        events: list[dict[str, Any]] = []
        self.patch(catalog_disk, "log", Logger(observer=events.append))
        self.assertEqual(CatalogDisk(self.folder).load(), Catalog())
        # refused unread: the file's text, whatever it is, would fail its digest too, but a name such as /dev/zero
        # must never be opened
        self.assertEqual(len(events), 1)
        self.assertIn("not by a SHA-256", events[0]["why"])

    def test_what_a_crash_left_in_the_pages_folder_goes_with_the_next_write(self) -> None:
        disk = CatalogDisk(self.folder, worker=defer.maybeDeferred)
        self.write(disk, self.catalog)
        (self.folder / PAGES_FOLDER / ".f.123.tmp").write_bytes(b"half a page")
        (self.folder / PAGES_FOLDER / ("0" * 64)).write_bytes(b"a page no root names")
        disk = CatalogDisk(self.folder, worker=defer.maybeDeferred)
        self.assertEqual(disk.load(), self.catalog)
        pages = self.write(disk, self.catalog)
        self.assertEqual(self.page_files(), {page.digest for page in pages})

    def test_a_page_the_disk_lacks_and_no_text_was_kept_for_fails_the_write_and_the_last_copy_stays(self) -> None:
        disk = CatalogDisk(self.folder, worker=defer.maybeDeferred)
        self.write(disk, self.catalog)
        before = (self.folder / CATALOG_FILE).read_bytes()
        self.catalog.revision += 1
        self.catalog.ensure("photos/late.jpg", "file", 9000.0)
        entry_texts = self.catalog.entry_texts()
        count = paging.page_count(len(text_of(self.catalog.revision, entry_texts.values())))
        pages = paging.paged(self.catalog.revision, entry_texts, count, [], lambda page: False,
                             self.catalog.values_of).pages
        self.failureResultOf(disk.write_paged(self.catalog.revision, pages, {}), CatalogError)
        self.assertEqual((self.folder / CATALOG_FILE).read_bytes(), before)
        self.assertEqual(CatalogDisk(self.folder).load().revision, 3)

    def test_a_damaged_page_is_written_again_by_the_next_write_of_it(self) -> None:
        # the suppliers' copy taken after a damaged page left mine unread must heal mine, not name the damage again
        disk = CatalogDisk(self.folder, worker=defer.maybeDeferred)
        pages = self.write(disk, self.catalog)
        damaged = self.folder / PAGES_FOLDER / pages[2].digest
        damaged.write_bytes(damaged.read_bytes()[:-1] + b" ")
        fresh = CatalogDisk(self.folder, worker=defer.maybeDeferred)
        self.assertEqual(fresh.load(), Catalog())
        self.flushLoggedErrors()
        self.write(fresh, self.catalog, pages)
        self.assertEqual(CatalogDisk(self.folder).load(), self.catalog)

    def test_a_folder_in_the_pages_folder_does_not_fail_every_write(self) -> None:
        disk = CatalogDisk(self.folder, worker=defer.maybeDeferred)
        self.write(disk, self.catalog)
        (self.folder / PAGES_FOLDER / "lost+found").mkdir()
        self.catalog.revision += 1
        self.catalog.ensure("photos/late.jpg", "file", 9000.0)
        self.write(disk, self.catalog)
        self.assertEqual(CatalogDisk(self.folder).load(), self.catalog)

    def test_the_folders_are_synced_before_a_root_names_new_pages_and_before_old_ones_go(self) -> None:
        # each file is fsynced by write_secret_file, but a name is the folder's: a power cut may keep the root's
        # rename and lose a page's, or keep the old pages' removal and lose the new root's rename
        synced = self.written
        self.patch(catalog_disk, "_sync_folder", lambda folder: synced.append(f"sync {folder.name}"))
        disk = CatalogDisk(self.folder, worker=defer.maybeDeferred)
        pages = self.write(disk, self.catalog)
        top = f"sync {self.folder.name}"
        self.assertEqual(self.written[len(pages):], [f"sync {PAGES_FOLDER}", top, CATALOG_FILE, top])
        self.written.clear()
        self.catalog.revision += 1
        self.catalog.ensure("photos/late.jpg", "file", 9000.0)
        after = self.write(disk, self.catalog, pages)
        changed = [page.digest for page in after if page not in pages]
        self.assertEqual(self.written, [*changed, f"sync {PAGES_FOLDER}", CATALOG_FILE, top])
        self.written.clear()
        small = Catalog(9)
        self.successResultOf(disk.write(small.serialize()))
        self.assertEqual(self.written, [CATALOG_FILE, top])  # then its pages go
        self.written.clear()
        self.successResultOf(disk.write(small.serialize()))
        self.assertEqual(self.written, [CATALOG_FILE])  # no pages: a small catalog's save syncs no folder
