"""The catalog taken from my suppliers before anything may write over theirs (helper-40's review of e6fc6de, a148b3f,
d9db0c4): a customer that never saved is not blocked by one offline supplier, a fresh home writes nothing over the
copies of the suppliers it is hiring, and waiting neither logs an error each round nor reads every page again."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from twisted.internet import defer
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.storage.catalog_disk import PAGES_FOLDER
from bitdust_node.storage.catalog_keeper import CatalogNotRecovered
from bitdust_node.storage.customer import Customer
from tests.storage.grid import MemoryGrid, make_customer, small_pages
from tests.storage.test_customer_cores import done


class OnAGrid(SynchronousTestCase):
    """Me, a customer who hired four suppliers of an in-memory grid."""

    def setUp(self) -> None:
        self.root = Path(self.mktemp())
        self.root.mkdir()
        self.grid = MemoryGrid(self.root)
        self.customer = make_customer(self.grid)
        self.assertEqual(done(defer.ensureDeferred(self.customer.connect())), 4)


class RecoveryReviewTests(OnAGrid):

    def source(self, size: int, name: str = "file.bin") -> Path:
        path = self.root / name
        path.write_bytes(os.urandom(size))
        return path

    def test_a_healthy_customer_that_never_saved_is_not_blocked_by_one_offline_supplier(self) -> None:
        # hired, never saved (no catalog file was ever written here, none set aside): nothing of the suppliers' can
        # be written over, yet one supplier offline blocks every upload until health replaces it (a day by default)
        folder = self.customer.folder
        self.assertFalse((folder / "catalog").exists())
        self.customer.close()
        offline = self.customer.suppliers.slots[0].idurl
        self.grid.supplier(offline).node.online = False
        restarted = make_customer(self.grid, folder)
        done(defer.ensureDeferred(restarted.recover_catalog()))
        self.flushLoggedErrors()
        self.assertFalse(restarted.keeper.fetch_first, "uploads answer 503 until the offline supplier is replaced")
        _transfer, work = restarted.start_upload(self.source(1000), "first.bin")
        done(work)
        self.assertIn("first.bin", restarted.catalog.entries)

    def test_waiting_for_a_silent_holder_does_not_log_an_error_every_hiring_round(self) -> None:
        folder = self.customer.folder
        self.customer.close()
        self.grid.supplier(self.customer.suppliers.slots[0].idurl).node.online = False
        restarted = make_customer(self.grid, folder)
        errors: list[dict[str, object]] = []

        def observe(event: dict[str, object]) -> None:
            if event.get("log_level") is LogLevel.error:
                errors.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        for _round in range(30):  # five minutes of the service's hiring rounds (10 s each)
            done(defer.ensureDeferred(restarted.recover_catalog()))
            self.grid.clock.advance(10)
        self.flushLoggedErrors()
        self.assertLessEqual(len(errors), 1, f"{len(errors)} errors logged in 5 minutes")

    def fresh_home_hiring(self) -> tuple[Customer, defer.Deferred[int], list[Callable[[], None]]]:
        """My catalog saved a few times on my suppliers, then me on a fresh home (a key backup restored) hiring
        them again: the old supplier at position 3 is gone, and the one hired in its place answers slowly."""
        for number in range(20):
            self.customer.catalog.ensure(f"photos/img{number}.jpg", "file", 1000.0 + number)
        for _ in range(3):
            done(defer.ensureDeferred(self.customer.keeper.save()))
        old = [slot.idurl for slot in self.customer.suppliers.slots]
        self.grid.supplier(old[3]).node.online = False
        spare = next(s for s in self.grid.suppliers if s.idurl not in old)
        spare.node.held = []
        fresh = make_customer(self.grid, self.root / "fresh", **{"preferred-suppliers": " ".join(old)})
        connecting = defer.ensureDeferred(fresh.connect())
        self.assertFalse(connecting.called)
        self.assertEqual(len(fresh.suppliers.connected()), 3)
        return fresh, connecting, spare.node.held

    def test_a_fresh_home_saves_nothing_over_the_suppliers_copies_while_it_hires_them(self) -> None:
        fresh, connecting, held = self.fresh_home_hiring()
        # a folder made while the hiring goes on (REST POST /file/create): its save reaches the three hired already
        creating = defer.ensureDeferred(fresh.create("notes", "dir"))
        self.grid.supplier(self.customer.suppliers.slots[3].idurl).node.held = None
        spare = next(s for s in self.grid.suppliers if s.node.held is not None)
        spare.node.held = None
        for answer in held:
            answer()
        self.assertEqual(done(connecting), 4)
        if creating.called:
            creating.addErrback(lambda f: f.trap(CatalogNotRecovered))
        self.flushLoggedErrors()
        self.assertEqual(set(self.customer.catalog.entries) - set(fresh.catalog.entries), set(),
                         "the suppliers' copies were written over by the fresh home's first save")


class StuckRecoveryTests(OnAGrid):
    def setUp(self) -> None:
        small_pages(self)
        super().setUp()

    def test_a_wait_on_a_root_whose_page_is_nowhere_does_not_read_every_other_page_each_round(self) -> None:
        # my copy here damaged, and a page of the suppliers' lost by all: the wait lasts (rightly), but each hiring
        # round (10 s) fetches every other page again, the whole catalog (up to 31 MiB and more) six times a minute
        for number in range(400):
            self.customer.catalog.ensure(f"photos/{number // 50}/img{number}.jpg", "file", 1000.0 + number)
        self.assertEqual(done(defer.ensureDeferred(self.customer.keeper.save())), 4)
        pages = self.customer.keeper.copies.pages
        self.assertGreater(len(pages), 4)
        folder = self.customer.folder
        damaged = next((folder / PAGES_FOLDER).iterdir())
        damaged.write_bytes(damaged.read_bytes()[:-1] + b" ")
        self.customer.close()
        for supplier in self.grid.suppliers:
            for piece in supplier.pieces():
                if piece.as_posix().endswith(pages[-1].piece):
                    piece.unlink()
        restarted = make_customer(self.grid, folder)
        done(defer.ensureDeferred(restarted.recover_catalog()))
        self.flushLoggedErrors()
        self.assertTrue(restarted.keeper.fetch_first)
        before = self.grid.sent["Retrieve"]
        self.grid.clock.advance(10)
        done(defer.ensureDeferred(restarted.recover_catalog()))
        self.flushLoggedErrors()
        self.assertTrue(restarted.keeper.fetch_first)
        self.assertLessEqual(self.grid.sent["Retrieve"] - before, 4, "pages fetched again in a round 10 s later")
