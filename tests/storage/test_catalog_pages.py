"""A large catalog's copies as pages and a root: cut and joined back the same, a change sending only its page,
pages no root names removed, a fresh home taking it back (a page from another supplier when one lies), and a small
catalog still one index piece as before."""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.storage import catalog as catalog_module
from bitdust_node.storage import catalog_pages as paging
from bitdust_node.storage import page_checks
from bitdust_node.storage.catalog import BlockInfo, Catalog, CatalogError, Entry, Version, text_of
from bitdust_node.storage.catalog_copies import CATALOG_TIMEOUT, PAGES_AT_ONCE, PAGES_FILE, CatalogCopies
from bitdust_node.storage.catalog_disk import PAGES_FOLDER, CatalogDisk
from bitdust_node.storage.catalog_keeper import CatalogNotRecovered
from bitdust_node.storage.catalog_pages import PageRef
from bitdust_node.storage.customer import RECOVERY_RETRY, Customer
from bitdust_node.storage.suppliers import NoSupplier
from tests.storage.grid import MemoryGrid, customer_settings, drops_when_refusing_more, make_customer, small_pages
from tests.storage.test_customer_cores import done


class NotedTexts(Mapping[str, bytes]):
    """Entry texts (Catalog.entry_texts_when_read) that note the path of each entry whose JSON is made."""

    def __init__(self, texts: Mapping[str, bytes], made: list[str]) -> None:
        self.texts, self.made = texts, made

    def __getitem__(self, path: str) -> bytes:
        self.made.append(path)
        return self.texts[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self.texts)

    def __len__(self) -> int:
        return len(self.texts)


def a_catalog(files: int, revision: int = 7) -> Catalog:
    catalog = Catalog(revision)
    for number in range(files):
        catalog.ensure(f"photos/{number // 50}/img{number}.jpg", "file", 1000.0 + number)
    return catalog


class PagingTests(SynchronousTestCase):
    def test_page_counts_are_powers_of_two_that_hold_the_text(self) -> None:
        self.assertEqual([paging.page_count(s) for s in (0, 1, paging.PAGE_TEXT)], [1, 1, 1])
        self.assertEqual(paging.page_count(paging.PAGE_TEXT + 1), 2)
        self.assertEqual(paging.page_count(5 * paging.PAGE_TEXT), 8)

    def test_the_pages_join_back_into_the_catalog(self) -> None:
        catalog = a_catalog(1000)
        texts = list(paging.page_texts(catalog.entry_texts(), 16))
        self.assertEqual(len(texts), 16)
        # every page has some entries: the paths spread over them
        self.assertTrue(all(len(Catalog.parse(text).entries) > 20 for text in texts))
        back = paging.joined(catalog.revision, texts)
        self.assertEqual((back.revision, back.entries), (catalog.revision, catalog.entries))

    def test_the_size_a_cut_gives_is_that_of_the_whole_text(self) -> None:
        for files in (0, 1, 2, 1000):
            catalog = a_catalog(files, revision=123)
            whole = len(catalog.serialize())
            for count in (1, 16):
                cut = paging.paged(catalog.revision, catalog.entry_texts_when_read(), count, [], lambda page: False,
                                   catalog.values_of)
                self.assertEqual((cut.size, len(cut.pages)), (whole, count), (files, count))

    def test_a_cut_that_keeps_the_last_cuts_pages_gives_the_whole_texts_size_and_the_same_pages(self) -> None:
        catalog = a_catalog(1000, revision=123)
        last = paging.paged(catalog.revision, catalog.entry_texts_when_read(), 16, [], lambda page: False,
                            catalog.values_of)
        for change in (lambda: None, lambda: catalog.ensure("photos/new.jpg", "file", 5000.0),
                       lambda: catalog.remove("photos/0/img3.jpg")):
            change()
            catalog.revision += 1
            made: list[str] = []
            cut = paging.paged(catalog.revision, NotedTexts(catalog.entry_texts_when_read(), made), 16, last.pages,
                               lambda page: False, catalog.values_of, last)
            anew = paging.paged(catalog.revision, catalog.entry_texts_when_read(), 16, last.pages,
                                lambda page: False, catalog.values_of)
            self.assertEqual((cut.size, cut.pages), (len(catalog.serialize()), anew.pages))
            self.assertLess(len(made), len(catalog.entries) // 4)  # the pages kept were not made again
            last = cut

    def test_a_last_cut_in_another_count_is_not_used(self) -> None:
        catalog = a_catalog(1000)
        last = paging.paged(catalog.revision, catalog.entry_texts_when_read(), 8, [], lambda page: False,
                            catalog.values_of)
        cut = paging.paged(catalog.revision, catalog.entry_texts_when_read(), 16, [], lambda page: False,
                           catalog.values_of, last)
        anew = paging.paged(catalog.revision, catalog.entry_texts_when_read(), 16, [], lambda page: False,
                            catalog.values_of)
        self.assertEqual((cut.size, cut.pages), (anew.size, anew.pages))

    def test_a_page_named_before_with_another_size_is_named_anew(self) -> None:
        catalog = a_catalog(1000)
        first = paging.paged(7, catalog.entry_texts(), 16, [], lambda page: False, catalog.values_of).pages
        lying = [attrs.evolve(first[0], size=first[0].size + 1), *first[1:]]
        again = paging.paged(8, catalog.entry_texts(), 16, lying, lambda page: False, catalog.values_of).pages
        self.assertEqual(again[1:], first[1:])  # the same texts keep their names
        self.assertEqual((again[0].digest, again[0].size), (first[0].digest, first[0].size))
        self.assertNotEqual(again[0].piece, first[0].piece)

    def test_a_change_changes_one_page_only(self) -> None:
        catalog = a_catalog(1000)
        before = list(paging.page_texts(catalog.entry_texts(), 16))
        catalog.ensure("photos/new.jpg", "file", 5000.0)
        catalog.revision += 1
        after = list(paging.page_texts(catalog.entry_texts(), 16))
        changed = [n for n in range(16) if before[n] != after[n]]
        self.assertEqual(changed, [paging.page_of("photos/new.jpg", 16)])

    def test_a_root_reads_back_and_a_whole_catalog_is_no_root(self) -> None:
        pages = [PageRef(paging.piece_of(5, n, "ab" * 32), "ab" * 32, 100 + n) for n in range(4)]
        self.assertEqual(paging.parse_root(paging.root_text(9, pages)), (9, pages))
        self.assertIsNone(paging.parse_root(a_catalog(3).serialize()))

    def test_a_bad_root_is_refused(self) -> None:
        for body in (b'{"format":"bitdust-node/pages-1","pages":[]}',
                     b'{"format":"bitdust-node/pages-1","pages":[["../x","d",1]]}',
                     b'{"format":"bitdust-node/pages-1","pages":[["0/C1/0-0-Data","d",true]]}',
                     b'{"format":"bitdust-node/pages-1","pages":{"a":1}}',
                     b'{"format":"bitdust-node/pages-1","pages":[1, 2'):
            with self.assertRaises(CatalogError, msg=body):
                paging.parse_root(b"3\n" + body)
        # what does not open as a root is a whole catalog's text to Catalog.parse, which refuses this one
        self.assertIsNone(paging.parse_root(b"3\n[1, 2"))
        self.assertRaises(CatalogError, Catalog.parse, b"3\n[1, 2")
        pages = [[f"0/C1/{n}-0-Data", "d", 1] for n in range(paging.MAX_PAGES + 1)]
        many = {"format": paging.ROOT_FORMAT, "pages": pages}
        with self.assertRaises(CatalogError):
            paging.parse_root(b"3\n" + json.dumps(many, separators=(",", ":")).encode())


class PagedCopiesTests(SynchronousTestCase):
    def setUp(self) -> None:
        small_pages(self)
        self.root = Path(self.mktemp())
        self.root.mkdir()
        self.grid = MemoryGrid(self.root)
        self.customer = make_customer(self.grid)
        self.assertEqual(done(defer.ensureDeferred(self.customer.connect())), 4)
        self.sent: collections.Counter[str] = collections.Counter()
        copies = self.customer.keeper.copies
        send_page = copies._send_page

        def counted(idurl: str, page: PageRef, sealed: bytes) -> Any:
            self.sent[page.piece] += 1
            return send_page(idurl, page, sealed)

        copies._send_page = counted  # type: ignore[method-assign]

    def tearDown(self) -> None:
        self.assertEqual(self.grid.errors, [])

    def fill(self, files: int) -> None:
        catalog = self.customer.catalog
        for number in range(files):
            catalog.ensure(f"photos/{number // 50}/img{number}.jpg", "file", 1000.0 + number)
        self.save()

    def save(self) -> None:
        self.assertEqual(done(defer.ensureDeferred(self.customer.keeper.save())), 4)

    def elsewhere(self, folder: Path) -> Customer:
        """Me again with my home in `folder` (a fresh machine, a key backup restored), hiring my suppliers first."""
        preferred = " ".join(s.idurl for s in self.customer.suppliers.slots)
        return make_customer(self.grid, folder, **{"preferred-suppliers": preferred})

    def page_pieces(self) -> dict[str, set[str]]:
        """Each supplier's page pieces, by their path under my folder."""
        held = {}
        for slot in self.customer.suppliers.slots:
            supplier = self.grid.supplier(slot.idurl)
            held[slot.idurl] = {"/".join(p.parts[-3:]) for p in supplier.pieces() if p.parts[-3] == paging.PAGES_PATH}
        return held

    def test_a_large_catalog_is_pages_and_a_root_and_a_change_sends_its_page_only(self) -> None:
        self.fill(400)
        copies = self.customer.keeper.copies
        count = len(copies.pages)
        self.assertGreater(count, 4)
        self.assertEqual(sum(self.sent.values()), 4 * count)  # every page to each of the 4 holders
        named = {page.piece for page in copies.pages}
        self.assertEqual(list(self.page_pieces().values()), [named] * 4)
        self.sent.clear()
        self.customer.catalog.ensure("photos/late.jpg", "file", 9000.0)
        self.save()
        changed = [page.piece for page in copies.pages if page.piece not in named]
        self.assertEqual(len(changed), 1)
        self.assertEqual(dict(self.sent), {changed[0]: 4})
        # the page it replaced is gone from every supplier; the others stay where they were
        now = {page.piece for page in copies.pages}
        self.assertEqual(list(self.page_pieces().values()), [now] * 4)
        self.assertEqual(len(named - now), 1)

    def as_made_at_once(self) -> list[PageRef]:
        """The pages the catalog as it is now cuts into when every entry's JSON is made at once."""
        catalog = self.customer.catalog
        texts = dict(catalog.entry_texts_when_read())
        count = paging.page_count(len(text_of(catalog.revision, texts.values())))
        return paging.paged(catalog.revision, texts, count, self.customer.keeper.copies.pages, lambda page: False,
                            catalog.values_of).pages

    def test_a_paged_catalogs_save_makes_its_entries_a_page_at_a_time(self) -> None:
        self.fill(400)
        self.customer.catalog.ensure("photos/late.jpg", "file", 9000.0)
        self.never_all_at_once()
        self.save()
        self.assertEqual(self.customer.keeper.copies.pages, self.as_made_at_once())
        self.assertEqual(self.customer.keeper.disk.size, sum(page.size for page in self.customer.keeper.copies.pages))
        self.assertEqual(CatalogDisk(self.customer.keeper.disk.path.parent).load(), self.customer.catalog)

    def test_a_save_makes_again_only_the_pages_whose_entries_changed_in_place_or_not(self) -> None:
        self.fill(400)
        self.customer.catalog.ensure("photos/late.jpg", "file", 9000.0)
        self.save()  # a save that knows the last cut's values
        made: list[str] = []
        when_read = Catalog.entry_texts_when_read

        def counted(catalog: Catalog) -> Mapping[str, bytes]:
            return NotedTexts(when_read(catalog), made)

        self.patch(Catalog, "entry_texts_when_read", counted)
        entries = self.customer.catalog.entries
        block = BlockInfo(10, 26, b"key", b"nonce", ["b3:" + "1" * 64, "b3:" + "2" * 64])
        late = entries["photos/late.jpg"]
        late.versions.append(Version("F20261207075109PM", 10, 1.0, 10, ["s1", "s2"], [block]))
        changes: list[tuple[str, Callable[[], object]]] = [
            ("photos/late.jpg", lambda: None),  # the version added above
            ("photos/late.jpg", lambda: late.versions[0].blocks[0].shares.__setitem__(1, "b3:" + "3" * 64)),
            ("photos/late.jpg", lambda: late.versions[0].suppliers.__setitem__(0, "s3")),
            ("photos/late.jpg", lambda: setattr(late.versions[0], "complete", True)),
            ("photos/late.jpg", lambda: late.versions[0].blocks.append(block)),
            ("photos/late.jpg", lambda: setattr(block, "nonce", b"other")),  # held twice: one page changes
            ("photos/0/img3.jpg", lambda: setattr(entries["photos/0/img3.jpg"], "created", 5.5)),
            ("photos/0/img4.jpg", lambda: self.customer.catalog.remove("photos/0/img4.jpg")),
        ]
        for path, change in changes:
            change()
            made.clear()
            self.save()
            count = len(self.customer.keeper.copies.pages)
            self.assertEqual({paging.page_of(p, count) for p in made}, {paging.page_of(path, count)}, path)
            self.assertEqual(self.customer.keeper.copies.pages, self.as_made_at_once(), path)
            # the size of the pages not made again tells that of the whole text exactly (it sets the page count)
            self.assertEqual(self.customer.keeper.last_save.size, len(self.customer.catalog.serialize()), path)
        self.assertEqual(CatalogDisk(self.customer.keeper.disk.path.parent).load(), self.customer.catalog)

    def test_a_page_my_disk_did_not_take_is_written_by_the_next_save_though_its_entries_did_not_change(self) -> None:
        self.fill(400)
        self.customer.catalog.ensure("photos/late.jpg", "file", 9000.0)
        disk = self.customer.keeper.disk
        worker = disk._worker

        def full(work: Any, *args: Any) -> defer.Deferred[Any]:
            return defer.fail(OSError(28, "No space left on device"))

        disk._worker = full  # type: ignore[method-assign]
        self.failureResultOf(defer.ensureDeferred(self.customer.keeper.save()), OSError)  # the suppliers took it
        disk._worker = worker  # type: ignore[method-assign]
        self.save()  # nothing changed since: the page my disk lacks is made again for it, though every copy has it
        self.assertEqual(CatalogDisk(disk.path.parent).load(), self.customer.catalog)

    def entries_made(self) -> list[str]:
        """The paths whose JSON the saves from now on make (each time one is made)."""
        made: list[str] = []
        fields = catalog_module._entry_fields

        def counted(entry: Entry) -> dict[str, Any]:
            made.append(entry.path)
            return fields(entry)

        self.patch(catalog_module, "_entry_fields", counted)
        return made

    def never_all_at_once(self) -> None:
        def all_at_once(catalog: Catalog) -> dict[str, bytes]:
            raise AssertionError("every entry's JSON made at once")

        self.patch(Catalog, "entry_texts", all_at_once)

    def restarted(self) -> Customer:
        """Me again in the same home, as after a restart, with my suppliers."""
        again = self.elsewhere(self.customer.keeper.disk.path.parent)
        self.assertEqual(done(defer.ensureDeferred(again.connect())), 4)
        return again

    def test_the_first_save_after_a_start_makes_again_only_the_page_that_changed(self) -> None:
        self.fill(400)
        made = self.entries_made()
        self.customer = again = self.restarted()
        self.assertEqual(made, [])  # my copy read back, no JSON made
        as_read = again.keeper.disk.as_read
        assert as_read is not None
        self.assertEqual((as_read.size, as_read.pages), (len(again.catalog.serialize()), again.keeper.copies.pages))
        made.clear()
        again.catalog.ensure("photos/late.jpg", "file", 9000.0)
        self.save()
        count = len(again.keeper.copies.pages)
        self.assertEqual({paging.page_of(p, count) for p in made}, {paging.page_of("photos/late.jpg", count)})
        self.assertEqual(again.keeper.copies.pages, self.as_made_at_once())
        self.assertEqual(again.keeper.last_save.size, len(again.catalog.serialize()))
        self.assertEqual(CatalogDisk(again.keeper.disk.path.parent).load(), again.catalog)

    def test_a_copy_cut_otherwise_is_made_again_whole_at_the_first_save_after_a_start(self) -> None:
        # my copy's first two pages as another cut would have them: an entry of the second one in the first
        self.fill(400)
        keeper = self.customer.keeper
        count = len(keeper.copies.pages)
        groups = paging._paths_by_page(self.customer.catalog.entries, count)
        moved = groups[1].pop()
        groups[0] = sorted([*groups[0], moved])
        texts = {n: text_of(0, [self.customer.catalog.entry_texts()[p] for p in paths])
                 for n, paths in enumerate(groups)}
        pages = [PageRef(paging.piece_of(99, n, paging.digest_of(text)), paging.digest_of(text), len(text))
                 for n, text in texts.items()]
        self.successResultOf(keeper.disk.write_paged(self.customer.catalog.revision, pages, texts))
        self.customer = again = self.restarted()
        self.assertIsNone(again.keeper.disk.as_read)
        self.assertEqual(again.catalog.entries, self.customer.catalog.entries)
        made = self.entries_made()
        again.catalog.ensure("photos/late.jpg", "file", 9000.0)
        self.save()
        self.assertEqual(sorted(made), sorted(again.catalog.entries))  # every page made
        self.assertEqual(again.keeper.copies.pages, self.as_made_at_once())
        reloaded = CatalogDisk(again.keeper.disk.path.parent)
        self.assertEqual(reloaded.load(), again.catalog)
        self.assertIsNotNone(reloaded.as_read)  # cut as a save cuts it now

    def test_a_root_that_lies_about_a_pages_size_is_no_cut_to_keep(self) -> None:
        self.fill(400)
        root = self.customer.keeper.disk.path
        revision, pages = paging.parse_root(root.read_bytes()) or (0, [])
        pages[0] = attrs.evolve(pages[0], size=pages[0].size * 1000)
        root.write_bytes(paging.root_text(revision, pages))
        again = self.restarted()
        self.assertIsNone(again.keeper.disk.as_read)
        self.assertEqual(again.catalog, self.customer.catalog)

    def test_an_entry_with_a_value_that_has_no_hash_is_saved_each_time_all_the_same(self) -> None:
        # my copy edited by hand: a list where a number belongs reads back, and its page cannot be told unchanged
        self.fill(400)
        odd = self.customer.catalog.entries["photos/0/img3.jpg"]
        odd.created = [1, 2]  # type: ignore[assignment]
        made = self.entries_made()
        for _ in range(2):
            made.clear()
            self.save()
            count = len(self.customer.keeper.copies.pages)
            self.assertEqual({paging.page_of(p, count) for p in made}, {paging.page_of(odd.path, count)})
            self.assertEqual(CatalogDisk(self.customer.keeper.disk.path.parent).load(), self.customer.catalog)

    def test_a_catalog_grown_past_its_page_count_is_cut_in_more_pages_a_page_at_a_time(self) -> None:
        self.fill(400)
        count = len(self.customer.keeper.copies.pages)
        self.never_all_at_once()
        self.fill(800)  # the same 400 and as many more: twice the text
        pages = self.customer.keeper.copies.pages
        self.assertEqual(len(pages), 2 * count)
        self.assertEqual(pages, self.as_made_at_once())
        self.assertEqual({p.name for p in self.customer.keeper.disk.pages_path.iterdir()}, {p.digest for p in pages})
        self.assertEqual(CatalogDisk(self.customer.keeper.disk.path.parent).load(), self.customer.catalog)

    def test_a_fresh_home_cuts_the_paged_catalog_it_took_a_page_at_a_time(self) -> None:
        self.fill(400)
        self.never_all_at_once()
        fresh = self.elsewhere(self.root / "fresh")
        self.assertEqual(done(defer.ensureDeferred(fresh.connect())), 4)  # its root says how many pages
        self.assertEqual(fresh.keeper.copies.pages, self.customer.keeper.copies.pages)
        self.assertEqual(CatalogDisk(fresh.keeper.disk.path.parent).load(), self.customer.catalog)

    def test_a_catalog_whose_pages_together_need_more_pages_than_its_text_is_cut_once(self) -> None:
        # each page's text has its own opening and closing: the pages' texts together are larger than the whole text,
        # so that just under a power of two of PAGE_TEXT the size of my copy's pages says twice the count it was cut in
        self.fill(286)
        disk, pages = self.customer.keeper.disk, self.customer.keeper.copies.pages
        whole = len(self.customer.catalog.serialize())
        self.assertEqual(paging.page_count(whole), len(pages))
        self.assertEqual(paging.page_count(sum(page.size for page in pages)), 2 * len(pages))
        made = self.entries_made()
        self.save()  # nothing changed: no page made again
        self.assertEqual(made, [])
        self.customer.keeper._last_cut = None  # as after a restart: every page made, each entry once
        self.save()
        self.assertEqual(sorted(made), sorted(self.customer.catalog.entries))
        self.assertEqual(self.customer.keeper.copies.pages, pages)
        self.assertEqual(disk.page_count, len(pages))

    def test_my_own_copy_is_paged_too_and_a_change_writes_its_page_and_the_root(self) -> None:
        self.fill(400)
        disk = self.customer.keeper.disk
        files = {p.name for p in disk.pages_path.iterdir()}
        self.assertEqual(files, {page.digest for page in self.customer.keeper.copies.pages})
        self.customer.catalog.ensure("photos/late.jpg", "file", 9000.0)
        self.save()
        now = {p.name for p in disk.pages_path.iterdir()}
        self.assertEqual(now, {page.digest for page in self.customer.keeper.copies.pages})
        self.assertEqual((len(now - files), len(files - now)), (1, 1))
        self.assertEqual(CatalogDisk(disk.path.parent).load(), self.customer.catalog)

    def test_a_fresh_home_keeps_the_paged_catalog_it_took_in_pages(self) -> None:
        self.fill(400)
        fresh = self.elsewhere(self.root / "fresh")
        self.assertEqual(done(defer.ensureDeferred(fresh.connect())), 4)
        disk = fresh.keeper.disk
        self.assertEqual({p.name for p in disk.pages_path.iterdir()},
                         {page.digest for page in self.customer.keeper.copies.pages})
        self.assertEqual(CatalogDisk(disk.path.parent).load(), self.customer.catalog)

    def test_a_fresh_home_takes_the_paged_catalog_back_and_a_lying_supplier_is_passed_over(self) -> None:
        self.fill(400)
        self.customer.catalog.ensure("photos/late.jpg", "file", 9000.0)
        self.save()
        self.grid.supplier(self.customer.suppliers.slots[0].idurl).node.lying = True
        fresh = self.elsewhere(self.root / "fresh")
        self.assertEqual(done(defer.ensureDeferred(fresh.connect())), 4)
        self.assertEqual(fresh.catalog.revision, self.customer.catalog.revision)
        self.assertEqual(fresh.catalog.entries, self.customer.catalog.entries)

    def test_a_fresh_home_restarted_before_its_first_save_still_knows_the_pages_it_took(self) -> None:
        self.fill(400)
        fresh = self.elsewhere(self.root / "fresh")
        self.assertEqual(done(defer.ensureDeferred(fresh.connect())), 4)
        copies = fresh.keeper.copies
        again = CatalogCopies(copies.network, copies.me, copies.identities, self.root / "fresh", copies.holders,
                              copies._worker)
        # else its first save names every page anew and the taken ones stay on the suppliers, in no record
        self.assertEqual((again.pages, again.held), (self.customer.keeper.copies.pages, {}))

    def test_a_small_catalogs_saves_write_no_pages_state(self) -> None:
        # one save each upload: a file written and synced each time for nothing would sit on every upload's path
        for number in range(3):
            self.customer.catalog.ensure(f"notes{number}.txt", "file", 1000.0)
            self.save()
        self.assertFalse((self.root / "dave" / "customer" / PAGES_FILE).exists())
        self.assertEqual(self.sent, collections.Counter())

    def test_a_restart_keeps_track_of_the_pages_each_supplier_holds(self) -> None:
        self.fill(400)
        copies = self.customer.keeper.copies
        self.assertTrue((self.root / "dave" / "customer" / PAGES_FILE).exists())
        again = CatalogCopies(copies.network, copies.me, copies.identities, self.root / "dave" / "customer",
                              copies.holders, copies._worker)
        self.assertEqual((again.pages, again.held), (copies.pages, copies.held))

    def test_a_catalog_that_shrinks_goes_back_to_one_index_piece_and_its_pages_go(self) -> None:
        self.fill(400)
        self.assertTrue(all(self.page_pieces().values()))
        self.customer.catalog.remove("photos")
        self.save()
        self.assertEqual(list(self.page_pieces().values()), [set()] * 4)
        fresh = self.elsewhere(self.root / "fresh")
        done(defer.ensureDeferred(fresh.connect()))
        self.assertEqual((fresh.catalog.revision, fresh.catalog.entries), (self.customer.catalog.revision, {}))

    def roots_whole(self) -> dict[str, bool]:
        """For each supplier, whether every page its root names is there with the root's digest."""
        copies = self.customer.keeper.copies
        whole = {}
        for slot in self.customer.suppliers.slots:
            text = done(defer.ensureDeferred(copies._fetch_sealed(slot.idurl, copies._index_packet_id(slot.position),
                                                                  ".index")))
            _revision, pages = paging.parse_root(text) or (0, [])
            whole[slot.idurl] = all(
                done(defer.ensureDeferred(copies._fetch_page(page, [slot.idurl]))) is not None for page in pages)
        return whole

    def test_a_revision_saved_again_after_my_copy_of_it_was_lost_is_whole_on_every_supplier(self) -> None:
        self.fill(400)
        home = self.root / "dave" / "customer"
        older = (home / "catalog").read_bytes()
        # the next save's copies land, but my own copy of it is not written (the disk full)
        self.customer.catalog.ensure("photos/lost.jpg", "file", 9000.0)
        disk = self.customer.keeper.disk

        def full(work: Any, *args: Any) -> defer.Deferred[Any]:
            return defer.fail(OSError(28, "No space left on device"))

        disk._worker = full  # type: ignore[method-assign]
        self.failureResultOf(defer.ensureDeferred(self.customer.keeper.save()), OSError)
        self.assertEqual((home / "catalog").read_bytes(), older)
        # a restart while the suppliers cannot be reached: the suppliers' newer revision is not seen
        self.customer.close()
        for supplier in self.grid.suppliers:
            supplier.node.online = False
        self.customer = make_customer(self.grid)
        self.assertEqual(done(defer.ensureDeferred(self.customer.connect())), 4)
        for supplier in self.grid.suppliers:
            supplier.node.online = True
        self.customer.catalog.ensure("photos/other.jpg", "file", 9500.0)
        self.save()
        self.assertEqual(list(self.roots_whole().values()), [True] * 4)
        fresh = self.elsewhere(self.root / "fresh")
        self.assertEqual(done(defer.ensureDeferred(fresh.connect())), 4)
        self.assertEqual(fresh.catalog.entries, self.customer.catalog.entries)

    def test_a_supplier_that_forgot_me_gets_every_page_again_with_the_next_root(self) -> None:
        self.fill(400)
        victim = self.customer.suppliers.slots[0]
        done(self.grid.supplier(victim.idurl).supplier.drop_customer(self.customer.me.require().idurl))
        self.assertTrue(done(self.customer.rehire(0)))  # as the health check does when its listing says so
        self.customer.catalog.ensure("photos/late.jpg", "file", 9000.0)
        self.save()
        self.assertEqual(list(self.roots_whole().values()), [True] * 4)
        self.assertEqual(self.page_pieces()[victim.idurl], {page.piece for page in self.customer.keeper.copies.pages})

    def test_a_supplier_that_lost_what_it_held_of_mine_gets_every_page_again_after_the_checks(self) -> None:
        self.fill(400)
        victim = self.grid.supplier(self.customer.suppliers.slots[0].idurl)
        for piece in victim.pieces() + sorted(victim.store.root.rglob("index")):
            piece.unlink()  # its disk lost: it still knows me, and lists nothing of mine
        # the checks see its listing without my catalog's copy; the repairs, once done, save the catalog again
        done(defer.ensureDeferred(self.customer.health.check()))
        self.assertEqual(self.customer.health.catalog_lost, set())  # taken by that save
        self.assertEqual(list(self.roots_whole().values()), [True] * 4)
        self.assertEqual(self.page_pieces()[victim.idurl], {page.piece for page in self.customer.keeper.copies.pages})

    def test_the_checks_read_a_page_at_each_supplier_and_a_lost_or_altered_one_is_sent_again(self) -> None:
        self.fill(400)
        pages = self.customer.keeper.copies.pages
        slots = self.customer.suppliers.slots
        lost, altered = self.grid.supplier(slots[0].idurl), self.grid.supplier(slots[1].idurl)
        gone = next(p for p in lost.pieces() if p.parts[-3] == paging.PAGES_PATH)
        gone.unlink()
        bad = [p for p in altered.pieces() if p.parts[-3] == paging.PAGES_PATH][-1]  # another page than `gone`
        raw = bytearray(bad.read_bytes())
        raw[len(raw) // 2] ^= 1
        bad.write_bytes(bytes(raw))
        self.sent.clear()
        counters = self.customer.counters
        done(defer.ensureDeferred(self.customer.health.check()))
        done(defer.ensureDeferred(self.customer.health.check()))  # a round soon after reads no page again
        self.assertEqual(counters["catalog_pages_checked"], 4)
        for round_number in range(2, len(pages) + 1):  # a page a supplier each CYCLE / pages, longest unchecked first
            if counters["catalog_pages_bad"] == 2:
                break
            self.grid.clock.advance(page_checks.CYCLE / len(pages))
            done(defer.ensureDeferred(self.customer.health.check()))
            self.assertEqual(counters["catalog_pages_checked"], 4 * round_number)
        self.assertEqual(counters["catalog_pages_bad"], 2)
        # the save after the checks sent each its page again, and nothing else
        self.assertEqual(sorted(self.sent.values()), [1, 1])
        named = {page.piece for page in pages}
        self.assertEqual(list(self.page_pieces().values()), [named] * 4)
        self.assertEqual(self.customer.keeper.copies.pages, pages)
        # every page checked at every supplier within as many rounds as there are pages, none found bad since
        checked = self.customer.page_checks.checked
        for _round in range(len(pages)):
            self.grid.clock.advance(page_checks.CYCLE / len(pages))
            done(defer.ensureDeferred(self.customer.health.check()))
        self.assertEqual(len(checked), 4 * len(pages))
        self.assertEqual(counters["catalog_pages_bad"], 2)

    def checked_piece(self) -> tuple[list[str], defer.Deferred[None]]:
        """The piece a page check asks for, noted; its Retrieve leaves once the gate returned is fired."""
        copies = self.customer.keeper.copies
        asked: list[str] = []
        gate: defer.Deferred[None] = defer.Deferred()
        fetch = copies._fetch_sealed

        async def late(idurl: str, packet_id: str, path: str) -> bytes | None:
            asked.append(path)
            await gate
            return await fetch(idurl, packet_id, path)

        copies._fetch_sealed = late  # type: ignore[method-assign]
        return asked, gate

    def test_a_page_check_a_supplier_did_not_answer_or_a_save_made_moot_gives_no_verdict(self) -> None:
        # from helper-38's review: neither is a page lost, to be sent again with a save of its own
        self.fill(400)
        copies = self.customer.keeper.copies
        idurl = self.customer.suppliers.slots[0].idurl
        asked, gate = self.checked_piece()
        checking = defer.ensureDeferred(self.customer.page_checks.check(idurl))
        self.grid.supplier(idurl).node.online = False
        gate.callback(None)
        self.grid.clock.advance(CATALOG_TIMEOUT + 1)
        self.assertIsNone(self.successResultOf(checking))
        self.assertIn(asked[0], copies.held[idurl])
        self.grid.supplier(idurl).node.online = True
        # a save meanwhile replaces the page asked for: the old piece is deleted there, and no longer held
        self.grid.clock.advance(page_checks.CYCLE)
        asked, gate = self.checked_piece()
        checking = defer.ensureDeferred(self.customer.page_checks.check(idurl))
        number = [page.piece for page in copies.pages].index(asked[0])
        moved = next(p for p in self.customer.catalog.entries if paging.page_of(p, len(copies.pages)) == number)
        self.customer.catalog.entries[moved].created = 5.5
        self.save()
        self.assertNotIn(asked[0], copies.held[idurl])
        gate.callback(None)
        self.assertIsNone(self.successResultOf(checking))

    def test_a_restart_with_an_unreadable_copy_here_takes_the_suppliers_copy_before_any_change(self) -> None:
        # from helper-38's review: my suppliers are hired already (suppliers.json), so no connect() fetches it
        folder, restarted = self.restart_damaged()
        self.assertEqual((len(restarted.suppliers.connected()), len(restarted.catalog.entries)), (4, 0))
        self.assertRaises(CatalogNotRecovered, restarted.start_upload, folder, "x")
        self.failureResultOf(defer.ensureDeferred(restarted.create("notes.txt", "file")), CatalogNotRecovered)
        self.failureResultOf(defer.ensureDeferred(restarted.keeper.save()), CatalogNotRecovered)
        for supplier in self.grid.suppliers:
            supplier.node.online = False
        done(defer.ensureDeferred(restarted.recover_catalog()))  # nobody answers: still to be fetched
        self.assertTrue(restarted.keeper.fetch_first)
        for supplier in self.grid.suppliers:
            supplier.node.online = True
        done(defer.ensureDeferred(restarted.recover_catalog()))  # not asked again so soon
        self.assertTrue(restarted.keeper.fetch_first)
        self.grid.clock.advance(RECOVERY_RETRY)
        done(defer.ensureDeferred(restarted.recover_catalog()))
        self.assertEqual(restarted.catalog.entries.keys(), self.customer.catalog.entries.keys())
        done(defer.ensureDeferred(restarted.create("notes.txt", "file")))
        self.assertIn("photos/0/img0.jpg", CatalogDisk(folder).load().entries)
        fresh = self.elsewhere(self.root / "fresh")
        self.assertEqual(done(defer.ensureDeferred(fresh.connect())), 4)
        self.assertEqual(len(fresh.catalog.entries), len(self.customer.catalog.entries) + 1)

    def restart_damaged(self) -> tuple[Path, Customer]:
        """My copy here damaged, and me started again on it (my suppliers hired already, from suppliers.json)."""
        self.fill(400)
        folder = self.customer.folder
        damaged = next((folder / PAGES_FOLDER).iterdir())
        damaged.write_bytes(damaged.read_bytes()[:-1] + b" ")
        self.customer.close()
        restarted = make_customer(self.grid, folder)
        self.flushLoggedErrors()
        return folder, restarted

    def test_a_second_restart_before_the_suppliers_copy_was_taken_still_takes_it_first(self) -> None:
        # from helper-39's review: the first start set my copy aside, so the second finds none here
        folder, first = self.restart_damaged()
        self.assertTrue(first.keeper.fetch_first)
        first.close()
        second = make_customer(self.grid, folder)
        self.assertTrue(second.keeper.fetch_first)
        self.failureResultOf(defer.ensureDeferred(second.create("notes.txt", "file")), CatalogNotRecovered)
        done(defer.ensureDeferred(second.recover_catalog()))
        self.assertEqual(second.catalog.entries.keys(), self.customer.catalog.entries.keys())

    def test_only_every_holder_saying_it_has_no_copy_lets_me_start_anew(self) -> None:
        _folder, restarted = self.restart_damaged()
        slots = restarted.suppliers.slots
        # one that lost its disk says it has none while the three that hold my copy are silent: not enough
        lost = self.grid.supplier(slots[0].idurl)
        for piece in sorted(lost.store.root.rglob("*")):
            if piece.is_file():
                piece.unlink()
        for slot in slots[1:]:
            self.grid.supplier(slot.idurl).node.online = False
        done(defer.ensureDeferred(restarted.recover_catalog()))
        self.grid.clock.advance(RECOVERY_RETRY)
        done(defer.ensureDeferred(restarted.recover_catalog()))
        self.flushLoggedErrors()
        self.assertTrue(restarted.keeper.fetch_first)
        # copies that every holder gives but none of which can be read: not enough either (they may be all there is)
        for slot in slots[1:]:
            self.grid.supplier(slot.idurl).node.online = True
        for slot in slots[1:]:
            for index in self.grid.supplier(slot.idurl).store.root.rglob("index"):
                raw = bytearray(index.read_bytes())
                raw[len(raw) // 2] ^= 1
                index.write_bytes(bytes(raw))
        self.grid.clock.advance(RECOVERY_RETRY)
        done(defer.ensureDeferred(restarted.recover_catalog()))
        self.flushLoggedErrors()
        self.assertTrue(restarted.keeper.fetch_first)
        # every holder without a copy of mine (fresh suppliers, or all of them emptied): I start anew
        for slot in slots[1:]:
            for piece in sorted(self.grid.supplier(slot.idurl).store.root.rglob("*")):
                if piece.is_file():
                    piece.unlink()
        self.grid.clock.advance(RECOVERY_RETRY)
        done(defer.ensureDeferred(restarted.recover_catalog()))
        self.assertFalse(restarted.keeper.fetch_first)
        done(defer.ensureDeferred(restarted.create("notes.txt", "file")))

    def test_a_supplier_replaced_then_hired_again_gets_every_page_again(self) -> None:
        self.fill(400)
        first = self.customer.suppliers.slots[0].idurl
        done(self.customer.replace(0, "silent"))
        self.assertNotEqual(self.customer.suppliers.slots[0].idurl, first)
        self.save()
        # the replaced supplier freed my space meanwhile; once no longer set aside it is the only one left to hire
        done(self.grid.supplier(first).supplier.drop_customer(self.customer.me.require().idurl))
        self.grid.clock.advance(601)
        done(self.customer.replace(1, "silent"))
        self.assertEqual(self.customer.suppliers.slots[1].idurl, first)
        self.customer.catalog.ensure("photos/late.jpg", "file", 9000.0)
        self.save()
        self.assertEqual(list(self.roots_whole().values()), [True] * 4)

    def test_a_fresh_home_asks_for_pages_first_the_suppliers_that_gave_it_a_root(self) -> None:
        self.fill(800)
        self.assertEqual(len(self.customer.keeper.copies.pages), 4 * PAGES_AT_ONCE)
        fresh = self.elsewhere(self.root / "fresh")
        self.assertEqual(done(defer.ensureDeferred(fresh.suppliers.fill(4, fresh.per_supplier()))), 4)
        # the first supplier never answers now: the wait for its root is the only one (not one more for each 8 pages)
        self.grid.supplier(fresh.suppliers.slots[0].idurl).node.held = []
        fetched = defer.ensureDeferred(fresh.keeper.fetch_newest())
        self.grid.clock.advance(CATALOG_TIMEOUT)
        self.assertTrue(done(fetched))
        self.assertEqual(fresh.catalog.entries, self.customer.catalog.entries)

    def test_a_root_whose_page_is_on_no_supplier_is_passed_over_once_for_an_older_whole_one(self) -> None:
        self.fill(400)
        older = Catalog(self.customer.catalog.revision, dict(self.customer.catalog.entries))
        count = len(self.customer.keeper.copies.pages)
        stale = self.grid.supplier(self.customer.suppliers.slots[3].idurl)
        stale.node.online = False  # it keeps the older root and its pages
        late = next(f"photos/late{n}.jpg" for n in range(100) if paging.page_of(f"photos/late{n}.jpg", count) == 0)
        self.customer.catalog.ensure(late, "file", 9000.0)
        self.assertEqual(done(defer.ensureDeferred(self.customer.keeper.save())), 3)
        stale.node.online = True
        changed = self.customer.keeper.copies.pages[0].piece
        for supplier in self.grid.suppliers:
            for piece in supplier.pieces():
                if "/".join(piece.parts[-3:]) == changed:
                    piece.unlink()
        fresh = self.elsewhere(self.root / "fresh")
        self.grid.sent.clear()
        self.assertEqual(done(defer.ensureDeferred(fresh.connect())), 4)
        self.assertEqual((fresh.catalog.revision, fresh.catalog.entries), (older.revision, older.entries))
        # 4 roots; the newest root's first 8 pages (its page 0 asked of all 4), once though 3 suppliers gave it; then
        # every page of the older root, its page 0 found at the 4th supplier only
        self.assertEqual(self.grid.sent["Retrieve"], 4 + (7 + 4) + (count - 1 + 4))

    def test_a_fetch_that_finds_no_newer_root_asks_for_no_page(self) -> None:
        self.fill(400)
        self.grid.sent.clear()
        self.assertFalse(done(defer.ensureDeferred(self.customer.keeper.fetch_newest())))
        self.assertEqual(self.grid.sent["Retrieve"], 4)  # the roots only: the customer asks each time it hires

    def test_a_fresh_home_that_saves_keeps_the_pages_it_did_not_change_and_leaves_one_behind(self) -> None:
        # the pages of a catalog made in any order: a catalog taken back has its entries by path
        for number in reversed(range(400)):
            self.customer.catalog.ensure(f"photos/{number // 50}/img{number}.jpg", "file", 1000.0 + number)
        self.save()
        taken = {page.piece for page in self.customer.keeper.copies.pages}
        fresh = self.elsewhere(self.root / "fresh")
        self.assertEqual(done(defer.ensureDeferred(fresh.connect())), 4)
        fresh.catalog.ensure("photos/late.jpg", "file", 9000.0)
        self.assertEqual(done(defer.ensureDeferred(fresh.keeper.save())), 4)
        named = {page.piece for page in fresh.keeper.copies.pages}
        self.assertEqual(len(taken - named), 1)  # the page the new file changed
        # which holder had the taken root's pages was not known: that one page stays on them, unnamed
        self.assertEqual(list(self.page_pieces().values()), [named | taken] * 4)

    def test_a_replaced_supplier_is_no_longer_kept_track_of_and_its_successor_gets_every_page(self) -> None:
        self.fill(400)
        copies = self.customer.keeper.copies
        fired = self.customer.suppliers.slots[1].idurl
        self.assertIn(fired, copies.held)
        self.grid.supplier(fired).node.online = False
        done(self.customer.replace(1, "test: gone"))
        successor = self.customer.suppliers.slots[1].idurl
        self.assertNotEqual(successor, fired)
        self.assertNotIn(fired, copies.held)  # else every supplier ever hired stays in the record for good
        self.sent.clear()
        self.save()
        named = {page.piece for page in copies.pages}
        self.assertEqual(copies.held[successor], named)
        self.assertEqual(sum(self.sent.values()), len(named))  # the successor's pages, and no one else's
        again = CatalogCopies(copies.network, copies.me, copies.identities, self.root / "dave" / "customer",
                              copies.holders, copies._worker)
        self.assertEqual(sorted(again.held), sorted(s.idurl for s in self.customer.suppliers.slots))

    def test_the_replaced_one_still_kept_track_of_when_it_holds_another_position_now(self) -> None:
        self.fill(400)
        copies, suppliers = self.customer.keeper.copies, self.customer.suppliers
        first, second = suppliers.slots[1].idurl, suppliers.slots[2].idurl
        spare = next(s for s in self.grid.suppliers if s.idurl not in {t.idurl for t in suppliers.slots})
        spare.node.online = self.grid.supplier(second).node.online = False
        self.assertRaises(NoSupplier, done, self.customer.replace(2, "test: gone"))  # no one to hire: it stays failed
        self.grid.clock.advance(601)  # the one fired at 2 may be hired again
        self.grid.supplier(second).node.online, self.grid.supplier(first).node.online = True, False
        done(self.customer.replace(1, "test: gone"))
        self.assertEqual((suppliers.slots[1].idurl, suppliers.slots[2].connected), (second, False))
        self.assertEqual(done(defer.ensureDeferred(self.customer.keeper.save())), 3)
        self.assertEqual(copies.held[second], {page.piece for page in copies.pages})
        spare.node.online = True
        self.assertEqual(done(defer.ensureDeferred(self.customer.connect())), 4)  # 2 is the spare's, 1 still second's
        self.assertEqual((suppliers.slots[1].idurl, suppliers.slots[2].idurl), (second, spare.idurl))
        # the one position 2 had is position 1's holder: what it holds is still known
        self.assertEqual(copies.held.get(second), {page.piece for page in copies.pages})
        self.sent.clear()
        self.save()
        self.assertEqual(sum(self.sent.values()), len(copies.pages))  # the spare's pages only

    def test_a_holder_replaced_while_a_save_sends_it_pages_stays_out_of_the_record(self) -> None:
        self.fill(400)
        copies = self.customer.keeper.copies
        fired = self.grid.supplier(self.customer.suppliers.slots[1].idurl)
        fired.node.held = []  # its Acks wait: the save is under way when it is replaced
        self.customer.catalog.ensure("photos/late.jpg", "file", 9000.0)
        saving = defer.ensureDeferred(self.customer.keeper.save())
        self.assertFalse(saving.called)
        done(self.customer.replace(1, "test: gone"))
        self.assertNotIn(fired.idurl, copies.held)
        # the replacement failed what awaited its answers (Customer.replace): the save went on without it, and the
        # page it took, Acked late, is in no record
        self.assertEqual(done(saving), 3)
        fired.node.release()
        self.assertNotIn(fired.idurl, copies.held)
        self.assertEqual(sorted(copies.held), sorted(s.idurl for s in self.customer.suppliers.slots
                                                     if s.idurl != self.customer.suppliers.slots[1].idurl))

    def test_a_supplier_forgotten_while_its_old_pages_are_removed_leaves_the_save_whole(self) -> None:
        self.fill(400)
        copies = self.customer.keeper.copies
        first = self.customer.suppliers.slots[0].idurl
        network = copies.network
        request = network.request

        def forgotten_meanwhile(packet: Any, remote: Any, **kwargs: Any) -> Any:
            asked = request(packet, remote, **kwargs)
            if packet.command == "DeleteFile" and packet.remote_id == first:
                done(defer.ensureDeferred(copies.forget(first)))  # the health check rehired it meanwhile
            return asked

        network.request = forgotten_meanwhile  # type: ignore[method-assign]
        self.customer.catalog.ensure("photos/late.jpg", "file", 9000.0)
        self.save()
        self.assertEqual(copies.held.get(first, set()), set())

    def test_a_home_whose_large_catalog_is_one_text_reads_it_and_its_next_save_pages_it(self) -> None:
        # a home an older version left: my copy of a catalog over PAGED_FROM written whole
        old = Catalog(7)
        for number in range(400):
            old.ensure(f"photos/{number // 50}/img{number}.jpg", "file", 1000.0 + number)
        self.assertGreater(len(old.serialize()), paging.PAGED_FROM)
        folder = self.root / "old"
        folder.mkdir()
        (folder / "catalog").write_bytes(old.serialize())
        upgraded = self.elsewhere(folder)
        self.assertEqual(upgraded.catalog, old)
        self.assertEqual(done(defer.ensureDeferred(upgraded.connect())), 4)
        self.assertEqual(done(defer.ensureDeferred(upgraded.keeper.save())), 4)
        disk = upgraded.keeper.disk
        self.assertIsNotNone(paging.parse_root(disk.path.read_bytes()))
        self.assertEqual({p.name for p in disk.pages_path.iterdir()},
                         {page.digest for page in upgraded.keeper.copies.pages})
        self.assertEqual(CatalogDisk(folder).load(), upgraded.catalog)
        self.assertEqual(upgraded.catalog.revision, 8)

    def test_an_official_supplier_that_drops_me_on_refusing_more_space_gets_its_pages_again(self) -> None:
        # an official supplier refused more space drops me and removes what I stored, my catalog's pages too
        # (customer_space.on_service_supplier_request); it takes me back for what it kept, and the round of checks
        # that follows sees its copy gone: the save it causes must send it the pages, not the root alone
        self.fill(400)
        named = {page.piece for page in self.customer.keeper.copies.pages}
        self.customer.start()
        self.addCleanup(self.customer.close)
        dropping = self.grid.supplier(self.customer.suppliers.slots[0].idurl)
        first = self.customer.per_supplier()
        drops_when_refusing_more(dropping, first + (1 << 20))
        self.customer.settings = customer_settings({"needed-space": "256 MB"})
        self.assertEqual(done(defer.ensureDeferred(self.customer.keep_space())), 0)
        self.assertEqual(self.page_pieces()[dropping.idurl], set())
        for _second in range(30):
            self.grid.clock.advance(1)
        self.assertEqual(self.page_pieces()[dropping.idurl], named)
