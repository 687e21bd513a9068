"""The customers table on its own: the bytes rented, kept up to date through every change and a reload."""

from __future__ import annotations

from pathlib import Path

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from bitdust_node.storage.customers import Customer, Customers

DAVE = "http://127.0.0.1:8084/dave.xml"
ALICE = "http://127.0.0.1:8084/alice.xml"
MOVED = "http://127.0.0.2:8085/dave.xml"


def customer(idurl: str, allocated: int) -> Customer:
    return Customer(idurl=idurl, global_id=idurl.rsplit("/", 1)[1][:-4] + "@127.0.0.1_8084", allocated=allocated)


class AllocatedTests(TestCase):
    def test_the_bytes_rented_follow_each_change_and_a_reload(self) -> None:
        path = Path(self.mktemp())
        customers = Customers.load(path, lambda idurl: [MOVED, DAVE] if idurl in (DAVE, MOVED) else [idurl])
        customers.put(customer(DAVE, 100))
        customers.put(customer(ALICE, 20))
        customers.put(customer(DAVE, 300))  # asking again: its new size replaces the old
        self.assertEqual((customers.allocated(), customers.allocated(but=DAVE), customers.allocated(but=ALICE)),
                         (320, 20, 300))
        self.assertEqual(customers.get(MOVED), Customer(idurl=MOVED, global_id="dave@127.0.0.1_8084", allocated=300))
        self.assertEqual(customers.allocated(but=MOVED), 20)  # filed under its new IDURL, counted once
        again = Customers.load(path)
        self.assertEqual((again.allocated(), again.allocated(but=MOVED)), (320, 20))
        self.assertIsNotNone(customers.remove(DAVE))  # by the IDURL it moved from
        self.assertEqual(customers.allocated(), 20)
        self.assertIsNone(customers.remove(DAVE))
        self.assertEqual(customers.allocated(), 20)


class MovedWhileWrittenTests(TestCase):
    """A customer whose identity moves while its record's first write is under way: that write's outcome follows
    the move (a failure takes the moved record back; a repeat waits for the write)."""

    def setUp(self) -> None:
        self.writes: list[defer.Deferred[object]] = []

        def held(work: object, *args: object) -> defer.Deferred[object]:
            d: defer.Deferred[object] = defer.Deferred()
            self.writes.append(d)
            return d

        self.customers = Customers.load(Path(self.mktemp()), lambda i: [MOVED, DAVE] if i in (DAVE, MOVED) else [i],
                                        worker=held)

    def test_a_failed_first_write_takes_the_moved_record_back(self) -> None:
        saved = self.customers.put(customer(DAVE, 100))
        moved = self.customers.get(MOVED)  # a packet from its new IDURL: filed again under it
        assert moved is not None
        self.assertEqual(moved.idurl, MOVED)
        repeat = self.customers.put(moved)  # asking again under its new IDURL: no yes before the disk's
        self.assertIsNone(self.customers.written(MOVED))
        self.writes.pop(0).errback(OSError(28, "No space left on device"))
        self.failureResultOf(saved, OSError)
        self.failureResultOf(repeat, OSError)
        self.assertEqual((self.customers.by_idurl, self.customers.allocated()), ({}, 0))
