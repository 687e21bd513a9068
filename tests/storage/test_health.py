"""The customer keeping its files whole by itself, on an in-memory grid of our real suppliers and a Clock: the
checks' schedule, pieces deleted or changed on a supplier's disk found and rebuilt, the sample covering every
piece within a week within its budget, the repairs' order, a silent supplier replaced after the offline time
(sooner when no share is left to spare), the repairs going on after a restart, a supplier that freed my space."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.storage import erasure
from bitdust_node.storage.catalog import BlockInfo, Entry, Version
from bitdust_node.storage.customer import Customer
from bitdust_node.storage.health import CHECK_BUDGET, DAY, BlockRef, Piece
from bitdust_node.storage.transfers import TransferState
from tests.storage.grid import GridSupplier, MemoryGrid, make_customer
from tests.storage.test_customer_cores import done

KIB = 1024
HOUR = 3600.0
BLOCK = 64 * KIB


class Grid(SynchronousTestCase):
    def setUp(self) -> None:
        self.root = Path(self.mktemp())
        self.root.mkdir()
        self.grid = MemoryGrid(self.root)
        self.values: dict[str, Any] = {}
        self.customer = self.new_customer()

    def new_customer(self) -> Customer:
        customer = make_customer(self.grid, values=self.values)
        self.assertEqual(done(defer.ensureDeferred(customer.connect())), 4)
        customer.start()
        self.addCleanup(customer.close)
        return customer

    def tearDown(self) -> None:
        self.assertEqual(self.grid.errors, [])

    def store(self, name: str, size: int) -> bytes:
        data = os.urandom(size)
        path = self.root / name
        path.write_bytes(data)
        transfer, work = self.customer.start_upload(path, name)
        done(work)
        self.assertEqual(transfer.state, TransferState.DONE)
        return data

    def restored(self, name: str) -> bytes:
        folder = self.root / f"back{self.grid.clock.seconds():.0f}{len(os.listdir(self.root))}"
        _transfer, work = self.customer.start_download(name, folder)
        done(work)
        return (folder / name).read_bytes()

    def at(self, position: int) -> GridSupplier:
        return self.grid.supplier(self.customer.suppliers.slots[position].idurl)

    def health(self, name: str) -> tuple[int, int]:
        entry = self.customer.catalog.entry(name)
        assert entry is not None
        return self.customer.file_health(entry)

    def hours(self, count: float) -> None:
        for _ in range(int(count)):
            self.grid.clock.advance(HOUR)


class ScheduleTests(Grid):
    def test_a_check_every_interval_and_a_change_applies_at_the_next(self) -> None:
        self.store("a.bin", 2 * BLOCK)
        self.grid.clock.advance(HOUR - 1)
        self.assertEqual(self.customer.counters["health_rounds"], 0)
        self.grid.clock.advance(1)
        self.assertEqual(self.customer.counters["health_rounds"], 1)
        self.assertEqual(self.customer.counters["listings_asked"], 4)
        self.values["health-check-interval-seconds"] = 60
        self.hours(1)  # the round due in an hour, then one a minute
        self.assertEqual(self.customer.counters["health_rounds"], 2)
        for _minute in range(10):
            self.grid.clock.advance(60)
        self.assertEqual(self.customer.counters["health_rounds"], 12)
        self.assertEqual(self.health("a.bin"), (4, 4))

    def test_a_restart_checks_when_the_last_round_says_it_is_due(self) -> None:
        self.store("a.bin", BLOCK)
        self.hours(1)
        self.customer.close()
        self.grid.clock.advance(5 * HOUR)  # the customer was off
        again = self.new_customer()
        self.grid.clock.advance(1)
        self.assertEqual(again.counters["health_rounds"], 1)


    def test_a_check_soon_runs_a_round_in_a_second_and_the_interval_goes_on_after_it(self) -> None:
        self.store("a.bin", BLOCK)
        self.grid.clock.advance(10)
        self.customer.health.check_soon()
        self.grid.clock.advance(1)
        self.assertEqual(self.customer.counters["health_rounds"], 1)
        self.grid.clock.advance(HOUR - 1)
        self.assertEqual(self.customer.counters["health_rounds"], 1)
        self.grid.clock.advance(1)
        self.assertEqual(self.customer.counters["health_rounds"], 2)

    def test_a_check_soon_while_a_round_runs_runs_another_after_it(self) -> None:
        # the running round may have had its listings before the supplier dropped what I stored: it cannot tell
        self.store("a.bin", BLOCK)
        self.at(3).node.deliver = lambda packet: None  # type: ignore[method-assign]  # its listing awaited 30 s
        self.hours(1)
        self.assertEqual(self.customer.counters["health_rounds"], 1)
        running = self.customer.health.round
        assert running is not None
        self.assertFalse(running.called)
        self.customer.health.check_soon()
        for _second in range(60):
            self.grid.clock.advance(1)
        self.assertTrue(running.called)
        self.assertEqual(self.customer.counters["health_rounds"], 2)

class FindAndRebuildTests(Grid):
    def test_pieces_deleted_from_a_disk_are_found_and_rebuilt(self) -> None:
        data = self.store("report.bin", 5 * BLOCK + 100)
        victim = self.at(1)
        gone = victim.pieces()
        self.assertEqual(len(gone), 6)
        for piece in gone:
            piece.unlink()
        self.hours(1)
        self.assertEqual(self.customer.counters["pieces_missing"], 6)
        self.assertEqual([p.name for p in victim.pieces()], [p.name for p in gone])  # rebuilt in the same round
        self.assertEqual(self.customer.counters["shares_repaired"], 6)
        self.assertEqual(self.health("report.bin"), (4, 4))
        self.assertEqual(self.customer.health.bad, {})
        for other in (0, 2):
            self.at(other).node.online = False
        self.assertEqual(self.restored("report.bin"), data)  # from the rebuilt shares and one other

    def test_a_flipped_byte_is_found_by_the_sample_and_rebuilt(self) -> None:
        data = self.store("photo.jpg", 3 * BLOCK)
        liar = self.at(3)
        piece = liar.pieces()[1]
        raw = bytearray(piece.read_bytes())
        raw[len(raw) // 2] ^= 0x01
        piece.write_bytes(bytes(raw))
        # twelve pieces and one verified an hour (the budget of so small a store): found within twelve hours
        for _hour in range(12):
            self.hours(1)
            if self.customer.counters["pieces_altered"]:
                break
        self.assertEqual(self.customer.counters["pieces_altered"], 1)
        self.assertNotEqual(piece.read_bytes(), bytes(raw))  # stored again, whole
        self.assertEqual(self.health("photo.jpg"), (4, 4))
        for other in (0, 1):
            self.at(other).node.online = False
        self.assertEqual(self.restored("photo.jpg"), data)

    def test_the_pieces_of_a_catalog_written_before_blake3_check_out(self) -> None:
        current = erasure.share_hash
        self.patch(erasure, "share_hash", lambda share, like="": hashlib.sha256(share).hexdigest())  # older writer
        self.store("old.bin", 3 * BLOCK)
        self.patch(erasure, "share_hash", current)
        for _hour in range(24):
            self.hours(1)
        self.assertGreaterEqual(self.customer.counters["pieces_checked"], 12)
        self.assertEqual((self.customer.counters["pieces_altered"], self.health("old.bin")), (0, (4, 4)))

    def test_health_shows_the_weakest_block_and_a_silent_supplier(self) -> None:
        self.store("a.bin", 2 * BLOCK)
        self.at(0).pieces()[0].unlink()
        self.customer.repairs.stop()  # the block stays degraded
        self.hours(1)
        self.assertEqual(self.health("a.bin"), (3, 4))
        self.at(2).node.online = False
        self.hours(1)
        self.assertEqual(self.health("a.bin"), (2, 4))  # a share that did not answer is not counted healthy
        self.assertEqual(self.customer.health.check_of(2).misses, 1)


class SampleTests(SynchronousTestCase):
    """The sample on its own, with stores of every size."""

    def pieces(self, count: int, size: int) -> list[Piece]:
        version = Version("F20261201075109PM", 0, 0.0, size * 2, [])
        version.blocks = [BlockInfo(size * 2, size * 2, b"", b"", ["h"] * 4) for _ in range(count // 4 + 1)]
        entry = Entry("f", "1", "file", 0.0, [version])
        return [Piece(BlockRef(entry, version, i // 4, f"1/v/{i // 4}"), i % 4, size) for i in range(count)]

    def rounds(self, count: int, size: int, rounds: int, interval: float = HOUR) -> tuple[int, float]:
        """(pieces verified at least once, share of the stored bytes read a day) over so many rounds."""
        grid_root = Path(self.mktemp())
        grid_root.mkdir()
        customer = make_customer(MemoryGrid(grid_root, suppliers=4), **{"health-check-interval-seconds": interval})
        health = customer.health
        present = self.pieces(count, size)
        read = 0
        seen = set()
        for number in range(rounds):
            for piece in health._sample(present):
                health.verified[piece.key] = number * interval + 1
                seen.add(piece.key)
                read += piece.size
        return len(seen), read / (count * size) / (rounds * interval / DAY)

    def test_a_store_of_a_week_of_rounds_is_verified_whole_within_a_week(self) -> None:
        covered, _cost = self.rounds(168, 2 << 20, 168)  # 168 pieces of 2 MiB: 4 MB blocks of a 2-of-4 file
        self.assertEqual(covered, 168)

    def test_a_large_store_reads_under_one_percent_a_day_and_every_piece_in_rotation(self) -> None:
        count = 3000  # 6 GiB of pieces: one or two an hour
        covered, cost = self.rounds(count, 2 << 20, 7 * 24)
        self.assertLess(cost, 0.01)
        self.assertGreater(cost, CHECK_BUDGET * 0.9)
        # every piece within 1 / CHECK_BUDGET days (none twice before every one once); daily rounds to be quick
        covered, cost = self.rounds(count, 2 << 20, int(1 / CHECK_BUDGET) + 1, interval=DAY)
        self.assertEqual(covered, count)
        self.assertLess(cost, 0.01)

    def test_the_pieces_verified_longest_ago_come_first_in_random_order(self) -> None:
        grid_root = Path(self.mktemp())
        grid_root.mkdir()
        health = make_customer(MemoryGrid(grid_root, suppliers=4)).health
        present = self.pieces(40, 1 << 20)
        for piece in present[:20]:
            health.verified[piece.key] = 100.0
        chosen = health._sample(present)
        self.assertEqual(len(chosen), 1)
        self.assertNotIn(chosen[0], present[:20])
        health.rng = random.Random(1)
        other = health._sample(present)
        self.assertNotIn(other[0], present[:20])


class RepairOrderTests(Grid):
    def test_the_block_with_fewest_healthy_shares_is_rebuilt_first(self) -> None:
        self.store("one.bin", BLOCK)
        self.store("two.bin", BLOCK)
        two = self.customer.catalog.entry("two.bin")
        assert two is not None
        # two.bin loses two shares, one.bin one
        for position in (0, 1):
            for piece in self.at(position).pieces():
                if two.path_id in str(piece):
                    piece.unlink()
        for piece in self.at(2).pieces():
            if two.path_id not in str(piece):
                piece.unlink()
        self.customer.repairs.concurrency = 1
        rebuilt: list[tuple[str, int]] = []
        rebuild = self.customer.rebuilder.rebuild_block

        async def recorded(block: BlockRef, positions: set[int]) -> set[int]:
            rebuilt.append((block.entry.path, len(positions)))
            return await rebuild(block, positions)

        self.patch(self.customer.rebuilder, "rebuild_block", recorded)
        self.hours(1)
        self.assertEqual(rebuilt, [("two.bin", 2), ("one.bin", 1)])
        self.assertEqual(self.customer.counters["shares_repaired"], 3)
        self.assertEqual((self.health("one.bin"), self.health("two.bin")), ((4, 4), (4, 4)))


class ReplacementTests(Grid):
    def test_a_supplier_silent_for_the_offline_time_is_replaced_and_its_shares_rebuilt(self) -> None:
        data = self.store("a.bin", 3 * BLOCK)
        lost = self.at(1)
        lost.node.online = False
        self.hours(23)
        self.assertEqual(self.customer.suppliers.slots[1].idurl, lost.idurl)  # not yet: one silent is spared
        self.assertEqual(self.health("a.bin"), (3, 4))
        self.hours(2)
        newcomer = self.at(1)
        self.assertNotEqual(newcomer.idurl, lost.idurl)
        self.assertEqual(self.customer.counters["replaced_offline"], 1)
        self.assertEqual(len(newcomer.pieces()), 3)
        self.hours(1)
        self.assertEqual(self.health("a.bin"), (4, 4))
        self.assertEqual(self.restored("a.bin"), data)

    def test_two_silent_of_four_are_replaced_after_two_checks(self) -> None:
        self.store("a.bin", 2 * BLOCK)
        for position in (0, 3):
            self.at(position).node.online = False
        self.grid.suppliers.append(self.grid.add_supplier("sup5"))  # a spare for each
        self.hours(1)
        self.assertEqual(self.customer.counters["replaced_offline"], 0)
        self.hours(1)  # no share left to spare: the second silent check replaces both
        self.assertEqual(self.customer.counters["replaced_offline"], 2)
        self.assertEqual(self.health("a.bin"), (4, 4))


class RestartTests(Grid):
    def test_repairs_go_on_after_a_restart(self) -> None:
        data = self.store("a.bin", 4 * BLOCK)
        for piece in self.at(2).pieces():
            piece.unlink()
        self.customer.repairs.stop()  # the customer stops before it repairs
        self.hours(1)
        self.assertEqual(len(self.customer.health.bad), 4)
        self.customer.close()
        again = self.new_customer()  # the same home: the health file says what is degraded
        self.assertEqual(again.health.bad, {})  # rebuilt at start, before any check
        self.assertEqual(again.counters["health_rounds"], 0)
        self.assertEqual(len(self.at(2).pieces()), 4)
        self.customer = again
        self.assertEqual(self.restored("a.bin"), data)


class ForgottenTests(Grid):
    def test_a_supplier_that_freed_my_space_takes_me_back_and_gets_my_shares_again(self) -> None:
        self.store("a.bin", 2 * BLOCK)
        victim = self.at(0)
        done(victim.supplier.drop_customer(self.customer.me.require().idurl))
        self.assertEqual(victim.pieces(), [])
        self.hours(1)
        self.assertIsNotNone(victim.supplier.customers.get(self.customer.me.require().idurl))
        self.assertEqual(len(victim.pieces()), 2)
        self.assertEqual(self.health("a.bin"), (4, 4))
