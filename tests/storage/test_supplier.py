"""What our supplier refuses, with the official answer, writing nothing and disclosing nothing; what survives a
restart; and a full disk (a real 1 MiB tmpfs) that leaves every stored piece as it was."""

from __future__ import annotations

import base64
import gc
import itertools
import json
import os
import shutil
import subprocess
from pathlib import Path

import attrs
from twisted.internet import defer
from twisted.trial.unittest import SkipTest, TestCase

from bitdust_node.storage import supplier as supplier_module
from bitdust_node.storage.supplier import (
    DENY_CUSTOMERS,
    DENY_IDENTITY,
    DENY_SPACE,
    MAX_CUSTOMER_IDENTITY_BYTES,
    NO_SPACE,
    NOT_A_CUSTOMER,
    NOT_FOUND,
)
from bitdust_node.transport.interfaces import Inbound
from bitdust_node.wire import identity_xml, tcp_frames
from bitdust_node.wire import packet as wire
from tests.storage.support import DAVE, Side, WalkCounting, me, signer

ALICE = "http://127.0.0.1:8084/alice.xml"
PIECE = "master$dave@127.0.0.1_8084:3/F20261201075109PM/0-0-Data"


def answer_of(packet: wire.Packet | None) -> tuple[str, bytes] | None:
    return (packet.command, packet.payload) if packet is not None else None


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


class DiskQueueTests(TestCase):
    """Pieces are written one at a time off the reactor, in order; what waits to be written counts against the
    quota meanwhile."""

    def setUp(self) -> None:
        self.home = Path(self.mktemp())
        self.side = Side(self, self.home, donated=10 << 20)
        self.side.hire("dave", 100_000)
        self.waiting: list[tuple[defer.Deferred[object], object, tuple[object, ...]]] = []

        def held(work: object, *args: object) -> defer.Deferred[object]:
            d: defer.Deferred[object] = defer.Deferred()
            self.waiting.append((d, work, args))
            return d

        self.side.supplier._disk_runner = held  # type: ignore[assignment]

    def finish_one(self) -> None:
        d, work, args = self.waiting.pop(0)
        d.callback(work(*args))  # type: ignore[operator]

    def test_a_piece_waiting_for_the_disk_counts_against_the_quota(self) -> None:
        self.assertEqual(self.side.send("dave", "Data", PIECE, b"x" * 60_000), None)  # not written yet
        other = PIECE.replace("0-0-Data", "0-0-Parity")
        self.assertEqual(answer_of(self.side.send("dave", "Data", other, b"y" * 60_000)), ("Fail", NO_SPACE.encode()))
        self.finish_one()
        self.assertEqual([answer_of(p) for p in self.side.written()], [("Ack", b"60000")])
        self.assertEqual(self.waiting, [])
        self.assertEqual(len(files_under(self.home / "customers")), 1)

    def test_a_sender_is_not_read_while_too_much_waits_for_the_disk(self) -> None:
        self.patch(supplier_module, "MAX_WAITING_BYTES", 50_000)
        self.side.send("dave", "Data", PIECE, b"x" * 40_000)
        self.assertEqual(self.side.wire.producerState, "producing")
        self.side.send("dave", "Data", PIECE.replace("0-0-Data", "0-0-Parity"), b"y" * 40_000)
        self.assertEqual(self.side.wire.producerState, "paused")  # TCP pushes back on dave meanwhile
        self.finish_one()
        self.assertEqual(self.side.wire.producerState, "paused")
        self.finish_one()  # read again once written, before its Ack is acknowledged on this very connection
        self.assertEqual(self.side.wire.producerState, "producing")
        self.assertEqual([answer_of(p) for p in self.side.written()], [("Ack", b"40000"), ("Ack", b"40000")])

    def test_a_delete_waits_for_the_write_asked_before_it(self) -> None:
        self.side.send("dave", "Data", PIECE, b"x" * 1000)
        self.side.send("dave", "DeleteFile", PIECE)
        self.assertEqual(len(self.waiting), 1)  # the delete waits behind the write, not beside it
        self.finish_one()
        self.assertEqual(len(self.waiting), 1)
        self.finish_one()
        self.assertEqual([answer_of(p) for p in self.side.written()], [("Ack", b"1000"), ("Ack", b"")])
        self.assertEqual(files_under(self.home / "customers"), {})
        self.assertEqual(self.side.store.used["dave@127.0.0.1_8084"], 0)

    def test_a_delete_first_after_a_crash_leaves_the_use_counted_right(self) -> None:
        self.side.send("dave", "Data", PIECE, b"x" * 1000)
        self.side.send("dave", "Data", PIECE.replace("0-0-Data", "0-0-Parity"), b"y" * 500)
        self.finish_one()
        self.finish_one()
        del self.side.store.used["dave@127.0.0.1_8084"]  # as after a crash: not known until counted
        self.side.send("dave", "DeleteFile", PIECE)
        self.finish_one()
        left = sum(len(b) for b in files_under(self.home / "customers").values())  # the Parity piece's file
        self.assertGreater(left, 500)
        self.assertEqual(self.side.store.used["dave@127.0.0.1_8084"], left)

    def test_the_whole_store_is_counted_by_the_disk_worker_not_on_the_reactor(self) -> None:
        self.side.send("dave", "Data", PIECE, b"x" * 1000)
        self.finish_one()
        del self.side.store.used["dave@127.0.0.1_8084"]  # as after a crash
        counting = defer.ensureDeferred(self.side.supplier.usage_of_all())
        self.assertNoResult(counting)
        self.assertEqual(len(self.waiting), 1)  # the count waits its turn in the disk queue
        self.assertNotIn("dave@127.0.0.1_8084", self.side.store.used)
        self.finish_one()
        on_disk = sum(len(b) for b in files_under(self.home / "customers").values())
        self.assertEqual(self.successResultOf(counting), {"dave@127.0.0.1_8084": on_disk})
        self.assertEqual(self.side.store.used["dave@127.0.0.1_8084"], on_disk)


class PieceInReadsTests(TestCase):
    """A piece that comes as many reads is written and acked byte for byte as one that comes whole; a forged one is
    refused, an awaited Data answer gets its payload, and nothing of a written piece waits for the Ack's `o`."""

    def setUp(self) -> None:
        self.home = Path(self.mktemp())
        self.side = Side(self, self.home)
        self.side.hire("dave", 10 << 20)
        self.file_ids = iter(range(1000, 2000))

    def feed_in_reads(self, packet: wire.Packet, reads: int = 5) -> bytes:
        """The packet's file framed as a peer sends it, handed to the connection in `reads` reads of odd sizes."""
        data = wire.serialize(packet)
        framed = tcp_frames.encode_file(next(self.file_ids), data)
        cuts = [len(framed) * n // reads + 7 * n for n in range(reads)] + [len(framed)]
        for start, end in itertools.pairwise(cuts):
            self.side.connection.dataReceived(framed[start:end])
        return data

    def piece(self, size: int = 300_000, packet_id: str = PIECE) -> wire.Packet:
        return self.side.make("dave", "Data", packet_id, base64.b64encode(os.urandom(size)))

    def test_a_piece_in_many_reads_is_stored_as_it_came_and_acked_with_its_length(self) -> None:
        packet = self.piece()
        data = self.feed_in_reads(packet)
        self.assertEqual([answer_of(p) for p in self.side.written()], [("Ack", str(len(packet.payload)).encode())])
        self.assertEqual(list(files_under(self.home / "customers").values()), [data])
        # the same file in one piece, stored again over it: the very same bytes, the same length said
        self.assertEqual(answer_of(self.side.send_packet(packet)), ("Ack", str(len(packet.payload)).encode()))
        self.assertEqual(list(files_under(self.home / "customers").values()), [data])

    def pieces_held(self) -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, Inbound) and o.packet.packet_id == PIECE)

    def test_a_written_piece_is_let_go_before_the_peer_acknowledges_the_ack(self) -> None:
        self.feed_in_reads(self.piece())
        self.assertEqual(self.side.supplier.counters["pieces_stored"], 1)
        # the Ack waits for the peer's `o` (up to the ack timeout): the piece (its packet, its bytes) may not wait too
        self.assertEqual(self.pieces_held(), 0)

    def test_a_refused_piece_is_let_go_before_the_peer_acknowledges_the_fail(self) -> None:
        self.feed_in_reads(self.piece(size=8 << 20))  # over the 10 MiB dave was given, once in base64
        self.assertEqual(self.side.supplier.refusals["data_over_quota"], 1)
        # before the Fail is read (and acknowledged) by the peer
        self.assertEqual(self.pieces_held(), 0)
        self.assertEqual([answer_of(p)[0] for p in self.side.written()], ["Fail"])

    def test_a_forged_piece_in_many_reads_is_refused_and_nothing_is_written(self) -> None:
        packet = self.piece()
        forged = attrs.evolve(packet, payload=packet.payload[:-8] + b"AAAAAAAA")
        self.feed_in_reads(forged)
        self.assertEqual(self.side.gateway.dropped["bad_signature"], 1)
        self.assertEqual(self.side.written(), [])
        self.assertEqual(files_under(self.home / "customers"), {})

    def test_a_data_answer_awaited_gets_its_whole_payload_and_is_not_stored(self) -> None:
        asked = PIECE.replace("0-0-Data", "1-0-Data")
        dave = self.side.gateway.cache.get(DAVE)
        assert dave is not None
        retrieve = self.side.gateway.outbox("Retrieve", DAVE, b"", packet_id=asked)
        answer = self.side.gateway.request(retrieve, dave)
        packet = self.piece(packet_id=asked)
        self.feed_in_reads(packet)
        got = self.successResultOf(answer)
        self.assertEqual((got.command, got.payload), ("Data", packet.payload))
        self.assertEqual(files_under(self.home / "customers"), {})


class RefusalTests(TestCase):
    def setUp(self) -> None:
        self.home = Path(self.mktemp())
        self.side = Side(self, self.home, donated=10 << 20)

    def test_a_request_for_more_than_is_free(self) -> None:
        self.assertEqual(answer_of(self.side.hire("dave", 11 << 20)), ("Ack", DENY_SPACE.encode()))
        self.assertEqual(self.side.supplier.customers.by_idurl, {})
        self.assertEqual(answer_of(self.side.hire("dave", 1 << 20)), ("Ack", b"accepted"))
        # what dave holds is not free for alice
        self.assertEqual(answer_of(self.side.hire("alice", 9 << 20)), ("Ack", DENY_SPACE.encode()))

    def test_a_request_for_nothing_is_refused_as_official_suppliers_do(self) -> None:
        for needed in (0, -1):
            self.assertEqual(answer_of(self.side.hire("dave", needed)), ("Fail", b"wrong storage value"))
        self.assertEqual(self.side.supplier.customers.by_idurl, {})
        self.assertFalse((self.home / "customers.json").exists())
        self.assertEqual(self.side.supplier.refusals["request_bad_value"], 2)

    def test_past_the_most_customers_a_new_one_is_refused_and_nothing_is_written(self) -> None:
        self.patch(supplier_module, "MAX_CUSTOMERS", 1)
        self.assertEqual(answer_of(self.side.hire("dave", 1 << 20)), ("Ack", b"accepted"))
        written = (self.home / "customers.json").stat()
        self.assertEqual(answer_of(self.side.hire("alice", 1 << 20)), ("Ack", DENY_CUSTOMERS.encode()))
        self.assertEqual(list(self.side.supplier.customers.by_idurl), [DAVE])
        self.assertEqual(self.side.supplier.refusals["request_too_many_customers"], 1)
        self.assertEqual((self.home / "customers.json").stat().st_ino, written.st_ino)  # not replaced
        # a customer already here may still change what it rents
        self.assertEqual(answer_of(self.side.hire("dave", 2 << 20)), ("Ack", b"accepted"))
        self.assertEqual(self.side.supplier.customers.by_idurl[DAVE].allocated, 2 << 20)

    def test_a_new_customer_with_an_identity_too_large_to_pin_is_refused(self) -> None:
        self.assertEqual(answer_of(self.side.hire("alice", 1 << 20)), ("Ack", b"accepted"))
        written = (self.home / "customers.json").read_bytes()
        # 32 long contacts, signed: a valid identity of about 10 KB (the cache takes up to 50 KB)
        contacts = tuple(f"tcp://127.0.0.1:{7700 + n}/{'x' * 280}" for n in range(32))
        for name in ("dave", "alice"):
            grown = me(name).next_revision(contacts, self.side.reactor.seconds())
            self.assertGreater(len(identity_xml.serialize(grown.identity)), MAX_CUSTOMER_IDENTITY_BYTES)
            self.side.signers[name] = signer(self, grown, self.side.reactor)
            self.side.send(name, "Identity", "identity:2", grown.xml)
        self.assertEqual(answer_of(self.side.hire("dave", 1 << 20)), ("Ack", DENY_IDENTITY.encode()))
        self.assertEqual(self.side.supplier.refusals["request_identity_too_large"], 1)
        self.assertEqual(list(self.side.supplier.customers.by_idurl), [ALICE])
        self.assertEqual((self.home / "customers.json").read_bytes(), written)
        # a customer already here is one still
        self.assertEqual(answer_of(self.side.hire("alice", 2 << 20)), ("Ack", b"accepted"))

    def test_data_from_a_node_never_accepted(self) -> None:
        answer = self.side.send("dave", "Data", PIECE, b"piece")
        self.assertEqual(answer_of(answer), ("Fail", NOT_A_CUSTOMER.encode()))
        self.assertEqual(files_under(self.home / "customers"), {})

    def test_data_over_quota(self) -> None:
        self.side.hire("dave", 100_000)
        self.assertEqual(answer_of(self.side.send("dave", "Data", PIECE, b"x" * 50_000)), ("Ack", b"50000"))
        kept = files_under(self.home / "customers")
        answer = self.side.send("dave", "Data", PIECE.replace("0-0-Data", "0-0-Parity"), b"y" * 60_000)
        self.assertEqual(answer_of(answer), ("Fail", NO_SPACE.encode()))
        self.assertEqual(files_under(self.home / "customers"), kept)
        # the same piece again, replacing itself, fits: the old copy's bytes are counted once
        self.assertEqual(answer_of(self.side.send("dave", "Data", PIECE, b"z" * 60_000)), ("Ack", b"60000"))

    def test_paths_that_escape_the_customers_folder(self) -> None:
        self.side.hire("dave", 1 << 20)
        for bad in ("master$dave@127.0.0.1_8084:../../etc/x", "master$dave@127.0.0.1_8084:/abs/x/y",
                    "master$dave@127.0.0.1_8084:3//0-0-Data", "master$dave@127.0.0.1_8084:3/F1/..",
                    "master$dave@127.0.0.1_8084:", "master$../x@h:3/F1/0-0-Data", "nothing-here"):
            answer = self.side.send("dave", "Data", bad, b"piece")
            self.assertEqual(answer_of(answer), ("Fail", b"incorrect path"), bad)
        # a path in another customer's folder
        answer = self.side.send("dave", "Data", PIECE.replace("dave@", "alice@"), b"piece")
        self.assertEqual(answer_of(answer), ("Fail", b"incorrect path"))
        self.assertEqual(files_under(self.home / "customers"), {})
        self.assertFalse((self.home / "etc").exists())

    def test_a_data_packet_with_a_bad_signature(self) -> None:
        self.side.hire("dave", 1 << 20)
        forged = attrs.evolve(self.side.make("dave", "Data", PIECE, b"genuine"), payload=b"changed")
        self.assertIsNone(self.side.send_packet(forged))
        self.assertEqual(self.side.gateway.dropped["bad_signature"], 1)
        self.assertEqual(files_under(self.home / "customers"), {})

    def test_another_customers_data_is_not_disclosed(self) -> None:
        self.side.hire("dave", 1 << 20)
        self.side.hire("alice", 1 << 20)
        self.side.send("dave", "Data", PIECE, b"dave's secret piece")
        answer = self.side.send("alice", "Retrieve", PIECE)
        self.assertEqual(answer_of(answer), ("Fail", b"incorrect path"))
        answer = self.side.send("alice", "ListFiles", "master$dave@127.0.0.1_8084:1", b'{"items":["*"]}')
        self.assertEqual(answer_of(answer), ("Fail", b"key not registered"))
        answer = self.side.send("alice", "DeleteBackup", "master$dave@127.0.0.1_8084:3/F20261201075109PM")
        self.assertEqual(answer_of(answer), ("Fail", NOT_A_CUSTOMER.encode()))
        self.assertEqual(len(files_under(self.home / "customers")), 1)
        # dave gets his own piece back, nested as he sent it
        mine = self.side.send("dave", "Retrieve", PIECE)
        assert mine is not None
        self.assertEqual(wire.parse(mine.payload).payload, b"dave's secret piece")
        self.assertEqual(answer_of(self.side.send("dave", "Retrieve", PIECE.replace("0-0", "1-0"))),
                         ("Fail", NOT_FOUND.encode()))


    def test_a_list_delete_passes_over_what_is_not_the_senders_as_official_suppliers_do(self) -> None:
        self.side.hire("dave", 1 << 20)
        self.side.hire("alice", 1 << 20)
        alices = PIECE.replace("dave@", "alice@")
        self.side.send("dave", "Data", PIECE, b"dave's piece")
        self.side.send("alice", "Data", alices, b"alice's piece")
        self.side.send("alice", "Data", alices.replace("0-0", "1-0"), b"alice's other piece")
        # a bad path fails the whole list, as official suppliers answer it, before anything goes
        answer = self.side.send("alice", "DeleteFile", "list-1", f"{alices}\nnothing-here".encode())
        self.assertEqual(answer_of(answer), ("Fail", b"incorrect path"))
        self.assertEqual(len(files_under(self.home / "customers")), 3)
        # only another customer's: nothing of hers named
        answer = self.side.send("alice", "DeleteFile", "list-2", f"{PIECE}\n{PIECE}".encode())
        self.assertEqual(answer_of(answer), ("Fail", NOT_A_CUSTOMER.encode()))
        # hers and his: hers goes, his is passed over
        answer = self.side.send("alice", "DeleteFile", "list-3", f"{PIECE}\n{alices}".encode())
        self.assertEqual(answer_of(answer), ("Ack", b""))
        self.assertEqual(self.side.supplier.refusals["delete_skipped"], 3)
        left = sorted(files_under(self.home / "customers"))
        self.assertEqual(len(left), 2)
        self.assertTrue(any("dave@" in name for name in left))
        self.assertFalse(any("alice@" in name and "/0-0-Data" in name for name in left))
        mine = self.side.send("dave", "Retrieve", PIECE)
        assert mine is not None
        self.assertEqual(wire.parse(mine.payload).payload, b"dave's piece")


class DamagedPieceTests(TestCase):
    """A piece its disk changed is not handed out: the official answers, what the customer checks for."""

    def setUp(self) -> None:
        self.home = Path(self.mktemp())
        self.side = Side(self, self.home, donated=10 << 20)
        self.side.hire("dave", 1 << 20)
        self.side.send("dave", "Data", PIECE, b"a piece of dave's")
        (self.path,) = [p for p in (self.home / "customers").rglob("*") if p.is_file()]

    def test_a_piece_changed_on_disk_is_answered_as_not_valid(self) -> None:
        self.path.write_bytes(self.path.read_bytes().replace(b"a piece", b"a PIECE"))
        self.assertEqual(answer_of(self.side.send("dave", "Retrieve", PIECE)), ("Fail", b"stored packet is not valid"))

    def test_a_piece_that_no_longer_parses_is_answered_as_unreadable(self) -> None:
        self.path.write_bytes(self.path.read_bytes()[:-20])
        self.assertEqual(answer_of(self.side.send("dave", "Retrieve", PIECE)), ("Fail", b"unserialize failed"))


class CustomersFileTests(TestCase):
    """customers.json is rewritten by the worker, not on the reactor; requests made meanwhile share one write."""

    def setUp(self) -> None:
        self.home = Path(self.mktemp())
        self.side = Side(self, self.home, donated=10 << 20)
        self.writes: list[tuple[defer.Deferred[object], object, tuple[object, ...]]] = []

        def held(work: object, *args: object) -> defer.Deferred[object]:
            d: defer.Deferred[object] = defer.Deferred()
            self.writes.append((d, work, args))
            return d

        self.side.supplier.customers.worker = held

    def finish_one(self) -> None:
        d, work, args = self.writes.pop(0)
        d.callback(work(*args))  # type: ignore[operator]

    def saved(self) -> list[str]:
        return [c["idurl"] for c in json.loads((self.home / "customers.json").read_text())["customers"]]

    def test_a_customer_is_accepted_once_on_the_disk_and_requests_meanwhile_share_the_next_write(self) -> None:
        self.assertIsNone(self.side.hire("dave", 1 << 20))  # no answer while its record waits for the disk
        self.assertFalse((self.home / "customers.json").exists())
        self.assertIsNone(self.side.hire("alice", 1 << 20))
        self.assertIsNone(self.side.hire("dave", 2 << 20))
        self.assertEqual(len(self.writes), 1)  # the first write; the two others wait for one more
        self.finish_one()
        self.assertEqual(self.saved(), [DAVE])
        self.assertEqual([answer_of(p) for p in self.side.written()], [("Ack", b"accepted")])
        self.assertEqual(len(self.writes), 1)
        self.finish_one()
        self.assertEqual(sorted(self.saved()), [ALICE, DAVE])
        self.assertEqual([answer_of(p) for p in self.side.written()], [("Ack", b"accepted")] * 2)
        self.assertEqual(self.writes, [])

    def test_a_customer_asking_again_for_what_it_has_writes_nothing(self) -> None:
        self.side.hire("dave", 1 << 20)
        self.assertIsNone(self.side.hire("dave", 1 << 20))  # answered once the record it has is on the disk
        self.finish_one()
        self.assertEqual([answer_of(p) for p in self.side.written()], [("Ack", b"accepted")] * 2)
        self.assertEqual(answer_of(self.side.hire("dave", 1 << 20)), ("Ack", b"accepted"))
        self.assertEqual(self.writes, [])

    def test_a_write_that_failed_is_answered_so_and_the_next_request_writes_again(self) -> None:
        self.side.hire("dave", 1 << 20)
        d, _work, _args = self.writes.pop(0)
        d.errback(OSError(28, "No space left on device"))
        self.assertEqual([answer_of(p) for p in self.side.written()],
                         [("Fail", b"request processing failed with exception")])
        self.assertIsNone(self.side.hire("dave", 1 << 20))
        self.finish_one()
        self.assertEqual(self.saved(), [DAVE])
        self.assertEqual([answer_of(p) for p in self.side.written()], [("Ack", b"accepted")])

    def fail_one(self) -> None:
        d, _work, _args = self.writes.pop(0)
        d.errback(OSError(28, "No space left on device"))

    def test_a_customer_whose_record_was_not_written_is_not_one(self) -> None:
        self.side.hire("dave", 1 << 20)
        self.fail_one()
        self.assertEqual([answer_of(p) for p in self.side.written()],
                         [("Fail", b"request processing failed with exception")])
        customers = self.side.supplier.customers
        self.assertEqual((customers.by_idurl, customers.allocated()), ({}, 0))
        self.assertEqual(answer_of(self.side.send("dave", "Data", PIECE, b"piece")), ("Fail", NOT_A_CUSTOMER.encode()))

    def test_a_request_repeated_while_its_record_is_written_shares_that_write_s_outcome(self) -> None:
        self.side.hire("dave", 1 << 20)
        self.assertIsNone(self.side.hire("dave", 1 << 20))  # the same record: no yes before the disk's
        self.fail_one()
        self.assertEqual([answer_of(p) for p in self.side.written()],
                         [("Fail", b"request processing failed with exception")] * 2)
        self.assertEqual((self.side.supplier.customers.by_idurl, self.writes), ({}, []))
        self.assertFalse((self.home / "customers.json").exists())

    def test_a_change_not_written_leaves_the_customer_as_it_was(self) -> None:
        self.side.hire("dave", 1 << 20)
        self.finish_one()
        self.assertEqual([answer_of(p) for p in self.side.written()], [("Ack", b"accepted")])
        kept = self.side.supplier.customers.by_idurl[DAVE]
        self.side.hire("dave", 5 << 20)
        self.assertIsNone(self.side.hire("alice", 1 << 20))  # the next write, which succeeds
        self.assertIsNone(self.side.hire("dave", 5 << 20))
        self.fail_one()
        self.finish_one()
        self.assertEqual([answer_of(p) for p in self.side.written()],
                         [("Fail", b"request processing failed with exception")] * 2 + [("Ack", b"accepted")])
        customers = self.side.supplier.customers
        self.assertEqual((customers.by_idurl[DAVE], customers.allocated()), (kept, 2 << 20))
        self.assertEqual(sorted(self.saved()), [ALICE, DAVE])
        self.assertEqual(json.loads((self.home / "customers.json").read_text())["customers"][0]["allocated"], 1 << 20)

    def test_a_record_not_yet_written_gives_no_rights(self) -> None:
        """What a customer may store is what the disk holds: a new customer stores nothing before its record is
        written (a write that fails would take it back, and its pieces would stay unaccounted)."""
        self.assertIsNone(self.side.hire("dave", 1 << 20))
        self.assertEqual(answer_of(self.side.send("dave", "Data", PIECE, b"piece")), ("Fail", NOT_A_CUSTOMER.encode()))
        self.fail_one()
        self.assertEqual(list((self.home / "customers").rglob("*-Data")) if (self.home / "customers").exists()
                         else [], [])

    def test_a_larger_room_not_yet_written_is_not_used(self) -> None:
        self.side.hire("dave", 1 << 10)
        self.finish_one()
        self.side.written()
        self.assertIsNone(self.side.hire("dave", 1 << 20))  # more room asked, not on the disk yet
        self.assertEqual(answer_of(self.side.send("dave", "Data", PIECE, b"x" * 4096)), ("Fail", NO_SPACE.encode()))
        self.fail_one()
        self.assertEqual(self.side.supplier.customers.by_idurl[DAVE].allocated, 1 << 10)

    def test_the_supplier_stops_once_the_file_is_written(self) -> None:
        self.side.hire("dave", 1 << 20)
        stopped = self.side.supplier.stop()
        self.assertNoResult(stopped)
        self.finish_one()
        self.successResultOf(stopped)
        self.assertEqual(self.saved(), [DAVE])


class StrangerTests(TestCase):
    def test_what_a_stranger_sends_walks_no_list_of_customers(self) -> None:
        side = Side(self, Path(self.mktemp()), donated=10 << 20)
        side.hire("dave", 1 << 20)
        customers = side.supplier.customers
        walked = customers.by_idurl = WalkCounting(customers.by_idurl)
        piece = PIECE.replace("dave@", "alice@")
        asked = [("Data", piece, b"piece"), ("Retrieve", piece, b""), ("DeleteFile", piece, b""),
                 ("ListFiles", "master$alice@127.0.0.1_8084:1", b'{"items":["*"]}'),
                 ("Identity", "identity:2", me("alice").xml)]
        answers = [answer_of(side.send("alice", command, pid, payload)) for command, pid, payload in asked]
        self.assertEqual(answers, [("Fail", NOT_A_CUSTOMER.encode()), ("Fail", b"incorrect retrieve request"),
                                   ("Fail", NOT_A_CUSTOMER.encode()), ("Fail", b"key not registered"),
                                   ("Ack", b"")])
        self.assertEqual(answer_of(side.hire("alice", 10 << 20)), ("Ack", DENY_SPACE.encode()))
        self.assertEqual(walked.walks, 0)
        # dave's own packets neither
        self.assertEqual(answer_of(side.send("dave", "Data", PIECE, b"piece")), ("Ack", b"5"))
        self.assertEqual(walked.walks, 0)


class RestartTests(TestCase):
    def test_every_byte_survives_a_restart(self) -> None:
        home = Path(self.mktemp())
        side = Side(self, home)
        side.hire("dave", 1 << 20)
        pieces = {PIECE.replace("0-0", f"{n}-0"): os.urandom(3000 + n) for n in range(5)}
        for packet_id, data in pieces.items():
            side.send("dave", "Data", packet_id, data)
        again = Side(self, home)
        self.assertEqual(list(again.supplier.customers.by_idurl), [DAVE])
        self.assertEqual(again.store.used["dave@127.0.0.1_8084"], side.store.used["dave@127.0.0.1_8084"])
        for packet_id, data in pieces.items():
            answer = again.send("dave", "Retrieve", packet_id)
            assert answer is not None
            self.assertEqual(wire.parse(answer.payload).payload, data)


class FullDiskTests(TestCase):
    def test_a_full_disk_answers_write_error_and_keeps_what_was_stored(self) -> None:
        if os.geteuid() != 0 or shutil.which("mount") is None:
            raise SkipTest("a small tmpfs needs root")
        disk = Path(self.mktemp()).resolve()
        disk.mkdir(parents=True)
        made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True)
        if made.returncode != 0:
            raise SkipTest(f"tmpfs cannot be mounted here: {made.stderr.decode().strip()}")
        self.addCleanup(subprocess.run, ["umount", "-l", str(disk)], capture_output=True)
        side = Side(self, Path(self.mktemp()), customers_root=disk / "customers")
        side.hire("dave", 100 << 20)  # the quota allows it; the disk does not
        self.assertEqual(answer_of(side.send("dave", "Data", PIECE, b"a" * 300_000)), ("Ack", b"300000"))
        before = files_under(disk / "customers")
        answer = side.send("dave", "Data", PIECE, b"b" * 900_000)  # replacing it would need both copies
        self.assertEqual(answer_of(answer), ("Fail", b"write error"))
        self.assertEqual(files_under(disk / "customers"), before)
        self.assertEqual(side.supplier.refusals["data_write_error"], 1)
        answer = side.send("dave", "Retrieve", PIECE)
        assert answer is not None
        self.assertEqual(wire.parse(answer.payload).payload, b"a" * 300_000)
