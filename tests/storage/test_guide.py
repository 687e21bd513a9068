"""Storage as the guide sets it up, on loopback: suppliers donate space with the CLI, a customer with
`suppliers-number 4` stores a file and a folder and gets them back byte for byte."""

from __future__ import annotations

import os
from pathlib import Path

import attrs
from twisted.trial.unittest import TestCase

from bitdust_node.storage.supplier import Supplier
from bitdust_node.transport.interfaces import Inbound
from bitdust_node.wire import packet as wire
from tests.storage.network import (
    CUSTOMER,
    SUPPLIERS,
    customer_of,
    start_named,
    start_server,
    supplier_of,
    suppliers_known,
)
from tests.support.nodes import api, eventually, run_cli

FILE_MIB = 64


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class GuideStorageTests(TestCase):
    timeout = 240

    async def test_four_suppliers_a_file_and_a_folder(self) -> None:
        server = await start_server(self)
        suppliers = []
        for number, address in enumerate(SUPPLIERS[:4]):
            node = await start_named(self, f"supplier{number}", address, "supplier")
            done = await run_cli(node.home, "set", "services/supplier/donated-space", "50 GB")
            self.assertEqual(done.code, 0, done.err)
            suppliers.append(node)
        await suppliers_known(server, 4)
        status, donated = await api(suppliers[0], "GET", "/space/donated/v1")
        self.assertEqual((status, donated["result"]["donated"]), (200, 50 << 30))  # GB as official nodes count it
        customer = await start_named(self, "dave", CUSTOMER, "customer",
                                     **{"services/customer/suppliers-number": 4})
        await eventually(lambda: len(customer_of(customer).suppliers.connected()) == 4, timeout=60)
        work = Path(self.mktemp())
        work.mkdir()
        big = work / "big.bin"
        big.write_bytes(os.urandom(FILE_MIB << 20))
        folder = work / "photos"
        (folder / "2026").mkdir(parents=True)
        for name, size in (("a.jpg", 1000), ("2026/b.jpg", 300_000), ("empty.txt", 0)):
            (folder / name).write_bytes(os.urandom(size))
        stored = await run_cli(customer.home, "file", "upload", str(big))
        self.assertEqual(stored.code, 0, stored.err)
        self.assertIn("stored as big.bin", stored.out)
        stored = await run_cli(customer.home, "file", "upload", str(folder), "photos")
        self.assertEqual(stored.code, 0, stored.err)
        listed = await run_cli(customer.home, "file", "list")
        self.assertIn("big.bin", listed.out)
        self.assertIn("photos/2026/b.jpg", listed.out)
        for node in suppliers:
            status, donated = await api(node, "GET", "/space/donated/v1")
            row = donated["result"]["customers"][0]
            self.assertEqual(row["idurl"], customer.identity.require().idurl)
            # half of the file (k = 2 of 4) in base64, plus the catalog
            self.assertGreater(row["real"], (FILE_MIB << 20) // 2)
            self.assertEqual(len(supplier_of(node).customers.by_idurl), 1)
        back = Path(self.mktemp())
        fetched = await run_cli(customer.home, "file", "download", "big.bin", str(back))
        self.assertEqual(fetched.code, 0, fetched.err)
        fetched = await run_cli(customer.home, "file", "download", "photos", str(back))
        self.assertEqual(fetched.code, 0, fetched.err)
        self.assertEqual((back / "big.bin").read_bytes(), big.read_bytes())
        self.assertEqual(tree(back / "photos"), tree(folder))
        # a supplier that lies: it serves the piece with one byte changed (its own check skipped)
        liar_node = next(n for n in suppliers
                         if n.identity.require().idurl == customer_of(customer).suppliers.slots[0].idurl)
        lie_with(supplier_of(liar_node))
        mover = customer_of(customer).mover
        again = Path(self.mktemp())
        fetched = await run_cli(customer.home, "file", "download", "big.bin", str(again))
        self.assertEqual(fetched.code, 0, fetched.err)
        self.assertEqual((again / "big.bin").read_bytes(), big.read_bytes())
        self.assertGreaterEqual(mover.counters["bad_shares"], FILE_MIB // 4, "the lies were not noticed")
        # deleting the folder forgets it and frees its pieces on every supplier
        before = [supplier_of(n).store.used[customer.identity.require().global_id] for n in suppliers]
        gone = await run_cli(customer.home, "file", "delete", "photos")
        self.assertEqual(gone.code, 0, gone.err)
        listed = await run_cli(customer.home, "file", "list")
        self.assertNotIn("photos", listed.out)
        self.assertIn("big.bin", listed.out)
        after = [supplier_of(n).store.used[customer.identity.require().global_id] for n in suppliers]
        self.assertTrue(all(a < b for a, b in zip(after, before, strict=True)), (before, after))
        # more space wanted: the suppliers already hired are asked for it (the service's next round, every 10 s),
        # and the customer goes on as it was (no restart: the same suppliers object, transfers not cut)
        running = customer_of(customer)
        asked = customer_of(customer).per_supplier()
        hired = [slot.idurl for slot in customer_of(customer).suppliers.slots]
        changed = await run_cli(customer.home, "set", "services/customer/needed-space", "1 GB")
        self.assertEqual(changed.code, 0, changed.err)
        more = customer_of(customer).per_supplier()
        self.assertGreater(more, asked)
        dave = customer.identity.require().idurl

        def kept() -> list[int]:
            return [supplier_of(n).customers.by_idurl[dave].allocated for n in suppliers]

        # each supplier's record, then its Ack counted here (the record changes before the Ack comes back)
        await eventually(lambda: kept() == [more] * 4 and running.suppliers.counters["asked_again"] == 4, timeout=30)
        self.assertEqual([slot.idurl for slot in customer_of(customer).suppliers.slots], hired)  # the same four
        self.assertIs(customer_of(customer), running)


def lie_with(supplier: Supplier) -> None:
    """Answer Retrieve with the stored packet whose payload has one character changed."""
    gateway = supplier.gateway

    def lying(inbound: Inbound) -> object:
        found = supplier._own_piece(inbound)
        assert not isinstance(found, str)
        raw = supplier.store.read(found[1])
        assert raw is not None
        stored = wire.parse(raw)
        payload = bytearray(stored.payload)
        payload[len(payload) // 2] = ord("A") if payload[len(payload) // 2] != ord("A") else ord("B")
        changed = wire.serialize(attrs.evolve(stored, payload=bytes(payload)))
        return gateway.reply(inbound, "Data", changed, packet_id=stored.packet_id, owner_id=stored.owner_id)

    gateway.handlers["Retrieve"] = [lying]
