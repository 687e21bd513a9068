"""The supplier's patrol on the in-memory grid and a Clock: a customer that keeps checking keeps its space, one
silent for the idle days loses it (folder, quota, record), is answered as an unknown customer is, and is taken
again when it asks; when each customer was heard survives a restart of the patrol."""

from __future__ import annotations

import os
from pathlib import Path

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.storage.patrol import CustomerPatrol
from bitdust_node.storage.supplier import NOT_A_CUSTOMER
from tests.storage.grid import MemoryGrid, make_customer
from tests.storage.test_customer_cores import done

DAY = 86400.0


class PatrolTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.root = Path(self.mktemp())
        self.root.mkdir()
        self.grid = MemoryGrid(self.root)
        # the customer checks twice a day here: often enough to be heard, few rounds to run
        self.customer = make_customer(self.grid, **{"health-check-interval-seconds": DAY / 2})
        self.assertEqual(done(defer.ensureDeferred(self.customer.connect())), 4)
        source = self.root / "a.bin"
        source.write_bytes(os.urandom(100_000))
        done(self.customer.start_upload(source, "a.bin")[1])
        self.me = self.customer.me.require()
        self.supplier = self.grid.supplier(self.customer.suppliers.slots[0].idurl)

    def days(self, count: float, step: float = DAY) -> None:
        """Time passes; the patrol (hourly) and the customer's checks run once a step."""
        left = count * DAY
        while left > 0:
            self.grid.clock.advance(min(step, left))
            left -= step

    def ask(self, command: str, packet_id: str, payload: bytes = b"") -> tuple[str, bytes]:
        node = self.grid.nodes[self.me.idurl]
        request = node.outbox(command, self.supplier.idurl, payload, packet_id=packet_id)
        answer = done(node.request(request, self.grid.identities.by_idurl[self.supplier.idurl]))
        return answer.command, answer.payload

    def test_a_customer_that_keeps_checking_keeps_its_space(self) -> None:
        self.customer.start()
        self.days(20, step=DAY / 2)
        self.assertIsNotNone(self.supplier.supplier.customers.get(self.me.idurl))
        self.assertEqual(self.supplier.patrol.reclaimed, 0)
        self.customer.close()

    def test_a_silent_customer_loses_its_space_and_is_taken_again_when_it_asks(self) -> None:
        used = self.supplier.store.used[self.me.global_id]
        self.assertGreater(used, 100_000 // 2)
        self.days(13.9)
        self.assertIsNotNone(self.supplier.supplier.customers.get(self.me.idurl))
        self.days(0.2)
        self.assertIsNone(self.supplier.supplier.customers.get(self.me.idurl))
        self.assertEqual(self.supplier.patrol.reclaimed, 1)
        self.assertFalse((self.supplier.store.root / self.me.global_id).exists())
        self.assertNotIn(self.me.global_id, self.supplier.store.used)
        self.assertNotIn(self.me.idurl, (self.supplier.store.root.parent / "customers.json").read_text())
        # back: answered as any stranger is
        piece = f"{self.me.key_id}:1/F20261201075109PM/0-0-Data"
        self.assertEqual(self.ask("Data", piece, b"x"), ("Fail", NOT_A_CUSTOMER.encode()))
        self.assertEqual(self.ask("ListFiles", f"{self.me.key_id}:77", b'{"items":["*"]}'),
                         ("Fail", b"key not registered"))
        self.assertEqual(self.ask("Retrieve", piece), ("Fail", b"incorrect retrieve request"))
        # and taken again as a new customer when it asks for space
        slot = self.customer.suppliers.slots[0]
        self.assertTrue(done(defer.ensureDeferred(self.customer.suppliers.hire(slot, slot.idurl, 1 << 20))))
        self.assertIsNotNone(self.supplier.supplier.customers.get(self.me.idurl))

    def test_when_a_customer_was_heard_survives_a_restart(self) -> None:
        self.days(10)
        self.supplier.patrol.stop()
        again = CustomerPatrol(self.supplier.node, self.supplier.supplier, self.supplier.store.root.parent,
                               self.grid.clock, lambda: 14.0, worker=defer.maybeDeferred)
        again.start()
        self.days(4.1)
        self.assertIsNone(self.supplier.supplier.customers.get(self.me.idurl))
        self.assertEqual(again.reclaimed, 1)
