"""Deletes: one packet to every supplier at once (a folder by its own path id), written down first, and asked
again of a supplier that was down or out of reach until it answers, after a restart too; never given to a newer
file's pieces."""

from __future__ import annotations

import json
import random
from pathlib import Path

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.storage import piece_deletes
from bitdust_node.storage.catalog import Catalog, new_version
from bitdust_node.storage.catalog_disk import CATALOG_FILE
from bitdust_node.storage.piece_deletes import DELETES_FILE, LIST_MAX, DeleteJournal, at_most
from tests.storage.grid import make_customer
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
        self.assertEqual(done(defer.ensureDeferred(self.customer.delete("photos"))), 6)
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
        self.assertEqual(self.customer.deletes.versions_of(entry.path_id), {owed})
        # a DeleteFile owed of a path id: no new entry takes it
        picks = random.Random(5)
        first = str(picks.randrange(100_000, 1_000_000))
        made = Catalog().ensure("x", "file", 0.0, rng=random.Random(5), avoid={first})
        self.assertNotEqual(made.path_id, first)
        self.assertEqual(Catalog().ensure("x", "file", 0.0, rng=random.Random(5)).path_id, first)


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
    def journal(self, folder: Path) -> DeleteJournal:
        return DeleteJournal(None, None, folder, 30.0, worker=defer.maybeDeferred)  # type: ignore[arg-type]

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
