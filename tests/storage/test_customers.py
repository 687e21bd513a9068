"""The customers table on its own: the bytes rented, kept up to date through every change and a reload."""

from __future__ import annotations

from pathlib import Path

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
