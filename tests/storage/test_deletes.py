"""Deletes: one packet to every supplier at once (a folder by its own path id), written down first, and asked
again of a supplier that was down or out of reach until it answers, after a restart too; never given to a newer
file's pieces."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.storage import piece_deletes
from bitdust_node.storage.catalog import Catalog, new_version
from bitdust_node.storage.catalog_disk import CATALOG_FILE
from bitdust_node.storage.catalog_keeper import CustomerClosed
from bitdust_node.storage.customer import DELETE_WAIT, Customer, PathBeingDeleted
from bitdust_node.storage.piece_deletes import DELETES_FILE, LIST_MAX, DeleteJournal
from bitdust_node.storage.suppliers import SlotState
from bitdust_node.storage.transfers import Transfer, TransferKind, TransferState, TransferStopped
from bitdust_node.storage.waits import at_most
from tests.storage.grid import GridSupplier, MemoryGrid, make_customer
from tests.storage.support import me
from tests.storage.test_customer_cores import KIB, Cores, done


class DeleteTests(Cores):
    def files_held(self, supplier_index: int) -> list[str]:
        """A grid supplier's pieces of files (my catalog's copy and its pages left out)."""
        supplier = self.grid.suppliers[supplier_index]
        return sorted(p.relative_to(supplier.store.root).as_posix() for p in supplier.pieces()
                      if "/index" not in p.as_posix() and "/master/0/" not in p.as_posix())

    def index_of(self, idurl: str) -> int:
        return next(n for n, s in enumerate(self.grid.suppliers) if s.idurl == idurl)

    def saved_paths(self) -> list[str]:
        return sorted(Catalog.parse((self.root / "dave" / "customer" / CATALOG_FILE).read_bytes()).entries)

    def written(self) -> dict[str, list[list[str]]]:
        """The journal as written in my home."""
        pending: dict[str, list[list[str]]] = json.loads(
            (self.root / "dave" / "customer" / DELETES_FILE).read_text())["pending"]
        return pending

    def check(self) -> None:
        done(defer.ensureDeferred(self.customer.health.check()))

    def test_a_folder_goes_from_every_supplier_by_its_own_path_id(self) -> None:
        folder = self.root / "photos"
        folder.mkdir()
        for number in range(5):
            (folder / f"{number}.jpg").write_bytes(bytes([number]) * (3 * KIB))
        self.upload(self.customer, folder, "photos")
        self.upload(self.customer, self.source(2 * KIB), "kept.txt")
        photos = self.customer.catalog.entry("photos")
        assert photos is not None
        away = self.customer.suppliers.slots[0].idurl
        self.grid.supplier(away).node.online = False
        self.assertEqual(done(defer.ensureDeferred(self.customer.delete("photos"))), 6)
        # the folder's own path id, not its files'
        key_id = self.customer.me.require().key_id
        self.assertEqual(self.written(), {away: [["DeleteFile", f"{key_id}:{photos.path_id}"]]})
        self.grid.supplier(away).node.online = True
        self.check()
        self.assertEqual(self.grid.sent["DeleteFile"], 4)
        self.assertEqual([len(self.files_held(n)) for n in range(5) if self.files_held(n)], [1, 1, 1, 1])
        self.assertEqual(self.saved_paths(), ["kept.txt"])
        self.assertEqual((self.customer.deletes.pending, self.written()), ({}, {}))
        self.assertEqual(self.download(self.customer, "kept.txt"), (self.root / "file.bin").read_bytes())

    def test_a_supplier_out_of_reach_owes_the_delete_until_it_answers_a_round_of_checks(self) -> None:
        self.upload(self.customer, self.source(3 * KIB), "a.txt")
        entry = self.customer.catalog.entry("a.txt")
        assert entry is not None
        lost = self.customer.suppliers.slots[1].idurl
        gone = self.grid.identities.by_idurl.pop(lost)  # its identity cannot be read for now
        self.assertEqual(done(defer.ensureDeferred(self.customer.delete("a.txt"))), 1)
        self.assertEqual(self.saved_paths(), [])
        self.assertEqual(self.grid.sent["DeleteFile"], 3)
        owed = [["DeleteFile", f"{self.customer.me.require().key_id}:{entry.path_id}"]]
        self.assertEqual(self.written(), {lost: owed})
        self.assertEqual(len(self.files_held(self.index_of(lost))), 1)
        self.grid.identities.by_idurl[lost] = gone
        self.check()
        self.assertEqual(self.files_held(self.index_of(lost)), [])
        self.assertEqual((self.customer.deletes.pending, self.written()), ({}, {}))

    def test_a_supplier_hired_but_not_connected_now_owes_the_delete_too(self) -> None:
        self.upload(self.customer, self.source(3 * KIB), "a.txt")
        slot = self.customer.suppliers.slots[2]
        slot.state = SlotState.FAILED  # its hire failed at my restart, say: it still holds my pieces
        self.assertEqual(done(defer.ensureDeferred(self.customer.delete("a.txt"))), 1)
        self.assertEqual(self.grid.sent["DeleteFile"], 3)
        self.assertEqual(list(self.customer.deletes.pending), [slot.idurl])
        slot.state = SlotState.CONNECTED
        self.check()
        self.assertEqual(self.files_held(self.index_of(slot.idurl)), [])
        self.assertEqual(self.customer.deletes.pending, {})

    def test_a_supplier_down_gets_what_it_owes_after_my_restart_a_packet_a_thousand(self) -> None:
        for name in ("a", "b", "c"):
            self.upload(self.customer, self.source(KIB, name), name)
        down = self.index_of(self.customer.suppliers.slots[2].idurl)
        self.grid.suppliers[down].node.online = False
        for name in ("a", "b", "c"):
            done(defer.ensureDeferred(self.customer.delete(name)))
        self.assertEqual(len(self.files_held(down)), 3)
        self.customer.close()
        again = make_customer(self.grid)  # the same home
        self.assertEqual(len(again.deletes.pending[self.grid.suppliers[down].idurl]), 3)
        self.grid.suppliers[down].node.online = True
        self.patch(piece_deletes, "LIST_MAX", 2)
        self.assertEqual(LIST_MAX, 1000)  # what a supplier reads of one packet
        sent = self.grid.sent["DeleteFile"]
        done(defer.ensureDeferred(again.health.check()))
        self.assertEqual(self.grid.sent["DeleteFile"] - sent, 2)
        self.assertEqual(self.files_held(down), [])
        self.assertEqual(again.deletes.pending, {})

    def test_what_a_supplier_that_held_none_of_them_answers_settles_them(self) -> None:
        idurl = self.customer.suppliers.slots[0].idurl
        key_id = self.customer.me.require().key_id
        done(self.customer.deletes.add([idurl], "DeleteFile", [f"{key_id}:123456", f"{key_id}:654321"]))
        self.check()  # it Fails the list (it holds none of them): nothing to ask again
        self.assertEqual(self.customer.deletes.pending, {})

    def test_a_supplier_replaced_is_asked_nothing_more(self) -> None:
        self.upload(self.customer, self.source(KIB), "a")
        away = self.customer.suppliers.slots[3].idurl
        self.grid.supplier(away).node.online = False
        done(defer.ensureDeferred(self.customer.delete("a")))
        self.assertEqual(list(self.customer.deletes.pending), [away])
        done(self.customer.replace(3, "test: silent"))
        self.assertEqual(self.customer.deletes.pending, {})

    def test_a_late_delete_never_takes_a_newer_files_path_id_nor_version(self) -> None:
        self.upload(self.customer, self.source(KIB), "v.bin")
        entry = self.customer.catalog.entry("v.bin")
        assert entry is not None
        key_id = self.customer.me.require().key_id
        # a DeleteBackup still owed of the name an upload in this second would take
        owed = new_version(self.grid.clock.seconds(), {v.version for v in entry.versions})
        # owed by a supplier that answers nothing now (one I hired before, say)
        done(self.customer.deletes.add(["http://127.0.0.1:8084/away.xml"], "DeleteBackup",
                                       [f"{key_id}:{entry.path_id}/{owed}"]))
        self.upload(self.customer, self.source(KIB), "v.bin")
        self.assertNotIn(owed, [v.version for v in entry.versions])
        self.assertEqual(self.customer.deletes.versions(), {entry.path_id: {owed}})
        # a DeleteFile owed of a path id: no new entry takes it
        picks = random.Random(5)
        first = str(picks.randrange(100_000, 1_000_000))
        made = Catalog().ensure("x", "file", 0.0, rng=random.Random(5), avoid={first})
        self.assertNotEqual(made.path_id, first)
        self.assertEqual(Catalog().ensure("x", "file", 0.0, rng=random.Random(5)).path_id, first)


class OwedDeleteTests(Cores):
    """What is owed is never sent once my catalog names it again (from helper-42's review: a crash before my copy
    was written, a catalog taken from another machine), nor kept for a supplier no longer mine, nor waited for by a
    round of checks; and only what was deleted here is ever sent (helper-41's: a home restored from an older backup,
    another machine with my key)."""

    def held_of(self, path_id: str, version: str = "") -> int:
        return sum(1 for s in self.grid.suppliers for p in s.pieces() if f"/{path_id}/{version}" in p.as_posix())

    def check(self, customer: Customer | None = None) -> None:
        done(defer.ensureDeferred((customer or self.customer).health.check()))

    def crash_mid_delete(self, remote: str, away: list[int]) -> Customer:
        """delete(remote) with the suppliers at `away` down; the process dies once the journal is written and the
        DeleteFile sent, before the catalog without the entry reached my disk; read again from the same home."""
        for position in away:
            self.at(position).node.online = False
        never: defer.Deferred[None] = defer.Deferred()
        self.patch(self.customer, "save_catalog", lambda: never)
        defer.ensureDeferred(self.customer.delete(remote))
        self.customer.close()
        for position in away:
            self.at(position).node.online = True
        return make_customer(self.grid)

    def test_a_file_stored_again_after_a_crash_mid_delete_keeps_its_pieces(self) -> None:
        self.upload(self.customer, self.source(3 * KIB), "a.txt")
        again = self.crash_mid_delete("a.txt", away=[1, 2, 3])
        entry = again.catalog.entry("a.txt")
        assert entry is not None  # the catalog read after the crash still names it
        self.assertEqual(len(again.deletes.pending), 4)
        content = self.source(3 * KIB, "new.bin").read_bytes()
        self.upload(again, self.root / "new.bin", "a.txt")
        self.check(again)
        self.assertEqual(self.held_of(entry.path_id, entry.versions[-1].version), 4)
        self.assertEqual(again.deletes.pending, {})  # named again: dropped, not sent
        self.assertEqual(self.download(again, "a.txt"), content)

    def test_a_crash_before_my_copy_was_written_sends_nothing_and_keeps_the_file_whole(self) -> None:
        # from helper-43's review: the DeleteFile went out before my copy was written, and the file came back empty
        content = self.source(3 * KIB).read_bytes()
        self.upload(self.customer, self.root / "file.bin", "a.txt")
        again = self.crash_mid_delete("a.txt", away=[])
        self.assertEqual(self.grid.sent["DeleteFile"], 0)
        self.check(again)
        self.assertEqual((again.deletes.pending, self.grid.sent["DeleteFile"]), ({}, 0))
        self.assertEqual(self.download(again, "a.txt"), content)

    def test_nothing_owed_is_sent_before_my_catalog_is_taken_from_my_suppliers(self) -> None:
        # from helper-43's review: only deletes.json survived; the catalog read is empty until the suppliers' is taken
        self.upload(self.customer, self.source(3 * KIB), "a.txt")
        entry = self.customer.catalog.entry("a.txt")
        assert entry is not None
        key_id = self.customer.me.require().key_id
        done(self.customer.deletes.add([s.idurl for s in self.customer.suppliers.slots], "DeleteFile",
                                       [f"{key_id}:{entry.path_id}"]))
        self.customer.close()
        (self.root / "dave" / "customer" / CATALOG_FILE).unlink()
        again = make_customer(self.grid)
        self.assertTrue(again.keeper.fetch_first)
        self.check(again)
        self.assertEqual(self.grid.sent["DeleteFile"], 0)
        self.assertTrue(done(defer.ensureDeferred(again.keeper.fetch_newest())))
        self.check(again)  # the catalog taken names it: what was owed is dropped
        self.assertEqual((again.deletes.pending, self.grid.sent["DeleteFile"]), ({}, 0))
        self.assertEqual(self.held_of(entry.path_id), 4)

    def test_a_catalog_taken_while_a_send_waits_is_heeded_before_the_next_packet(self) -> None:
        # from helper-43's review
        self.patch(piece_deletes, "LIST_MAX", 1)
        for name in ("a", "b"):
            self.upload(self.customer, self.source(KIB, name), name)
        b = self.customer.catalog.entry("b")
        assert b is not None
        key_id = self.customer.me.require().key_id
        idurl = self.customer.suppliers.slots[0].idurl
        node = self.grid.supplier(idurl).node
        real = node.handlers["DeleteFile"][0]
        waiting: list[Any] = []
        node.handlers["DeleteFile"] = [waiting.append]  # it answers when the test says
        newer = self.customer.catalog.serialize()  # another machine's, that names b
        self.customer.catalog.remove("b")
        done(self.customer.deletes.add([idurl], "DeleteFile", [f"{key_id}:999999", f"{key_id}:{b.path_id}"]))
        sending = defer.ensureDeferred(self.customer.deletes.send([idurl]))
        self.assertEqual(len(waiting), 1)  # the first packet waits for its answer
        self.customer.keeper.catalog = Catalog.parse(newer)  # taken meanwhile
        real(waiting.pop())
        self.successResultOf(sending)
        self.assertEqual((waiting, self.customer.deletes.pending), ([], {}))  # b named: dropped, never sent
        self.assertEqual(self.held_of(b.path_id), 4)

    def test_a_list_a_supplier_fails_goes_again_an_id_at_a_time(self) -> None:
        # from helper-43's review: one id a supplier cannot take fails the whole list (official suppliers too)
        self.upload(self.customer, self.source(KIB), "a.txt")
        entry = self.customer.catalog.entry("a.txt")
        assert entry is not None
        key_id = self.customer.me.require().key_id
        idurl = self.customer.suppliers.slots[1].idurl
        self.customer.catalog.remove("a.txt")
        deep = "/".join(["1"] * 40)  # a path id no supplier's parser takes
        done(self.customer.deletes.add([idurl], "DeleteFile", [f"{key_id}:{deep}", f"{key_id}:{entry.path_id}"]))
        done(defer.ensureDeferred(self.customer.deletes.send([idurl])))
        self.assertEqual(self.grid.sent["DeleteFile"], 3)  # the list, then each alone
        self.assertEqual((self.customer.deletes.pending, self.customer.deletes._alone), ({}, set()))
        self.assertEqual(self.held_of(entry.path_id), 3)

    def test_a_file_added_to_a_folder_after_a_crash_mid_delete_keeps_its_pieces(self) -> None:
        folder = self.root / "photos"
        folder.mkdir()
        (folder / "1.jpg").write_bytes(b"1" * 3 * KIB)
        self.upload(self.customer, folder, "photos")
        again = self.crash_mid_delete("photos", away=[1, 2, 3])
        self.upload(again, self.source(3 * KIB, "2.jpg"), "photos/2.jpg")
        added = again.catalog.entry("photos/2.jpg")
        assert added is not None
        self.check(again)
        self.assertEqual(self.held_of(added.path_id), 4)

    def test_a_file_another_machine_stored_again_keeps_its_pieces(self) -> None:
        self.upload(self.customer, self.source(3 * KIB), "a.txt")
        preferred = " ".join(s.idurl for s in self.customer.suppliers.slots)
        laptop = make_customer(self.grid, self.root / "laptop", **{"preferred-suppliers": preferred})
        self.assertEqual(done(defer.ensureDeferred(laptop.connect())), 4)
        for position in (1, 2, 3):
            self.at(position).node.online = False
        done(defer.ensureDeferred(self.customer.delete("a.txt")))
        for position in (1, 2, 3):
            self.at(position).node.online = True
        self.upload(laptop, self.source(3 * KIB, "v2"), "a.txt")
        self.upload(laptop, self.source(KIB, "b"), "b")
        self.assertTrue(done(defer.ensureDeferred(self.customer.keeper.fetch_newest())))
        entry = self.customer.catalog.entry("a.txt")
        assert entry is not None
        self.check()
        self.assertEqual(self.held_of(entry.path_id, entry.versions[-1].version), 4)

    def test_a_home_restored_from_an_older_backup_keeps_the_files_stored_since(self) -> None:
        self.upload(self.customer, self.source(3 * KIB), "old.bin")
        backup = self.root / "home-backup"
        shutil.copytree(self.root / "dave" / "customer", backup)
        for name in ("b.bin", "c.bin"):
            self.upload(self.customer, self.source(2 * KIB, name), name)
        newer = self.customer.catalog.entry("c.bin")
        assert newer is not None
        self.customer.close()
        restored = make_customer(self.grid, backup)
        self.upload(restored, self.source(2 * KIB, "e.bin"), "e.bin")
        for _round in range(2):
            self.check(restored)
        self.assertEqual(self.held_of(newer.path_id), 4)

    def test_a_supplier_replaced_while_an_upload_stopped_owes_nothing(self) -> None:
        for position in range(4):
            self.at(position).node.held = []
        _transfer, work = self.customer.start_upload(self.source(40 * 64 * KIB), "big.bin")
        old = self.customer.suppliers.slots[3].idurl
        done(self.customer.replace(3, "test: silent"))
        self.assertEqual(len(self.customer.transfer_log.stop(TransferKind.UPLOAD, "big.bin")), 1)
        self.grid.supplier(old).node.online = False
        for position in range(4):
            self.at(position).node.release()
        self.grid.clock.advance(61)
        self.assertRaises(TransferStopped, done, work)
        self.assertEqual(self.customer.counters["versions_abandoned"], 1)
        self.check()
        self.assertEqual(self.customer.deletes.pending, {})

    def test_a_round_of_checks_does_not_wait_for_a_supplier_that_never_answers_a_delete(self) -> None:
        idurl = self.customer.suppliers.slots[0].idurl
        self.grid.supplier(idurl).node.handlers["DeleteFile"] = []  # it drops every DeleteFile
        key_id = self.customer.me.require().key_id
        done(self.customer.deletes.add([idurl], "DeleteFile", [f"{key_id}:123456"]))
        round_ = defer.ensureDeferred(self.customer.health.check())
        self.assertTrue(round_.called)
        self.assertEqual(self.grid.sent["DeleteFile"], 1)
        # one send at a time to a supplier: the next round's does not ask it again while the first waits
        self.check()
        self.assertEqual(self.grid.sent["DeleteFile"], 1)
        self.grid.clock.advance(31)
        self.assertEqual(list(self.customer.deletes.pending), [idurl])
        self.check()
        self.assertEqual(self.grid.sent["DeleteFile"], 2)


class JournalRulesTests(Cores):
    """The journal's smaller rules, each checked on the grid (helper-43 found them unchecked)."""

    def key(self, path: str) -> str:
        return f"{self.customer.me.require().key_id}:{path}"

    def test_new_files_and_folders_take_no_path_id_still_owed(self) -> None:
        first = str(random.Random(5).randrange(100_000, 1_000_000))
        self.patch(random, "Random", _Seeded)
        done(self.customer.deletes.add(["http://127.0.0.1:8084/away.xml"], "DeleteFile", [self.key(first)]))
        entry, _made = done(defer.ensureDeferred(self.customer.create("made", "dir")))
        self.assertNotEqual(entry.path_id, first)
        self.upload(self.customer, self.source(KIB), "stored.bin")
        stored = self.customer.catalog.entry("stored.bin")
        assert stored is not None
        self.assertNotEqual(stored.path_id, first)
        self.assertEqual(Catalog().ensure("x", "file", 0.0).path_id, first)  # what the pick would have been

    def test_a_delete_waits_for_a_silent_supplier_at_most_delete_wait(self) -> None:
        self.upload(self.customer, self.source(KIB), "a")
        self.grid.supplier(self.customer.suppliers.slots[0].idurl).node.handlers["DeleteFile"] = []
        deleting = defer.ensureDeferred(self.customer.delete("a"))
        self.grid.clock.advance(DELETE_WAIT - 0.5)
        self.assertNoResult(deleting)
        self.grid.clock.advance(0.5)
        self.assertEqual(self.successResultOf(deleting), 1)
        self.assertEqual(list(self.customer.deletes.pending), [self.customer.suppliers.slots[0].idurl])

    def test_a_supplier_that_does_not_answer_a_packet_is_asked_no_further_in_that_send(self) -> None:
        self.patch(piece_deletes, "LIST_MAX", 1)
        idurl = self.customer.suppliers.slots[0].idurl
        self.grid.supplier(idurl).node.handlers["DeleteFile"] = []
        done(self.customer.deletes.add([idurl], "DeleteFile", [self.key("111111"), self.key("222222")]))
        sending = defer.ensureDeferred(self.customer.deletes.send([idurl]))
        self.grid.clock.advance(31)
        self.successResultOf(sending)
        self.assertEqual(self.grid.sent["DeleteFile"], 1)
        self.assertEqual(len(self.customer.deletes.pending[idurl]), 2)

    def test_what_suppliers_no_longer_mine_owe_is_forgotten_at_the_next_round(self) -> None:
        gone = "http://127.0.0.1:8084/gone.xml"
        done(self.customer.deletes.add([gone], "DeleteFile", [self.key("111111")]))
        done(defer.ensureDeferred(self.customer.health.check()))
        self.assertEqual(self.customer.deletes.pending, {})

    def test_a_closed_customer_writes_and_sends_nothing_more(self) -> None:
        idurl = self.customer.suppliers.slots[0].idurl
        self.customer.close()
        done(self.customer.deletes.add([idurl], "DeleteFile", [self.key("111111")]))
        done(defer.ensureDeferred(self.customer.deletes.send([idurl])))
        self.assertEqual(self.grid.sent["DeleteFile"], 0)
        self.assertFalse((self.root / "dave" / "customer" / DELETES_FILE).exists())

    def test_a_replaced_supplier_online_is_asked_once_for_an_abandoned_version(self) -> None:
        for position in range(4):
            self.at(position).node.held = []
        transfer, work = self.customer.start_upload(self.source(40 * 64 * KIB), "big.bin")
        old = self.grid.supplier(self.customer.suppliers.slots[3].idurl)
        done(self.customer.replace(3, "test: silent"))
        self.assertEqual(len(self.customer.transfer_log.stop(TransferKind.UPLOAD, "big.bin")), 1)
        for position in range(4):
            self.at(position).node.release()
        old.node.release()
        self.grid.clock.advance(61)
        self.assertRaises(TransferStopped, done, work)
        folder = transfer.version.split(":", 1)[1]
        self.assertEqual([p for p in old.pieces() if folder in p.as_posix()], [])
        self.assertNotIn(old.idurl, self.customer.deletes.pending)

    def test_what_my_catalog_names_is_moot_a_folder_by_what_is_under_it_a_version_by_its_name(self) -> None:
        catalog = self.customer.catalog
        folder = catalog.ensure("docs/a.txt", "file", 0.0)
        parent = folder.path_id.split("/")[0]
        catalog.entries.pop("docs")  # a catalog whose folder entry is missing still names what is under it
        self.upload(self.customer, self.source(KIB), "v.bin")
        v = catalog.entry("v.bin")
        assert v is not None
        version = v.versions[0].version
        owed = [("DeleteFile", self.key(parent)), ("DeleteFile", self.key(folder.path_id)),
                ("DeleteFile", self.key(parent + "9")), ("DeleteBackup", self.key(f"{v.path_id}/{version}")),
                ("DeleteBackup", self.key(f"{v.path_id}/F20200101010101AM"))]
        self.assertEqual(self.customer._named_now(owed), set(owed[:2]) | {owed[3]})


class _Seeded(random.Random):
    """What `random.Random()` makes while patched: the same picks every time."""

    def __init__(self, seed: Any = None) -> None:
        super().__init__(5)


def silent_for_catalog_copies(supplier: GridSupplier) -> None:
    """A supplier that drops every copy of my catalog (it stores my pieces as usual): a save waits 30 s for it."""
    real = supplier.node.handlers["Data"][0]

    def handler(inbound: Any) -> Any:
        return None if ".index" in inbound.packet.packet_id else real(inbound)

    supplier.node.handlers["Data"] = [handler]


class WhileSavingTests(Cores):
    """From helper-44's review: what a delete owes goes only once my copy without it is written, an upload under a
    deleted path leaves nothing behind, and a delete whose save failed changes nothing."""

    def held_of(self, path_id: str, version: str = "") -> int:
        return sum(1 for s in self.grid.suppliers for p in s.pieces() if f"/{path_id}/{version}" in p.as_posix())

    def test_nothing_a_delete_owes_goes_before_my_copy_without_it_is_written(self) -> None:
        content = self.source(3 * KIB).read_bytes()
        self.upload(self.customer, self.root / "file.bin", "a.txt")
        silent_for_catalog_copies(self.at(0))
        defer.ensureDeferred(self.customer.create("other", "dir"))  # a save running: 30 s
        deleting = defer.ensureDeferred(self.customer.delete("a.txt"))  # written down, its save queued
        self.assertNoResult(deleting)
        defer.ensureDeferred(self.customer.health.check())  # a round's send meanwhile
        self.assertEqual(self.grid.sent["DeleteFile"], 0)
        self.customer.close()  # the process dies here
        again = make_customer(self.grid)
        done(defer.ensureDeferred(again.connect()))
        self.assertEqual(self.download(again, "a.txt"), content)

    def test_a_delete_after_a_running_save_still_sends_once_its_own_save_is_done(self) -> None:
        self.upload(self.customer, self.source(3 * KIB), "a.txt")
        silent_for_catalog_copies(self.at(0))
        defer.ensureDeferred(self.customer.create("other", "dir"))
        deleting = defer.ensureDeferred(self.customer.delete("a.txt"))
        self.grid.clock.advance(30)  # the running save ends
        self.grid.clock.advance(30)  # then the delete's
        self.assertEqual(self.successResultOf(deleting), 1)
        self.assertEqual(self.grid.sent["DeleteFile"], 4)
        self.assertEqual(self.customer.deletes.pending, {})

    def test_an_abandoned_version_is_not_taken_for_one_my_catalog_names(self) -> None:
        self.upload(self.customer, self.source(KIB), "v.bin")
        entry = self.customer.catalog.entry("v.bin")
        assert entry is not None
        for position in range(4):
            self.at(position).node.held = []
        _transfer, work = self.customer.start_upload(self.source(40 * 64 * KIB, "big"), "v.bin")
        version = entry.versions[1].version
        self.customer._named_now([("DeleteFile", "k:1")])  # what my catalog names, the new version in it
        self.assertEqual(len(self.customer.transfer_log.stop(TransferKind.UPLOAD, "v.bin")), 1)
        for position in range(4):
            self.at(position).node.release()
        self.grid.clock.advance(61)
        self.assertRaises(TransferStopped, done, work)
        self.assertEqual(self.held_of(entry.path_id, version), 0)

    def test_an_upload_under_a_path_deleted_meanwhile_stops_and_leaves_nothing(self) -> None:
        done(defer.ensureDeferred(self.customer.create("docs", "dir")))
        docs = self.customer.catalog.entry("docs")
        assert docs is not None
        captured, gate = self.hold_stores()
        transfer, work = self.customer.start_upload(self.source(40 * 64 * KIB, "big"), "docs/b.bin")
        self.assertEqual(self.successResultOf(defer.ensureDeferred(self.customer.delete("docs"))), 2)
        gate.clear()
        for store in captured:  # the stores in flight land after the DeleteFile
            store()
        self.grid.clock.advance(120)
        self.assertRaises(TransferStopped, done, work)
        self.assertEqual(transfer.state, TransferState.STOPPED)
        self.assertEqual(self.held_of(docs.path_id), 0)

    def hold_stores(self) -> tuple[list[Any], list[bool]]:
        return hold_stores(self)

    def test_a_file_of_a_folder_upload_deleted_while_it_was_stored_leaves_nothing(self) -> None:
        folder = self.root / "photos"
        folder.mkdir()
        (folder / "a.jpg").write_bytes(b"a" * 3 * KIB)
        (folder / "b.jpg").write_bytes(b"b" * 3 * KIB)
        captured, gate = self.hold_stores()
        transfer, work = self.customer.start_upload(folder, "photos")
        a = self.customer.catalog.entry("photos/a.jpg")
        assert a is not None
        # a.jpg's pieces are on their way: its DeleteFile finds none and is answered
        self.assertEqual(self.successResultOf(defer.ensureDeferred(self.customer.delete("photos/a.jpg"))), 1)
        self.assertEqual(self.customer.deletes.pending, {})
        gate.clear()
        for store in captured:
            store()
        self.grid.clock.advance(120)
        done(work)
        self.assertEqual(transfer.state, TransferState.DONE)  # the folder's upload goes on with its other files
        self.assertEqual(self.held_of(a.path_id), 0)
        self.assertEqual(sorted(self.customer.catalog.entries), ["photos", "photos/b.jpg"])

    def test_a_caller_that_stops_waiting_leaves_the_delete_to_end(self) -> None:
        self.upload(self.customer, self.source(3 * KIB), "a.txt")
        entry = self.customer.catalog.entry("a.txt")
        assert entry is not None
        silent_for_catalog_copies(self.at(0))
        deleting = defer.ensureDeferred(self.customer.delete("a.txt"))
        self.assertNoResult(deleting)  # its save waits for the silent supplier
        deleting.cancel()  # the REST client went away
        self.failureResultOf(deleting, defer.CancelledError)
        self.grid.clock.advance(31)
        self.assertNotIn("a.txt", self.customer.catalog.entries)
        self.assertEqual(self.grid.sent["DeleteFile"], 4)
        self.assertEqual(self.held_of(entry.path_id), 0)
        self.assertEqual((self.customer.deletes.pending, self.customer.deletes.held), ({}, set()))

    def test_a_delete_whose_save_failed_changes_nothing(self) -> None:
        content = self.source(3 * KIB).read_bytes()
        self.upload(self.customer, self.root / "file.bin", "a.txt")
        healed = self.failing_disk()
        self.assertRaises(OSError, done, defer.ensureDeferred(self.customer.delete("a.txt")))
        healed()
        self.assertIn("a.txt", self.customer.catalog.entries)
        self.assertEqual((self.customer.deletes.pending, self.grid.sent["DeleteFile"]), ({}, 0))
        self.check_round()
        self.assertEqual(self.grid.sent["DeleteFile"], 0)
        self.customer.close()
        again = make_customer(self.grid)
        done(defer.ensureDeferred(again.connect()))  # the suppliers' copy, saved again, names it
        self.assertEqual(self.download(again, "a.txt"), content)
        self.flushLoggedErrors(OSError)

    def failing_disk(self) -> Any:
        """My disk refusing to write my catalog's copy until the function returned is called."""
        refusing = self.patch(self.customer.keeper.disk, "write",
                              lambda text: defer.fail(OSError(28, "No space left on device")))
        return refusing.restore

    def test_nothing_is_made_under_a_path_while_its_delete_saves(self) -> None:
        # from helper-45's review: a delete whose save failed put back its entries beside ones made meanwhile
        folder = self.root / "docs"
        folder.mkdir()
        (folder / "x").write_bytes(b"x" * 3 * KIB)
        self.upload(self.customer, folder, "docs")
        before = {path: entry.path_id for path, entry in self.customer.catalog.entries.items()}
        silent_for_catalog_copies(self.at(0))  # the delete's save waits 30 s
        healed = self.failing_disk()
        deleting = defer.ensureDeferred(self.customer.delete("docs"))
        self.assertRaises(PathBeingDeleted, done, defer.ensureDeferred(self.customer.create("docs/y", "dir")))
        _transfer, work = self.customer.start_upload(self.source(KIB, "y.bin"), "docs/y")
        self.assertRaises(PathBeingDeleted, done, work)
        self.assertRaises(PathBeingDeleted, done, defer.ensureDeferred(self.customer.delete("docs/x")))
        self.grid.clock.advance(31)
        self.assertRaises(OSError, done, deleting)
        healed()
        self.grid.clock.advance(120)
        self.flushLoggedErrors(OSError)
        self.assertEqual({path: entry.path_id for path, entry in self.customer.catalog.entries.items()}, before)
        self.assertEqual(self.customer.deletes.pending, {})
        deleting = defer.ensureDeferred(self.customer.delete("docs"))  # and then it can go
        for _save in range(3):  # saves wait 30 s for the supplier that drops my catalog's copies
            self.grid.clock.advance(31)
        self.assertEqual(self.successResultOf(deleting), 2)
        self.assertEqual(self.held_of(before["docs"]), 0)

    def check_round(self) -> None:
        done(defer.ensureDeferred(self.customer.health.check()))

    def test_a_list_of_ids_a_supplier_holds_none_of_is_settled_in_one_packet(self) -> None:
        idurl = self.customer.suppliers.slots[0].idurl
        key_id = self.customer.me.require().key_id
        done(self.customer.deletes.add([idurl], "DeleteFile", [f"{key_id}:{100000 + n}" for n in range(500)]))
        done(defer.ensureDeferred(self.customer.deletes.send([idurl])))
        self.assertEqual((self.grid.sent["DeleteFile"], self.customer.deletes.pending), (1, {}))


def hold_stores(test: Cores) -> tuple[list[Any], list[bool]]:
    """The suppliers' Data handling of my file pieces held (my catalog's copies go as usual) while the gate returned
    is set; the stores held, to be let go by the test."""
    captured: list[Any] = []
    gate = [True]
    for position in range(4):
        node = test.at(position).node
        real = node.handlers["Data"][0]

        def slow(inbound: Any, real: Any = real) -> Any:
            if ".index" in inbound.packet.packet_id or not gate:
                return real(inbound)
            captured.append(lambda: real(inbound))
            return None

        node.handlers["Data"] = [slow]
    return captured, gate


def folder_upload_half_stored(test: Cores) -> tuple[Path, list[Any], list[bool], Transfer, defer.Deferred[Any]]:
    """photos/ uploading: a.bin stored whole, b.bin's stores held (hold_stores)."""
    folder = test.root / "photos"
    folder.mkdir()
    (folder / "a.bin").write_bytes(os.urandom(KIB))
    (folder / "b.bin").write_bytes(os.urandom(8 * 64 * KIB))
    captured, gate = hold_stores(test)
    transfer, work = test.customer.start_upload(folder, "photos")
    for store in captured[:4]:
        store()
    return folder, captured, gate, transfer, work


class StopTests(Cores):
    """A customer that stops (its service off, or started again in the process: a setting it does not apply live)
    stops its transfers, lets the saves they asked for end, and saves nothing after: the one started again on the
    same home is the only one that saves (helper-47: the first one's upload went on and saved beside it)."""

    def saved(self) -> Catalog:
        return Catalog.parse((self.root / "dave" / "customer" / CATALOG_FILE).read_bytes())

    def test_a_customer_stopping_mid_folder_upload_keeps_the_files_stored_whole_and_saves_nothing_after(self) -> None:
        folder, captured, gate, transfer, work = folder_upload_half_stored(self)
        self.assertIsNotNone(self.customer.catalog.entry("photos/b.bin"))
        stopping = defer.ensureDeferred(self.customer.stop())
        self.assertRaises(TransferStopped, done, work)
        self.assertEqual(transfer.error, "stopped: the customer service stopped")
        done(stopping)
        self.assertEqual(sorted(self.saved().entries), ["photos", "photos/a.bin"])
        again = make_customer(self.grid)
        gate.clear()
        for store in captured[4:]:  # the first one's stores land late: it saves nothing for them
            store()
        self.grid.clock.advance(120)
        self.assertRaises(CustomerClosed, done, defer.ensureDeferred(self.customer.save_catalog()))
        done(defer.ensureDeferred(again.create("docs", "dir")))
        self.assertEqual(sorted(self.saved().entries), ["docs", "photos", "photos/a.bin"])
        back = self.root / "back"
        done(again.start_download("photos/a.bin", back)[1])
        self.assertEqual([p.read_bytes() for p in back.rglob("a.bin")], [(folder / "a.bin").read_bytes()])

    def test_a_stop_waits_for_a_save_under_way_and_no_longer_than_it_may_take(self) -> None:
        done(defer.ensureDeferred(self.customer.create("docs", "dir")))
        silent_for_catalog_copies(self.at(0))
        saving = defer.ensureDeferred(self.customer.create("one", "dir"))  # waits for the silent supplier's copy
        stopping = defer.ensureDeferred(self.customer.stop())
        self.grid.clock.advance(29)
        self.assertNoResult(stopping)
        self.grid.clock.advance(2)  # the copy given up on: the save ends, then the stop
        done(saving)
        done(stopping)
        self.assertIn("one", self.saved().entries)


class StopReviewTests(Cores):
    """helper-49's review of d50c79d (Customer.stop): what a stopping customer left undone or did after the close."""

    def held_of(self, path_id: str, version: str = "") -> int:
        return sum(1 for s in self.grid.suppliers for p in s.pieces() if f"/{path_id}/{version}" in p.as_posix())

    def test_an_upload_stopped_by_the_stop_still_gets_its_pieces_deleted_once_its_stores_land(self) -> None:
        # the stop stops the upload: its version is abandoned, and its DeleteBackup is written down only once the
        # stores under way settle. They settle after the close: the journal is closed, nothing is written nor sent,
        # and the customer started again on the same home knows nothing of them: the pieces stay for good
        _folder, captured, gate, transfer, work = folder_upload_half_stored(self)
        entry = self.customer.catalog.entry("photos/b.bin")
        assert entry is not None
        version = transfer.version.rpartition("/")[2]
        done(defer.ensureDeferred(self.customer.stop()))
        self.assertRaises(TransferStopped, done, work)
        again = make_customer(self.grid)
        gate.clear()
        for store in captured[4:]:  # the first one's stores land late
            store()
        self.grid.clock.advance(120)
        self.assertGreater(self.held_of(entry.path_id, version), 0)  # they landed
        done(defer.ensureDeferred(again.health.check()))  # a round sends what is owed
        self.grid.clock.advance(120)
        self.assertEqual(self.held_of(entry.path_id, version), 0,
                         "the pieces of the version the stop abandoned are owed a DeleteBackup by nobody")

    def test_a_round_of_checks_under_way_at_the_stop_is_waited_for_and_nothing_is_written_after_the_close(self) -> None:
        # helper-49: a round under way (a supplier silent, its listing waits) ended after the close, beside the
        # customer started again on the same home, wrote health.json and replaced the silent supplier (suppliers.json)
        home = self.root / "dave" / "customer"
        self.values["replace-offline-after-seconds"] = 10
        self.at(0).node.held = []  # its answers never go: silent
        self.customer.health._round_now()
        checking = self.customer.health.round
        assert checking is not None
        stopping = defer.ensureDeferred(self.customer.stop())
        self.assertNoResult(stopping)
        for _ in range(41):
            if stopping.called:
                break
            self.grid.clock.advance(1)
        done(stopping)
        self.assertTrue(checking.called)
        written = {name: (home / name).read_bytes() if (home / name).exists() else None
                   for name in ("suppliers.json", "health.json", CATALOG_FILE)}
        again = make_customer(self.grid, values=self.values)
        self.grid.clock.advance(120)
        for name, before in written.items():
            self.assertEqual((home / name).read_bytes() if (home / name).exists() else None, before,
                             f"{name} written after the close")
        self.assertIsNotNone(again)

    def test_a_running_upload_the_transfer_log_forgot_is_stopped_too(self) -> None:
        # the log keeps the latest MAX_TRANSFERS_KEPT transfers, running or not: a long upload pushed out by later
        # ones (a script's downloads) is in no list stop_all or close() walks, and goes on storing after the close
        self.upload(self.customer, self.source(KIB, "small.bin"), "small.bin")
        self.customer.transfer_log.keep = 2  # MAX_TRANSFERS_KEPT (100), made small
        captured, gate = hold_stores(self)
        transfer, work = self.customer.start_upload(self.source(8 * 64 * KIB, "big.bin"), "big.bin")
        self.assertEqual(transfer.state, TransferState.RUNNING)
        for _ in range(2):
            self.download(self.customer, "small.bin")
        stopping = defer.ensureDeferred(self.customer.stop())
        done(stopping)
        self.assertTrue(transfer.stop.pressed, "a running upload was not stopped by the customer's stop")
        gate.clear()
        for store in captured:
            store()
        self.grid.clock.advance(120)
        self.assertNotEqual(transfer.state, TransferState.RUNNING)
        self.assertRaises(TransferStopped, done, work)

    def test_a_stop_with_a_supplier_silent_ends_within_what_bitdust_stop_waits_for(self) -> None:
        # each wait is bounded by STOP_WAIT, one after the other: an upload at its last save (30 s with a silent
        # supplier) and the save another stopped one asked for (30 s more, after it) hold the node's stop 60 s, which
        # is `bitdust stop`'s STOP_TIMEOUT: it says the node did not stop, and `bitdust restart` starts nothing
        from bitdust_node.cli.commands.process import STOP_TIMEOUT
        from bitdust_node.storage.customer import STOP_WAIT

        self.upload(self.customer, self.source(KIB, "first.bin"), "first.bin")
        silent_for_catalog_copies(self.at(0))
        _a, a_work = self.customer.start_upload(self.source(KIB, "a.bin"), "a.bin")  # at its last save: 30 s
        self.assertNoResult(a_work)
        hold_stores(self)
        _b, b_work = self.customer.start_upload(self.source(8 * 64 * KIB, "b.bin"), "b.bin")  # its stores held
        b_work.addErrback(lambda _f: None)
        started = self.grid.clock.seconds()
        stopping = defer.ensureDeferred(self.customer.stop())
        for _ in range(int(STOP_TIMEOUT) + 30):
            if stopping.called:
                break
            self.grid.clock.advance(1)
        done(stopping)
        took = self.grid.clock.seconds() - started
        self.assertLessEqual(took, STOP_WAIT, f"the customer's stop alone took {took:.0f} s (STOP_WAIT "
                                              f"{STOP_WAIT:.0f} s; bitdust stop waits {STOP_TIMEOUT:.0f} s in all)")


class StopWhileFetchingTests(Cores):
    """helper-49: a fetch of my suppliers' catalog under way at the close, and a save queued behind it, write
    nothing after the close."""

    def test_a_fetch_and_a_save_behind_it_at_the_close_write_nothing(self) -> None:
        done(defer.ensureDeferred(self.customer.create("docs", "dir")))
        path = self.root / "dave" / "customer" / CATALOG_FILE
        before = path.read_bytes()
        preferred = " ".join(s.idurl for s in self.customer.suppliers.slots)
        laptop = make_customer(self.grid, self.root / "laptop", **{"preferred-suppliers": preferred})
        self.assertEqual(done(defer.ensureDeferred(laptop.connect())), 4)
        self.upload(laptop, self.source(KIB, "b"), "b")  # a newer catalog on my suppliers
        self.at(0).node.held = []  # its answers are held: the fetch waits for it
        fetching = defer.ensureDeferred(self.customer.keeper.fetch_newest())
        saving = defer.ensureDeferred(self.customer.create("one", "dir"))  # behind the fetch
        self.customer.close()
        self.grid.clock.advance(120)
        self.assertFalse(done(fetching))
        self.assertRaises(CustomerClosed, done, saving)
        self.assertEqual(path.read_bytes(), before)


class AtMostTests(SynchronousTestCase):
    def test_a_wait_ends_with_the_work_or_the_time_and_never_cancels_the_work(self) -> None:
        clock = Clock()
        work: defer.Deferred[None] = defer.Deferred()
        waited = defer.ensureDeferred(at_most(work, 10.0, clock))
        clock.advance(9.9)
        self.assertNoResult(waited)
        clock.advance(0.1)
        self.successResultOf(waited)
        self.assertFalse(work.called)
        work.callback(None)
        quick: defer.Deferred[None] = defer.Deferred()
        waited = defer.ensureDeferred(at_most(quick, 10.0, clock))
        quick.callback(None)
        self.successResultOf(waited)
        self.assertEqual(clock.getDelayedCalls(), [])


class JournalFileTests(SynchronousTestCase):
    def journal(self, folder: Path, worker: Any = defer.maybeDeferred) -> DeleteJournal:
        """A journal on `folder`, dave's node of an in-memory grid to send with (these tests send nothing)."""
        grid = MemoryGrid(Path(self.mktemp()), suppliers=0)
        node = grid.add_node(me("dave"))
        return DeleteJournal(node, grid.identities, folder, 30.0, lambda owed: set(), worker=worker)

    def test_what_cannot_be_read_of_a_journal_is_left_out(self) -> None:
        folder = Path(self.mktemp())
        folder.mkdir()
        (folder / DELETES_FILE).write_text(json.dumps({"pending": {
            "http://a/s.xml": [["DeleteFile", "k:1"], ["Rm", "k:2"], ["DeleteBackup", 3], "x",
                               ["DeleteBackup", "k:4/F"]],
            "http://b/s.xml": "nothing", "http://c/s.xml": []}}))
        self.assertEqual(self.journal(folder).pending,
                         {"http://a/s.xml": [("DeleteFile", "k:1"), ("DeleteBackup", "k:4/F")]})
        (folder / DELETES_FILE).write_text("{not json")
        self.assertEqual(self.journal(folder).pending, {})
        self.flushLoggedErrors()

    def test_a_journal_read_is_held_to_the_bound_and_one_too_large_is_not_read(self) -> None:
        folder = Path(self.mktemp())
        folder.mkdir()
        (folder / DELETES_FILE).write_text(json.dumps({"pending": {"a": [["DeleteFile", f"k:{n}"] for n in range(9)]}}))
        self.patch(piece_deletes, "MAX_PENDING", 5)
        self.assertEqual(len(self.journal(folder).pending["a"]), 5)
        self.patch(piece_deletes, "MAX_FILE_BYTES", 100)
        self.assertEqual(self.journal(folder).pending, {})
        self.flushLoggedErrors()

    def test_a_write_its_caller_stopped_waiting_for_still_holds_back_the_next(self) -> None:
        # from helper-45's review: a cancelled wait released the lock while the thread still wrote the temporary file
        folder = Path(self.mktemp())
        folder.mkdir()
        jobs: list[defer.Deferred[None]] = []

        def worker(f: Any, *args: Any) -> defer.Deferred[None]:
            jobs.append(defer.Deferred())
            return jobs[-1]

        journal = self.journal(folder, worker)
        journal.add(["s1"], "DeleteFile", ["k:1"]).cancel()  # a REST client gone while delete() awaited it
        journal.add(["s1"], "DeleteFile", ["k:2"])
        self.assertEqual(len(jobs), 1)
        jobs[0].callback(None)
        self.assertEqual(len(jobs), 2)

    def test_the_oldest_the_supplier_owed_most_are_dropped_past_the_bound(self) -> None:
        self.patch(piece_deletes, "MAX_PENDING", 5)
        folder = Path(self.mktemp())
        journal = self.journal(folder)
        journal.add(["a"], "DeleteFile", ["k:1", "k:2", "k:3"])
        journal.add(["a", "b"], "DeleteFile", ["k:4"])
        journal.add(["b"], "DeleteFile", ["k:5"])
        self.assertEqual(journal.pending, {"a": [("DeleteFile", "k:2"), ("DeleteFile", "k:3"), ("DeleteFile", "k:4")],
                                           "b": [("DeleteFile", "k:4"), ("DeleteFile", "k:5")]})
        self.assertEqual(self.journal(folder).pending, journal.pending)
