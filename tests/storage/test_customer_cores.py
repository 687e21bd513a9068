"""The customer's cores on an in-memory grid of our real suppliers and a Clock: catalog keeping, hiring and
replacing, the upload window, a download from k of n with a lying supplier, a position rebuilt."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.errors import InvalidInput
from bitdust_node.storage import erasure
from bitdust_node.storage.catalog import MAX_PATH_DEPTH, Catalog
from bitdust_node.storage.catalog_disk import CATALOG_FILE
from bitdust_node.storage.catalog_keeper import SavedCopies
from bitdust_node.storage.customer import Customer
from bitdust_node.storage.suppliers import NoSupplier, SlotState, catalog_room
from bitdust_node.storage.transfers import (
    WINDOW,
    Transfer,
    TransferError,
    TransferKind,
    TransferLog,
    TransferState,
    TransferStopped,
)
from tests.storage.grid import GridSupplier, MemoryGrid, drops_when_refusing_more, make_customer

KIB = 1024


def done(d: defer.Deferred[Any]) -> Any:
    """The result of work the grid finished without waiting (it runs on the Clock, in this very call)."""
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "still waiting"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


class Cores(SynchronousTestCase):
    def setUp(self) -> None:
        self.root = Path(self.mktemp())
        self.root.mkdir()
        self.grid = MemoryGrid(self.root)
        self.values: dict[str, Any] = {}  # the customer's settings: a test changes them live
        self.customer = make_customer(self.grid, values=self.values)
        self.assertEqual(done(defer.ensureDeferred(self.customer.connect())), 4)

    def tearDown(self) -> None:
        self.assertEqual(self.grid.errors, [])

    def source(self, size: int, name: str = "file.bin") -> Path:
        path = self.root / name
        path.write_bytes(os.urandom(size))
        return path

    def upload(self, customer: Customer, path: Path, remote: str) -> None:
        transfer, work = customer.start_upload(path, remote)
        done(work)
        self.assertEqual((transfer.state, transfer.error), (TransferState.DONE, ""))

    def download(self, customer: Customer, remote: str) -> bytes:
        folder = self.root / f"back{len(os.listdir(self.root))}"
        transfer, work = customer.start_download(remote, folder)
        done(work)
        self.assertEqual(transfer.state, TransferState.DONE)
        return (folder / remote).read_bytes()

    def at(self, position: int) -> GridSupplier:
        return self.grid.supplier(self.customer.suppliers.slots[position].idurl)


class CatalogKeepingTests(Cores):
    def test_every_change_is_kept_here_and_on_every_supplier(self) -> None:
        done(defer.ensureDeferred(self.customer.create("docs/a.txt", "file")))
        on_disk = Catalog.parse((self.root / "dave" / "customer" / CATALOG_FILE).read_bytes())
        self.assertEqual((on_disk.revision, sorted(on_disk.entries)), (1, ["docs", "docs/a.txt"]))
        holders = [s for s in self.grid.suppliers if list(s.store.root.rglob("index"))]
        self.assertEqual(len(holders), 4)
        self.assertEqual(self.customer.counters["catalog_copies"], 4)

    def test_a_save_no_supplier_stored_is_said_and_shown(self) -> None:
        said: list[str] = []

        def observe(event: dict[str, Any]) -> None:
            if event.get("log_level") in (LogLevel.warn, LogLevel.error):
                said.append(formatEvent(event))

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        done(defer.ensureDeferred(self.customer.create("kept", "dir")))
        self.assertEqual(self.customer.keeper.last_save.stored, 4)
        self.assertEqual(said, [])
        for supplier in self.grid.suppliers:
            supplier.node.online = False
        done(defer.ensureDeferred(self.customer.create("only-here", "dir")))
        saved = self.customer.keeper.last_save
        self.assertEqual((saved.revision, saved.stored, saved.holders), (self.customer.catalog.revision, 0, 4))
        self.assertEqual(saved.size, len((self.root / "dave" / "customer" / CATALOG_FILE).read_bytes()))
        self.assertEqual(len(said), 1)
        self.assertIn(f"catalog revision {saved.revision} ({saved.size} bytes) stored on none of 4 suppliers", said[0])

    def hold_copies(self) -> list[defer.Deferred[bool]]:
        """The catalog's copies, each held until the test says whether its supplier took it."""
        copies: list[defer.Deferred[bool]] = []

        def held_copy(packet: Any) -> defer.Deferred[bool]:
            copies.append(defer.Deferred())
            return copies[-1]

        self.customer.keeper.copies._send_copy = held_copy  # type: ignore[method-assign]
        return copies

    def test_a_save_asked_while_one_runs_waits_for_it_and_those_asked_meanwhile_share_one(self) -> None:
        # a supplier keeps the copy that reached it last: overlapping saves could leave it an older revision
        keeper = self.customer.keeper
        copies = self.hold_copies()
        self.customer.catalog.ensure("a", "dir", 1.0)
        first = defer.ensureDeferred(keeper.save())
        self.assertEqual(len(copies), 4)
        self.customer.catalog.ensure("b", "dir", 1.0)
        second = defer.ensureDeferred(keeper.save())
        self.customer.catalog.ensure("c", "dir", 1.0)
        third = defer.ensureDeferred(keeper.save())
        self.assertEqual(len(copies), 4, "a save went out while the one before it was still travelling")
        revision = self.customer.catalog.revision
        for copy in copies[:4]:
            copy.callback(True)
        self.assertEqual(done(first), 4)
        # one more save, for both callers: the revision after, holding both changes
        self.assertEqual(len(copies), 8)
        self.assertEqual(self.customer.catalog.revision, revision + 1)
        for copy in copies[4:]:
            copy.callback(True)
        self.assertEqual((done(second), done(third)), (4, 4))
        self.assertEqual(keeper.last_save, SavedCopies(revision + 1, keeper.last_save.size, 4, 4))
        # a save that fails fails every caller that shared it, and the next save goes on as usual
        held = defer.ensureDeferred(keeper.save())
        real_worker = keeper.copies._worker

        def broken_worker(work: Any, *args: Any) -> defer.Deferred[Any]:
            return defer.fail(OSError("no room"))

        fourth, fifth = defer.ensureDeferred(keeper.save()), defer.ensureDeferred(keeper.save())
        keeper.copies._worker = broken_worker
        for copy in copies[8:]:
            copy.callback(True)
        self.assertEqual(done(held), 4)
        for shared in (fourth, fifth):
            self.assertIsInstance(self.failureResultOf(shared).value, OSError)
        keeper.copies._worker = real_worker
        sixth = defer.ensureDeferred(keeper.save())
        for copy in copies[12:]:
            copy.callback(True)
        self.assertEqual(done(sixth), 4)

    def test_a_caller_that_stops_waiting_for_a_save_cancels_neither_it_nor_the_others_wait(self) -> None:
        # a REST client that goes away cancels its handler, and with it whatever the handler awaits
        keeper = self.customer.keeper
        copies = self.hold_copies()
        first = defer.ensureDeferred(keeper.save())
        gone, staying = defer.ensureDeferred(keeper.save()), defer.ensureDeferred(keeper.save())
        gone.cancel()
        self.failureResultOf(gone, defer.CancelledError)
        self.assertNoResult(staying)
        later = defer.ensureDeferred(keeper.save())
        self.assertEqual(len(copies), 4, "a save went out while the one before it was still travelling")
        for copy in copies[:4]:
            copy.callback(True)
        self.assertEqual(done(first), 4)
        # one save for those still waiting, then nothing more
        self.assertEqual(len(copies), 8)
        for copy in copies[4:]:
            copy.callback(True)
        self.assertEqual((done(staying), done(later)), (4, 4))
        self.assertEqual(len(copies), 8)
        # the caller of the running save going away leaves it to end, for those who share the next one too
        running = defer.ensureDeferred(keeper.save())
        sharing = defer.ensureDeferred(keeper.save())
        running.cancel()
        self.failureResultOf(running, defer.CancelledError)
        for copy in copies[8:12]:
            copy.callback(True)
        for copy in copies[12:]:
            copy.callback(True)
        self.assertEqual((done(sharing), len(copies), keeper.last_save.stored), (4, 16, 4))

    def test_a_fetch_waits_for_the_save_that_runs_and_a_save_for_the_fetch(self) -> None:
        # a fetch that took a newer catalog while a save ran would see that save's older copies land over it
        keeper = self.customer.keeper
        copies = self.hold_copies()
        asked: list[defer.Deferred[bytes | None]] = []

        def held_fetch(idurl: str, packet_id: str, path: str) -> defer.Deferred[bytes | None]:
            asked.append(defer.Deferred())
            return asked[-1]

        keeper.copies._fetch_sealed = held_fetch  # type: ignore[method-assign,assignment]
        saving = defer.ensureDeferred(keeper.save())
        fetching = defer.ensureDeferred(keeper.fetch_newest())
        self.assertEqual((len(copies), len(asked)), (4, 0))
        for copy in copies:
            copy.callback(True)
        self.assertEqual((done(saving), len(asked)), (4, 4))
        newer = Catalog(revision=keeper.catalog.revision + 5)
        newer.ensure("from-elsewhere", "dir", 1.0)
        taken = newer.revision
        after = defer.ensureDeferred(keeper.save())
        self.assertEqual(len(copies), 4, "a save went out while a fetch ran")
        for answer in asked:
            answer.callback(newer.serialize())
        self.assertTrue(done(fetching))
        # the save asked meanwhile is of the catalog taken, one revision on
        self.assertEqual(len(copies), 8)
        for copy in copies[4:]:
            copy.callback(True)
        self.assertEqual(done(after), 4)
        self.assertEqual((keeper.catalog.revision, keeper.last_save.revision), (taken + 1, taken + 1))
        self.assertIn("from-elsewhere", keeper.catalog.entries)

    def test_every_copy_stored_is_counted_when_saves_wait_for_one_another(self) -> None:
        copies = self.hold_copies()
        saves = [defer.ensureDeferred(self.customer.save_catalog()) for _ in range(3)]
        for copy in copies[:4]:
            copy.callback(True)
        for copy in copies[4:]:
            copy.callback(True)
        for save in saves:
            done(save)
        # 4 copies of the first save and 4 of the one the other two shared, each counted once
        self.assertEqual((len(copies), self.customer.counters["catalog_copies"]), (8, 8))

    def test_a_fresh_home_takes_the_newest_copy_and_ignores_one_i_did_not_sign(self) -> None:
        self.upload(self.customer, self.source(3 * KIB), "notes.txt")
        done(defer.ensureDeferred(self.customer.create("more", "dir")))
        # one supplier holds an older revision: it is not the one taken
        stale = self.at(0)
        stale.node.online = False
        done(defer.ensureDeferred(self.customer.create("newest", "dir")))
        stale.node.online = True
        # another serves a copy with a byte changed: its signature fails and it is set aside
        self.at(1).node.lying = True
        preferred = " ".join(s.idurl for s in self.customer.suppliers.slots)
        fresh = make_customer(self.grid, self.root / "fresh", **{"preferred-suppliers": preferred})
        self.assertEqual(fresh.catalog.revision, 0)
        self.assertEqual(done(defer.ensureDeferred(fresh.connect())), 4)
        self.assertEqual(fresh.catalog.revision, self.customer.catalog.revision)
        self.assertIn("newest", fresh.catalog.entries)
        self.assertEqual(Catalog.parse((self.root / "fresh" / CATALOG_FILE).read_bytes()).revision,
                         fresh.catalog.revision)


class HiringTests(Cores):
    def test_four_of_five_hired_and_a_lost_one_replaced_once_for_many_callers(self) -> None:
        slots = self.customer.suppliers.slots
        self.assertEqual([s.state for s in slots], [SlotState.CONNECTED] * 4)
        spare = next(s for s in self.grid.suppliers if s.idurl not in {x.idurl for x in slots})
        lost = slots[2].idurl
        self.grid.supplier(lost).node.online = False
        spare.node.held = []  # its answers wait: the replacement is under way when the second caller asks
        first = self.customer.replace(2, "test: gone")
        second = self.customer.replace(2, "test: gone too")
        self.assertFalse(first.called)
        for _round in range(10):
            spare.node.release()
            if not first.called:
                spare.node.held = []
        done(first)
        done(second)
        self.assertEqual(slots[2].idurl, spare.idurl)
        self.assertEqual(self.customer.suppliers.counters["fired"], 1)
        self.assertEqual(self.customer.counters["replaced"], 1)
        # the one fired is set aside, and the file on disk says who holds each position now
        self.assertIn(lost, self.customer.suppliers.set_aside)
        self.assertIn(spare.idurl, (self.root / "dave" / "customer" / "suppliers.json").read_text())

    def test_a_candidate_that_refuses_is_set_aside_and_none_left_fails_the_replacement(self) -> None:
        slots = self.customer.suppliers.slots
        spare = next(s for s in self.grid.suppliers if s.idurl not in {x.idurl for x in slots})
        spare.supplier.donated = lambda: 0  # it has no room: Ack "deny"
        self.grid.supplier(slots[1].idurl).node.online = False
        d = self.customer.replace(1, "test")
        self.assertRaises(NoSupplier, done, d)
        self.assertEqual(slots[1].state, SlotState.FAILED)
        self.assertIn(spare.idurl, self.customer.suppliers.set_aside)
        self.assertGreaterEqual(self.customer.suppliers.counters["refused"], 1)


class LiveSettingsTests(SynchronousTestCase):
    """The customer service's settings that apply without a restart (services/customer.py live_settings)."""

    def test_a_preferred_supplier_named_while_all_are_hired_is_the_one_a_replacement_hires(self) -> None:
        root = Path(self.mktemp())
        root.mkdir()
        grid = MemoryGrid(root, suppliers=8)
        values: dict[str, Any] = {}
        customer = make_customer(grid, values=values)
        self.assertEqual(done(defer.ensureDeferred(customer.connect())), 4)
        hired = {slot.idurl for slot in customer.suppliers.slots}
        wanted = [s.idurl for s in grid.suppliers if s.idurl not in hired][-1]
        # `bitdust set services/customer/preferred-suppliers ...` with every position connected: no fill runs
        values["preferred-suppliers"] = wanted
        grid.supplier(customer.suppliers.slots[1].idurl).node.online = False
        done(customer.replace(1, "test: gone"))
        self.assertEqual(customer.suppliers.slots[1].idurl, wanted)
        self.assertEqual(grid.errors, [])

class SpaceTests(Cores):
    """What each supplier keeps for me follows what I need: the needed-space setting, and my catalog's copies."""

    def kept_for_me(self) -> list[int]:
        """What each hired supplier's own record says it keeps for me."""
        me = self.customer.me.require().idurl
        return [self.grid.supplier(slot.idurl).supplier.customers.by_idurl[me].allocated
                for slot in self.customer.suppliers.slots]

    def test_more_space_wanted_is_asked_of_the_suppliers_hired(self) -> None:
        first = self.customer.per_supplier()
        self.assertEqual(self.kept_for_me(), [first] * 4)
        self.assertEqual(self.customer.suppliers.to_ask_again(first), [])
        self.values["needed-space"] = "256 MB"
        more = self.customer.per_supplier()
        self.assertGreater(more, first)
        self.assertEqual(len(self.customer.suppliers.to_ask_again(more)), 4)
        self.assertEqual(done(defer.ensureDeferred(self.customer.keep_space())), 4)
        self.assertEqual(self.kept_for_me(), [more] * 4)
        self.assertEqual(self.customer.suppliers.to_ask_again(more), [])
        # remembered: a restart does not ask them again
        again = make_customer(self.grid, values=self.values)
        self.assertEqual([s.asked for s in again.suppliers.slots], [more] * 4)
        self.assertEqual(self.customer.suppliers.counters["hired"], 4)  # nobody hired anew

    def test_a_supplier_short_of_space_keeps_what_it_gave_and_stays_hired(self) -> None:
        self.customer.start()
        self.addCleanup(self.customer.close)
        first = self.customer.per_supplier()
        short = self.grid.supplier(self.customer.suppliers.slots[1].idurl)
        short.supplier.donated = lambda: first + (1 << 20)  # type: ignore[method-assign]
        self.values["needed-space"] = "256 MB"
        more = self.customer.per_supplier()
        # the first takes it, the second refuses: the round ends there (an official supplier would drop me)
        self.assertEqual(done(defer.ensureDeferred(self.customer.keep_space())), 1)
        self.assertEqual(self.kept_for_me(), [more, first, first, first])
        slots = self.customer.suppliers.slots
        self.assertEqual([s.state for s in slots], [SlotState.CONNECTED] * 4)
        self.assertEqual(slots[1].asked, first)
        self.assertEqual(self.customer.suppliers.to_ask_again(more), [slots[2], slots[3]])  # not the one refusing
        # nobody else is asked before the round of checks the refusal started ran, and found all whole
        self.assertEqual(done(defer.ensureDeferred(self.customer.keep_space())), 0)
        self.grid.clock.advance(1)
        self.assertEqual(self.customer.counters["health_rounds"], 1)
        self.assertEqual(done(defer.ensureDeferred(self.customer.keep_space())), 2)
        self.assertEqual(self.kept_for_me(), [more, first, more, more])
        # not asked again while it holds the position (an official one would drop me each time), a restart too
        self.grid.clock.advance(3600)
        short.supplier.donated = lambda: 1 << 30  # type: ignore[method-assign]
        self.assertEqual(self.customer.suppliers.to_ask_again(more), [])
        again = make_customer(self.grid, values=self.values)
        self.assertEqual([s.short for s in again.suppliers.slots], [False, True, False, False])
        self.assertEqual(again.suppliers.to_ask_again(more), [])

    def test_a_supplier_that_does_not_answer_is_asked_again_later_and_the_others_now(self) -> None:
        first = self.customer.per_supplier()
        away = self.grid.supplier(self.customer.suppliers.slots[1].idurl)
        away.node.online = False
        self.values["needed-space"] = "256 MB"
        more = self.customer.per_supplier()
        self.assertEqual(done(defer.ensureDeferred(self.customer.keep_space())), 3)
        slots = self.customer.suppliers.slots
        self.assertEqual((slots[1].asked, slots[1].short), (first, False))  # no refusal: not marked short
        self.assertEqual(self.customer.suppliers.to_ask_again(more), [])  # not asked again at once
        away.node.online = True
        self.grid.clock.advance(901)
        self.assertEqual(self.customer.suppliers.to_ask_again(more), [slots[1]])
        self.assertEqual(done(defer.ensureDeferred(self.customer.keep_space())), 1)
        self.assertEqual(self.kept_for_me(), [more] * 4)

    def test_an_official_supplier_that_drops_me_when_it_refuses_more_takes_me_back_and_gets_its_shares_again(
        self,
    ) -> None:
        path = self.source(5 * 64 * KIB, "five.bin")
        data = path.read_bytes()
        self.upload(self.customer, path, "five.bin")
        self.customer.start()
        self.addCleanup(self.customer.close)
        first = self.customer.per_supplier()
        short = self.grid.supplier(self.customer.suppliers.slots[0].idurl)
        drops_when_refusing_more(short, first + (1 << 20))
        self.values["needed-space"] = "256 MB"
        self.assertEqual(done(defer.ensureDeferred(self.customer.keep_space())), 0)
        self.assertEqual(short.pieces(), [])  # what it held of mine is gone
        # it took me back for what it kept before; the others were not asked in that round
        self.assertEqual(self.kept_for_me(), [first] * 4)
        # the round of checks it started finds the missing shares, and the repairs put them back
        for _second in range(120):
            self.grid.clock.advance(1)
            if len(short.pieces()) == 5:
                break
        self.assertEqual(len(short.pieces()), 5)
        self.assertEqual(self.download(self.customer, "five.bin"), data)
        # later rounds do not ask it again: each ask would drop me and what it holds again
        for _round in range(3):
            self.grid.clock.advance(3600)
            done(defer.ensureDeferred(self.customer.keep_space()))
            self.assertEqual(len(short.pieces()), 5)
        self.assertEqual(self.customer.suppliers.counters["refused_more"], 1)

    def test_official_suppliers_short_of_space_are_not_dropped_one_round_after_another(self) -> None:
        # the service calls keep_space every 10 s while to_ask_again names somebody: a round ends at the first
        # refusal, but the next asks the next supplier before the repairs of the first (hours for a large store)
        # are done; three of four positions dropped leaves fewer than k = 2 shares of each block
        self.upload(self.customer, self.source(5 * 64 * KIB, "five.bin"), "five.bin")
        first = self.customer.per_supplier()
        for slot in self.customer.suppliers.slots[:3]:
            drops_when_refusing_more(self.grid.supplier(slot.idurl), first + (1 << 20))
        self.values["needed-space"] = "256 MB"
        for _tick in range(3):
            done(defer.ensureDeferred(self.customer.keep_space()))
        holding = [s for s in self.customer.suppliers.slots if self.grid.supplier(s.idurl).pieces()]
        self.assertGreaterEqual(len(holding), erasure.needed(4))

    def test_less_space_wanted_never_takes_back_what_my_files_fill(self) -> None:
        # a supplier keeping less than it holds of mine refuses what I store next (ours) or deletes my oldest
        # files (official suppliers, PROTOCOL-P2P.md 5.1): the suppliers hired are asked again for more only
        self.upload(self.customer, self.source(3 << 20, "three.bin"), "three.bin")
        gid = self.customer.me.require().global_id
        holding = [self.grid.supplier(s.idurl).supplier.store.used[gid] for s in self.customer.suppliers.slots]
        self.values["needed-space"] = "1 MB"
        self.assertLess(self.customer.per_supplier(), min(holding))
        done(defer.ensureDeferred(self.customer.keep_space()))
        for kept, held in zip(self.kept_for_me(), holding, strict=True):
            self.assertGreaterEqual(kept, held)
        self.upload(self.customer, self.source(100 * KIB, "small.bin"), "small.bin")
        self.assertEqual(self.customer.counters["replaced"], 0)

    def test_the_room_for_the_catalogs_copies_doubles_as_it_grows(self) -> None:
        mib = 1 << 20
        sizes = (0, 300_000, 400_000, 31 * mib)
        self.assertEqual([catalog_room(size) for size in sizes], [mib, mib, 2 * mib, 128 * mib])

    def test_a_catalog_that_doubles_asks_for_room_for_its_copies(self) -> None:
        first = self.customer.per_supplier()
        catalog = self.customer.catalog
        for number in range(4500):  # over 0.4 MiB of catalog: its copies twice, a third larger, pass 1 MiB
            catalog.ensure(f"photos/{number // 50}/img{number}.jpg", "file", 1000.0 + number)
        self.assertEqual(done(defer.ensureDeferred(self.customer.keeper.save())), 4)
        self.assertGreater(self.customer.keeper.disk.size, 400_000)
        more = self.customer.per_supplier()
        self.assertEqual(more - first, 1 << 20)  # 2 MiB of room instead of 1
        self.assertEqual(done(defer.ensureDeferred(self.customer.keep_space())), 4)
        self.assertEqual(self.kept_for_me(), [more] * 4)


class TransferTests(Cores):
    def test_no_more_than_the_window_of_blocks_is_in_flight(self) -> None:
        for supplier in self.grid.suppliers:
            supplier.node.held = []  # the suppliers take every piece, and their Acks wait
        transfer, work = self.customer.start_upload(self.source(40 * 64 * KIB), "big.bin")
        self.assertFalse(work.called)
        self.assertEqual(self.grid.sent["Data"], WINDOW * 4)  # 4 blocks of 4 shares out, the 5th not made
        for _round in range(100):
            if work.called:
                break
            for supplier in self.grid.suppliers:
                supplier.node.held, held = [], supplier.node.held or []
                for send in held:
                    send()
            self.assertLessEqual(self.grid.sent["Data"] - 4 * transfer.done // (64 * KIB), WINDOW * 4)
        done(work)
        self.assertEqual(self.grid.sent["Data"], 40 * 4 + 4)  # and the catalog's copies

    def test_a_supplier_replaced_while_it_holds_pieces_gives_them_to_its_successor_at_once(self) -> None:
        """Pieces a supplier took and never answered go to its successor when it is replaced, instead of waiting
        out their timeout; and their late failures do not fire the successor."""
        slots = self.customer.suppliers.slots
        spare = next(s for s in self.grid.suppliers if s.idurl not in {x.idurl for x in slots})
        silent = self.at(2)
        silent.node.held = []  # it takes every piece and never answers
        started = self.grid.clock.seconds()
        transfer, work = self.customer.start_upload(self.source(6 * 64 * KIB), "six.bin")
        self.assertFalse(work.called)
        self.grid.clock.advance(30)
        silent.node.online = False
        replaced = self.customer.replace(2, "test: silent")  # as the health checks would
        for _second in range(59):
            if work.called:
                break
            self.grid.clock.advance(1)
        done(replaced)
        done(work)
        self.assertEqual((transfer.state, transfer.error), (TransferState.DONE, ""))
        self.assertLess(self.grid.clock.seconds() - started, 60)
        self.grid.clock.advance(120)  # when the silent one's waits would have timed out
        self.assertEqual(slots[2].idurl, spare.idurl)
        self.assertEqual(self.customer.suppliers.counters["fired"], 1)

    def test_a_download_sends_its_blocks_to_the_disk_as_they_are_written(self) -> None:
        data = os.urandom(5 * 64 * KIB + 17)
        path = self.root / "six.bin"
        path.write_bytes(data)
        self.upload(self.customer, path, "six.bin")
        synced: list[int] = []
        real = os.fdatasync
        self.patch(os, "fdatasync", lambda fd: synced.append(fd) or real(fd))
        self.assertEqual(self.download(self.customer, "six.bin"), data)
        self.assertEqual(len(synced), 6)  # a sync a block (none under way here when the next is written)

    def test_a_download_from_k_of_n_with_a_lying_supplier_and_one_gone(self) -> None:
        data = os.urandom(5 * 64 * KIB + 17)
        path = self.root / "report.bin"
        path.write_bytes(data)
        self.upload(self.customer, path, "report.bin")
        self.at(0).node.lying = True
        self.at(3).node.online = False
        self.assertEqual(self.download(self.customer, "report.bin"), data)
        self.assertEqual(self.customer.counters["bad_shares"], 6)  # each block's share 0, noticed and set aside
        self.at(1).node.online = False  # now only one good share of each block is left
        transfer, work = self.customer.start_download("report.bin", self.root / "never")
        self.assertRaises(TransferError, done, work)
        self.assertEqual(transfer.state, TransferState.FAILED)
        self.assertIn("cannot be rebuilt", transfer.error)


    def release_until(self, reached: Callable[[], bool]) -> None:
        """The answers the suppliers hold sent, a round at a time (each round's answers held again), until `reached`."""
        for _round in range(20):
            if reached():
                return
            for supplier in self.grid.suppliers:
                supplier.node.held, held = [], supplier.node.held or []
                for send in held:
                    send()

    def release_all(self) -> None:
        """Every answer the suppliers hold sent, and none held from now on."""
        for supplier in self.grid.suppliers:
            supplier.node.release()

    def saved_paths(self) -> list[str]:
        """The paths of the catalog as saved in my home."""
        return sorted(Catalog.parse((self.root / "dave" / "customer" / CATALOG_FILE).read_bytes()).entries)

    def pieces_of(self, backup: str) -> list[Path]:
        """The pieces of a version (`key:path id/version`) on every supplier."""
        folder = backup.split(":", 1)[1]
        return [p for s in self.grid.suppliers for p in s.pieces() if folder in p.as_posix()]

    def test_a_stopped_upload_ends_at_once_and_its_pieces_go_once_their_stores_settle(self) -> None:
        kept = self.source(64 * KIB + 3, "kept.bin")
        self.upload(self.customer, kept, "kept.bin")
        for supplier in self.grid.suppliers:
            supplier.node.held = []  # the suppliers take every piece, and their Acks wait
        transfer, work = self.customer.start_upload(self.source(40 * 64 * KIB), "big.bin")
        self.assertFalse(work.called)
        self.assertEqual(self.customer.transfer_log.stop(TransferKind.DOWNLOAD, "big.bin"), [])
        self.assertEqual(self.customer.transfer_log.stop(TransferKind.UPLOAD, "big"), [])
        self.assertEqual(self.customer.transfer_log.stop(TransferKind.UPLOAD, "big.bin"), [transfer])
        self.assertRaises(TransferStopped, done, work)
        self.assertEqual((transfer.state, transfer.error), (TransferState.STOPPED, "stopped by the user"))
        self.assertIsNone(self.customer.catalog.entry("big.bin"))  # the upload made it: it goes with its version
        self.assertEqual(self.customer.counters["versions_abandoned"], 1)
        self.assertEqual(self.customer.transfer_log.stop(TransferKind.UPLOAD, "big.bin"), [])  # ended already
        self.assertEqual(self.grid.sent["DeleteBackup"], 0)  # not before the pieces under way have settled
        self.assertTrue(self.pieces_of(transfer.version))
        self.release_all()
        self.assertEqual(self.grid.sent["DeleteBackup"], 4)
        self.assertEqual(self.pieces_of(transfer.version), [])
        # kept.bin's 2 blocks and a catalog's copies; big.bin's window and no block after it; the catalog saved again
        self.assertEqual(self.grid.sent["Data"], 2 * 4 + 4 + WINDOW * 4 + 4)
        self.assertEqual(self.download(self.customer, "kept.bin"), kept.read_bytes())
        self.assertEqual(self.saved_paths(), ["kept.bin"])

    def test_a_failed_upload_of_a_new_version_keeps_the_versions_before(self) -> None:
        first = self.source(2 * 64 * KIB, "doc.bin")
        self.upload(self.customer, first, "doc.bin")
        for supplier in self.grid.suppliers:
            supplier.node.online = False
        transfer, work = self.customer.start_upload(self.source(3 * 64 * KIB, "doc.bin"), "doc.bin")
        self.grid.clock.advance(600)
        self.assertRaises(NoSupplier, done, work)
        self.assertEqual(transfer.state, TransferState.FAILED)
        entry = self.customer.catalog.entry("doc.bin")
        assert entry is not None
        self.assertEqual([v.complete for v in entry.versions], [True])

    def test_a_stopped_folder_upload_keeps_the_files_it_stored(self) -> None:
        folder = self.root / "album"
        folder.mkdir()
        (folder / "a.bin").write_bytes(os.urandom(64 * KIB))
        (folder / "b.bin").write_bytes(os.urandom(20 * 64 * KIB))
        for supplier in self.grid.suppliers:
            supplier.node.held = []
        transfer, work = self.customer.start_upload(folder, "album")
        # a.bin stored and b.bin under way
        self.release_until(lambda: self.customer.catalog.entry("album/b.bin") is not None)
        self.assertEqual(len(self.customer.transfer_log.stop(TransferKind.UPLOAD, "album")), 1)
        self.assertRaises(TransferStopped, done, work)
        self.assertEqual(transfer.state, TransferState.STOPPED)
        self.release_all()
        self.assertEqual(sorted(self.customer.catalog.entries), ["album", "album/a.bin"])
        self.assertEqual(self.saved_paths(), ["album", "album/a.bin"])
        back = self.root / "back"
        done(self.customer.start_download("album/a.bin", back)[1])
        self.assertEqual((back / "a.bin").read_bytes(), (folder / "a.bin").read_bytes())

    def test_a_folder_holding_a_file_too_deep_for_a_supplier_is_refused_before_anything_is_stored(self) -> None:
        folder = self.root / "deep"
        nested = folder.joinpath(*(f"d{level}" for level in range(MAX_PATH_DEPTH - 1)))
        nested.mkdir(parents=True)
        (folder / "a.bin").write_bytes(os.urandom(64 * KIB))
        (nested / "too-deep.bin").write_bytes(b"x")
        with self.assertRaises(InvalidInput) as raised:
            self.customer.start_upload(folder, "deep")
        self.assertIn("too-deep.bin", str(raised.exception))
        self.assertEqual(self.customer.catalog.entries, {})
        (nested / "too-deep.bin").unlink()
        (nested.parent / "deepest.bin").write_bytes(b"y")  # as deep as a supplier takes: stored
        done(self.customer.start_upload(folder, "deep")[1])
        self.assertIsNotNone(self.customer.catalog.entry("deep/" + "/".join(f"d{n}" for n in range(MAX_PATH_DEPTH - 2))
                                                         + "/deepest.bin"))

    def test_a_new_upload_right_after_a_stop_keeps_its_pieces(self) -> None:
        """A stopped version's name is not taken again while its DeleteBackup waits for the stores under way: an
        upload of the same file in the same second would have it, and the late DeleteBackup would erase it."""
        self.upload(self.customer, self.source(64 * KIB, "doc.bin"), "doc.bin")
        for supplier in self.grid.suppliers:
            supplier.node.held = []
        stopped, work = self.customer.start_upload(self.source(8 * 64 * KIB, "doc.bin"), "doc.bin")
        self.customer.transfer_log.stop(TransferKind.UPLOAD, "doc.bin")
        self.assertRaises(TransferStopped, done, work)
        data = os.urandom(64 * KIB + 5)
        again = self.root / "again"
        again.mkdir()
        (again / "doc.bin").write_bytes(data)
        second, work = self.customer.start_upload(again / "doc.bin", "doc.bin")
        self.release_all()  # the stopped stores settle, then the new upload's Acks come
        done(work)
        self.assertEqual(second.state, TransferState.DONE)
        self.assertNotEqual(second.version, stopped.version)
        self.assertEqual(self.download(self.customer, "doc.bin"), data)

    def test_a_stopped_upload_replaces_no_supplier_for_its_abandoned_shares(self) -> None:
        """Once stopped, a store that times out fires no supplier, hires none and sends nobody the abandoned
        version's share."""
        for position in range(4):
            self.at(position).node.held = []  # the one not hired answers: it can take a fired one's place
        _transfer, work = self.customer.start_upload(self.source(8 * 64 * KIB), "big.bin")
        self.customer.transfer_log.stop(TransferKind.UPLOAD, "big.bin")
        self.assertRaises(TransferStopped, done, work)
        data_before = self.grid.sent["Data"]
        self.grid.clock.advance(61)  # the held Acks never come: the stores time out
        self.assertEqual(self.customer.counters["replaced"], 0)
        self.assertEqual(self.grid.sent["Data"], data_before)

    def test_a_stopped_upload_keeps_a_file_made_before_it_or_meanwhile(self) -> None:
        """The entry goes with the version only if the upload made it, and is still the one the upload made: a file
        registered before (`file/create`) stays, and so does one made again while the upload ran."""
        done(defer.ensureDeferred(self.customer.create("made-before.bin", "file")))
        for supplier in self.grid.suppliers:
            supplier.node.held = []
        _transfer, work = self.customer.start_upload(self.source(8 * 64 * KIB), "made-before.bin")
        self.customer.transfer_log.stop(TransferKind.UPLOAD, "made-before.bin")
        self.assertRaises(TransferStopped, done, work)
        entry = self.customer.catalog.entry("made-before.bin")
        self.assertEqual((entry.kind, entry.versions) if entry else None, ("file", []))
        _transfer, work = self.customer.start_upload(self.source(8 * 64 * KIB, "x.bin"), "again.bin")
        self.customer.catalog.remove("again.bin")  # deleted and made again while its upload runs
        remade = self.customer.catalog.ensure("again.bin", "file", self.grid.clock.seconds())
        self.customer.transfer_log.stop(TransferKind.UPLOAD, "again.bin")
        self.assertRaises(TransferStopped, done, work)
        self.assertIs(self.customer.catalog.entry("again.bin"), remade)
        self.release_all()

    def test_a_transfer_in_work_no_stop_can_cut_short_is_found_by_every_stop_until_it_ends(self) -> None:
        log = TransferLog(self.grid.clock)
        in_thread: defer.Deferred[None] = defer.Deferred()  # a block being sealed in a worker thread

        async def work(transfer: Transfer) -> None:
            await in_thread
            transfer.stop.check()

        transfer, ended = log.start(TransferKind.UPLOAD, "big.bin", "/tmp/big.bin", 10, work)
        self.assertEqual(log.stop(TransferKind.UPLOAD, "big.bin"), [transfer])
        self.assertEqual(transfer.state, TransferState.RUNNING)  # stopping: said so, not "aborted"
        self.assertEqual(log.stop(TransferKind.UPLOAD, "big.bin"), [transfer])  # asked again: still found
        in_thread.callback(None)
        self.assertRaises(TransferStopped, done, ended)
        self.assertEqual(transfer.state, TransferState.STOPPED)
        self.assertEqual(log.stop(TransferKind.UPLOAD, "big.bin"), [])

    def test_a_stopped_download_leaves_no_file_behind(self) -> None:
        data = os.urandom(6 * 64 * KIB)
        path = self.root / "six.bin"
        path.write_bytes(data)
        self.upload(self.customer, path, "six.bin")
        for supplier in self.grid.suppliers:
            supplier.node.held = []  # the shares asked for wait
        folder = self.root / "back"
        transfer, work = self.customer.start_download("six.bin", folder)
        self.assertFalse(work.called)
        self.assertEqual([t.remote_path for t in self.customer.transfer_log.stop(TransferKind.DOWNLOAD, "six.bin")],
                         ["six.bin"])
        self.assertRaises(TransferStopped, done, work)
        self.assertEqual(transfer.state, TransferState.STOPPED)
        self.assertEqual(list(folder.iterdir()), [])  # neither the file nor its .incoming
        self.release_all()
        self.assertEqual(self.download(self.customer, "six.bin"), data)

    def test_a_stopped_folder_download_keeps_the_files_it_brought_back_whole(self) -> None:
        folder = self.root / "album"
        folder.mkdir()
        (folder / "a.bin").write_bytes(os.urandom(64 * KIB))
        (folder / "b.bin").write_bytes(os.urandom(12 * 64 * KIB))
        self.upload(self.customer, folder, "album")
        for supplier in self.grid.suppliers:
            supplier.node.held = []
        back = self.root / "back"
        transfer, work = self.customer.start_download("album", back)
        self.release_until((back / "album" / "a.bin").exists)  # a.bin written and b.bin under way
        self.assertEqual(len(self.customer.transfer_log.stop(TransferKind.DOWNLOAD, "album")), 1)
        self.assertRaises(TransferStopped, done, work)
        self.assertEqual(transfer.state, TransferState.STOPPED)
        self.release_all()
        self.assertEqual(sorted(p.name for p in (back / "album").iterdir()), ["a.bin"])
        self.assertEqual((back / "album" / "a.bin").read_bytes(), (folder / "a.bin").read_bytes())

    def test_a_block_whose_key_a_hand_edit_spoiled_fails_its_download_with_a_clear_error(self) -> None:
        self.upload(self.customer, self.source(2 * 64 * KIB, "doc.bin"), "doc.bin")
        entry = self.customer.catalog.entry("doc.bin")
        assert entry is not None
        entry.versions[0].blocks[1].wrapped_key = "not base64"  # type: ignore[assignment]  # as a copy read back
        transfer, work = self.customer.start_download("doc.bin", self.root / "back")
        self.assertRaises(TransferError, done, work)
        self.assertEqual(transfer.error, "block 1 of doc.bin has no readable key in the catalog")

    def test_a_file_stored_before_blake3_downloads_and_its_shares_still_check(self) -> None:
        """A catalog an older node wrote holds each share's SHA-256: its files download, and a share that does not
        match it is set aside."""
        data = os.urandom(3 * 64 * KIB + 5)
        path = self.root / "old.bin"
        path.write_bytes(data)
        current = erasure.share_hash
        self.patch(erasure, "share_hash", lambda share: hashlib.sha256(share).hexdigest())  # the older writer
        self.upload(self.customer, path, "old.bin")
        self.patch(erasure, "share_hash", current)
        version = self.customer.catalog.entry("old.bin").latest()
        self.assertTrue(all(len(h) == 64 and ":" not in h for b in version.blocks for h in b.shares))
        self.assertEqual(self.download(self.customer, "old.bin"), data)
        self.assertEqual(self.customer.counters["bad_shares"], 0)
        version.blocks[1].shares[0] = hashlib.sha256(b"another share").hexdigest()
        self.assertEqual(self.download(self.customer, "old.bin"), data)
        self.assertEqual(self.customer.counters["bad_shares"], 1)  # block 1's share 0, asked for again elsewhere


class RepairTests(Cores):
    def test_a_replaced_position_gets_its_shares_of_every_block_again(self) -> None:
        data = os.urandom(3 * 64 * KIB)
        path = self.root / "photo.jpg"
        path.write_bytes(data)
        self.upload(self.customer, path, "photo.jpg")
        lost = self.at(2)
        lost.node.online = False
        done(self.customer.replace(2, "test: gone for good"))
        self.assertTrue(self.customer.repairs.idle)  # on the grid the repairs are done at once
        newcomer = self.at(2)
        self.assertNotEqual(newcomer.idurl, lost.idurl)
        self.assertEqual([p.name for p in newcomer.pieces()], ["0-2-Data", "1-2-Data", "2-2-Data"])
        entry = self.customer.catalog.entry("photo.jpg")
        assert entry is not None
        self.assertEqual(entry.versions[-1].suppliers[2], newcomer.idurl)
        self.assertEqual(self.customer.counters["shares_repaired"], 3)
        # the rebuilt shares are the ones that were lost: two of the others gone, the file comes back from them
        self.at(0).node.online = False
        self.at(1).node.online = False
        self.assertEqual(self.download(self.customer, "photo.jpg"), data)
