"""The DHT family record on real DHT nodes (in-memory network, one clock): a customer's record outlives its
12-hour expiry while a supplier of its family renews it, and stops being renewed by one left out."""

from __future__ import annotations

import json

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.storage.family import FAMILY_EXPIRE, family_key, family_value, read_family, renew_family
from tests.dht.grid import Grid

CUSTOMER = "http://127.0.0.1:8084/dave.xml"
BOB, CAROL, EVE = (f"http://127.0.0.1:8084/{n}.xml" for n in ("bob", "carol", "eve"))


class FamilyRecordTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.grid = Grid()
        self.nodes = [self.grid.add() for _ in range(6)]
        for node in self.nodes[1:]:
            self.grid.join(node, self.nodes[0])

    def settle(self, work: object) -> object:
        return self.grid.resolve(defer.ensureDeferred(work))  # type: ignore[arg-type]

    def test_a_supplier_keeps_the_record_alive_past_its_expiry(self) -> None:
        customer, supplier, stranger = self.nodes[1], self.nodes[2], self.nodes[3]
        value = family_value(CUSTOMER, CUSTOMER, [BOB, CAROL], 3, self.grid.clock.seconds())
        self.grid.resolve(customer.set_value(family_key(CUSTOMER), value, expire=FAMILY_EXPIRE))
        # a second customer's record nobody renews: the control
        other = "http://127.0.0.1:8084/olga.xml"
        lonely = family_value(other, other, [BOB], 1, self.grid.clock.seconds())
        self.grid.resolve(customer.set_value(family_key(other), lonely, expire=FAMILY_EXPIRE))
        self.assertEqual(self.settle(read_family(stranger, CUSTOMER))["suppliers"], [BOB, CAROL])  # type: ignore[index]
        self.grid.kill(customer)  # the customer's node is gone, and with it its own republishing
        for _hour in range(30):  # the customer is gone for more than a day; bob renews every hour
            self.grid.clock.advance(3600)
            self.assertTrue(self.settle(renew_family(supplier, CUSTOMER, BOB, [BOB, CAROL], self.grid.clock.seconds())))
        found = self.settle(read_family(stranger, CUSTOMER))
        self.assertEqual((found["suppliers"], found["revision"]), ([BOB, CAROL], 3))  # type: ignore[index]
        self.assertIsNone(self.settle(read_family(stranger, other)), "an unrenewed record should have expired")
        # eve is not in the family: she neither renews it nor rewrites it
        self.assertFalse(self.settle(renew_family(self.nodes[4], CUSTOMER, EVE, [EVE], self.grid.clock.seconds())))

    def test_an_expired_record_is_written_again_from_what_the_customer_told(self) -> None:
        supplier, stranger = self.nodes[2], self.nodes[3]
        self.assertIsNone(self.settle(read_family(stranger, CUSTOMER)))
        self.assertTrue(self.settle(renew_family(supplier, CUSTOMER, CAROL, [BOB, CAROL], self.grid.clock.seconds())))
        found = self.settle(read_family(stranger, CUSTOMER))
        self.assertEqual(json.loads(json.dumps(found))["suppliers"], [BOB, CAROL])  # type: ignore[index]
