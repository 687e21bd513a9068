"""Storage faults with real supplier processes (`twistd bitdust`), the customer in the test's reactor:
two of four suppliers SIGKILLed, a supplier SIGKILLed during an upload, every supplier restarted, a
supplier whose disk flips bytes in stored pieces, and the customer's home lost and rebuilt from its key
backup on a fresh one."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.error import ConnectError
from twisted.trial.unittest import TestCase

from bitdust_node.node import Node
from tests.storage.grid import small_pages
from tests.storage.network import (
    CUSTOMER,
    SUPPLIERS,
    customer_of,
    settings_for,
    start_named,
    start_server,
    suppliers_known,
)
from tests.support.nodes import api, eventually, run_cli, start_node
from tests.support.processes import NodeProcess

MIB = 1 << 20


def _signal(process: NodeProcess, number: int) -> None:
    """A signal to a supplier's process while it runs (SIGSTOP freezes it: its sockets stay open, unread)."""
    if process.process.pid:
        os.kill(process.process.pid, number)


async def answering(process: NodeProcess) -> bool:
    try:
        await process.api("GET", "/process/health/v1")
    except ConnectError:
        return False
    return True


class StorageFaultTests(TestCase):
    timeout = 300

    async def network(self, count: int) -> tuple[Node, list[NodeProcess]]:
        server = await start_server(self)
        suppliers = []
        for address in SUPPLIERS[:count]:
            process = NodeProcess(self, address, settings_for("supplier", **{
                "services/supplier/donated-space": "1 GB"}))
            suppliers.append(process)
        for number, process in enumerate(suppliers):
            await eventually(lambda p=process: answering(p), timeout=30)
            reply = await process.api("POST", "/identity/create/v1", {"username": f"supplier{number}"})
            self.assertEqual(reply["status"], "OK", reply)
        await suppliers_known(server, count)
        return server, suppliers

    async def customer(self, home: Path | None = None, **extra: Any) -> Node:
        settings = {"services/customer/suppliers-number": 4, "services/customer/block-size": "1 MB", **extra}
        if home is not None:
            return await start_node(self, CUSTOMER, settings_for("customer", **settings), home=home)
        return await start_named(self, "dave", CUSTOMER, "customer", **settings)

    async def store(self, node: Node, name: str, size: int) -> bytes:
        data = os.urandom(size)
        source = Path(self.mktemp())
        source.write_bytes(data)
        status, reply = await api(node, "POST", "/file/upload/start/v1",
                                  {"local_path": str(source), "remote_path": name, "wait_result": True})
        self.assertEqual(status, 200, reply)
        return data

    async def fetch(self, node: Node, name: str) -> bytes:
        folder = Path(self.mktemp())
        status, reply = await api(node, "POST", "/file/download/start/v1",
                                  {"remote_path": name, "destination_folder": str(folder), "wait_result": True})
        self.assertEqual(status, 200, reply)
        return (folder / name).read_bytes()

    async def moved_to_a_fresh_home(self, node: Node) -> Node:
        """The customer's key backed up with the CLI, the node stopped, and the key recovered on a fresh home."""
        backup = Path(self.mktemp())
        made = await run_cli(node.home, "identity", "backup", str(backup))
        self.assertEqual(made.code, 0, made.err)
        await node.stopService()
        fresh = await self.customer(home=_fresh_home(self))
        status, reply = await api(fresh, "POST", "/identity/recover/v1", {"source_filepath": str(backup)})
        self.assertEqual(status, 200, reply)
        assert fresh.graph is not None
        await fresh.graph.settled()
        return fresh

    def process_at(self, suppliers: list[NodeProcess], node: Node, position: int) -> NodeProcess:
        idurl = customer_of(node).suppliers.slots[position].idurl
        name = idurl.rsplit("/", 1)[1].removesuffix(".xml")
        return suppliers[int(name.removeprefix("supplier"))]

    async def test_two_of_four_killed_then_every_supplier_restarted_and_one_flipping_bytes(self) -> None:
        _server, suppliers = await self.network(4)
        node = await self.customer()
        await eventually(lambda: len(customer_of(node).suppliers.connected()) == 4, timeout=60)
        # the customer's identity cache never forgets its suppliers (pinned through identity_propagate)
        assert node.ctx is not None
        hired = {slot.idurl for slot in customer_of(node).suppliers.slots if slot.idurl}
        self.assertLessEqual(hired, node.ctx.identity_cache.pinned())
        data = await self.store(node, "report.bin", 3 * MIB + 12345)
        # the supplier asked first has a disk that flips bytes in every piece it holds
        liar = self.process_at(suppliers, node, 0)
        flipped = 0
        for piece in (liar.home / "customers").rglob("*-Data"):
            raw = bytearray(piece.read_bytes())
            raw[len(raw) // 2] ^= 0x01
            piece.write_bytes(bytes(raw))
            flipped += 1
        self.assertGreater(flipped, 0)
        mover = customer_of(node).mover
        self.assertEqual(await self.fetch(node, "report.bin"), data)
        self.assertGreaterEqual(mover.counters["bad_shares"], 4, "the flipped shares were not noticed")
        # two of four SIGKILLed (the liar one of them): the other two rebuild every block
        for victim in (liar, self.process_at(suppliers, node, 1)):
            await victim.kill()
        self.assertEqual(await self.fetch(node, "report.bin"), data)
        # every supplier restarted from its home: nothing lost
        for process in suppliers:
            await process.kill()
        restarted = [NodeProcess(self, p.address, {}, home=p.home) for p in suppliers]
        for process in restarted:
            await eventually(lambda p=process: answering(p), timeout=30)
        await eventually(lambda: defer.ensureDeferred(self._fetch_ok(node, "report.bin", data)), timeout=60,
                         interval=1)

    async def _fetch_ok(self, node: Node, name: str, data: bytes) -> bool:
        try:
            return await self.fetch(node, name) == data
        except AssertionError:
            return False

    async def test_a_supplier_killed_during_an_upload_is_replaced(self) -> None:
        _server, suppliers = await self.network(6)
        node = await self.customer()
        customer = customer_of(node)
        await eventually(lambda: len(customer.suppliers.connected()) == 4, timeout=60)
        data = os.urandom(12 * MIB)
        source = Path(self.mktemp())
        source.write_bytes(data)
        status, reply = await api(node, "POST", "/file/upload/start/v1",
                                  {"local_path": str(source), "remote_path": "big.bin"})
        self.assertEqual(status, 200, reply)
        transfer = list(customer.transfers.values())[-1]
        await eventually(lambda: transfer.done >= 2 * MIB, timeout=60, interval=0.01)
        victim = self.process_at(suppliers, node, 2)
        await victim.kill()
        await eventually(lambda: transfer.state != "running", timeout=120, interval=0.1)
        self.assertEqual((transfer.state, transfer.error), ("done", ""))
        self.assertGreaterEqual(customer.counters["replaced"], 1)
        self.assertNotIn(victim.address, customer.suppliers.slots[2].idurl)
        self.assertEqual(await self.fetch(node, "big.bin"), data)
        # and the new supplier holds position 2's shares of every block, the early ones rebuilt
        entry = customer.catalog.entry("big.bin")
        assert entry is not None
        version = entry.versions[-1]
        self.assertEqual(version.suppliers[2], customer.suppliers.slots[2].idurl)

    async def test_a_file_deleted_while_a_supplier_was_down_goes_from_it_once_it_is_back(self) -> None:
        """The delete reaches the three up at once; the one down owes it (written in my home), and gets it once it
        answers a round of checks after its restart."""
        _server, suppliers = await self.network(4)
        node = await self.customer(**{"services/customer/health-check-interval-seconds": 1})
        customer = customer_of(node)
        await eventually(lambda: len(customer.suppliers.connected()) == 4, timeout=60)
        kept = await self.store(node, "kept.bin", MIB + 17)
        await self.store(node, "gone.bin", 2 * MIB + 5)
        entry = customer.catalog.entry("gone.bin")
        assert entry is not None
        folder = f"/master/{entry.path_id}/"

        def pieces(process: NodeProcess) -> list[Path]:
            return [p for p in (process.home / "customers").rglob("*-Data") if folder in p.as_posix()]

        down = self.process_at(suppliers, node, 1)
        self.assertEqual(len(pieces(down)), 3)
        await down.kill()
        status, reply = await api(node, "DELETE", "/file/delete/v1", {"remote_path": "gone.bin"})
        self.assertEqual(status, 200, reply)
        self.assertEqual([len(pieces(p)) for p in suppliers if p is not down], [0, 0, 0])
        self.assertEqual(len(pieces(down)), 3)
        back = NodeProcess(self, down.address, {}, home=down.home)
        await eventually(lambda: answering(back), timeout=30)
        self.assertEqual(list(customer.deletes.pending), [customer.suppliers.slots[1].idurl])
        await eventually(lambda: not pieces(back), timeout=60, interval=0.2)
        await eventually(lambda: not customer.deletes.pending, timeout=10, interval=0.1)
        self.assertIs(self.process_at(suppliers, node, 1), down)  # not replaced: it was back in time
        self.assertEqual(await self.fetch(node, "kept.bin"), kept)

    async def test_transfers_stalled_on_frozen_suppliers_are_stopped_and_leave_nothing_behind(self) -> None:
        """An upload waiting on a frozen supplier (SIGSTOP) stopped with `bitdust file stop`: it ends at once,
        its file is not listed, and once the supplier thaws every piece of it is deleted; a download waiting on
        three frozen suppliers stopped through REST leaves no file."""
        _server, suppliers = await self.network(4)
        node = await self.customer()
        customer = customer_of(node)
        await eventually(lambda: len(customer.suppliers.connected()) == 4, timeout=60)
        kept = await self.store(node, "kept.bin", 2 * MIB + 5)
        frozen = self.process_at(suppliers, node, 3)
        _signal(frozen, signal.SIGSTOP)
        self.addCleanup(_signal, frozen, signal.SIGCONT)
        source = Path(self.mktemp())
        source.write_bytes(os.urandom(12 * MIB))
        status, reply = await api(node, "POST", "/file/upload/start/v1",
                                  {"local_path": str(source), "remote_path": "stuck.bin"})
        self.assertEqual(status, 200, reply)
        transfer = list(customer.transfers.values())[-1]
        backup = transfer.version.split(":", 1)[1]  # path id/version: the folder of its pieces on a supplier
        first = self.process_at(suppliers, node, 0)
        await eventually(lambda: any(backup in p.as_posix() for p in (first.home / "customers").rglob("*-Data")),
                         timeout=30)
        stopped = await run_cli(node.home, "file", "stop", "stuck.bin")
        self.assertEqual((stopped.code, stopped.out), (0, "upload of stuck.bin stopped\n"), stopped.err)
        self.assertEqual((transfer.state, transfer.error), ("stopped", "stopped by the user"))
        status, rows = await api(node, "GET", "/file/list/v1")
        self.assertEqual([row["path"] for row in rows["result"]], ["kept.bin"])
        again = await run_cli(node.home, "file", "stop", "stuck.bin")
        self.assertEqual(again.code, 1)
        self.assertIn("no upload or download of stuck.bin is running", again.err)
        _signal(frozen, signal.SIGCONT)

        def leftovers() -> list[Path]:
            return [p for s in suppliers for p in (s.home / "customers").rglob("*-Data") if backup in p.as_posix()]

        await eventually(lambda: not leftovers(), timeout=60, interval=0.2)
        self.assertEqual(await self.fetch(node, "kept.bin"), kept)
        # a download asking three frozen suppliers for its shares, stopped
        for position in (0, 1, 2):
            _signal(self.process_at(suppliers, node, position), signal.SIGSTOP)
        for process in suppliers:
            self.addCleanup(_signal, process, signal.SIGCONT)
        destination = Path(self.mktemp())
        status, reply = await api(node, "POST", "/file/download/start/v1",
                                  {"remote_path": "kept.bin", "destination_folder": str(destination)})
        self.assertEqual(status, 200, reply)
        download = list(customer.transfers.values())[-1]
        self.assertEqual(download.state, "running")
        status, reply = await api(node, "POST", "/file/download/stop/v1", {"remote_path": "kept.bin"})
        self.assertEqual(status, 200, reply)
        self.assertEqual(reply["result"], [{"backup_id": download.version, "aborted": True, "remote_path": "kept.bin",
                                            "state": "stopped"}])
        self.assertEqual(reply["message"], ['restoring of "kept.bin" aborted'])
        self.assertEqual(list(destination.iterdir()) if destination.exists() else [], [])
        status, reply = await api(node, "POST", "/file/download/stop/v1", {"remote_path": "kept.bin"})
        self.assertEqual((status, reply["result"]), (200, []), reply)  # as official nodes: nothing to stop is no error
        status, reply = await api(node, "POST", "/file/download/stop/v1", {"remote_path": "never.bin"})
        self.assertEqual(status, 404, reply)
        for process in suppliers:
            _signal(process, signal.SIGCONT)
        self.assertEqual(await self.fetch(node, "kept.bin"), kept)

    async def test_a_key_backup_on_a_fresh_home_finds_everything(self) -> None:
        _server, _suppliers = await self.network(4)
        node = await self.customer()
        await eventually(lambda: len(customer_of(node).suppliers.connected()) == 4, timeout=60)
        first = await self.store(node, "notes.txt", 70_000)
        second = await self.store(node, "photo.jpg", 2 * MIB + 1)
        fresh = await self.moved_to_a_fresh_home(node)
        await eventually(lambda: len(customer_of(fresh).catalog.entries) == 2, timeout=90, interval=0.5)
        listed = await run_cli(fresh.home, "file", "list")
        self.assertIn("notes.txt", listed.out)
        self.assertEqual(await self.fetch(fresh, "notes.txt"), first)
        self.assertEqual(await self.fetch(fresh, "photo.jpg"), second)

    async def test_a_key_backup_on_a_fresh_home_finds_a_catalog_kept_in_pages(self) -> None:
        small_pages(self)  # a few hundred folders make a catalog the suppliers keep as pages and a root
        _server, suppliers = await self.network(4)
        node = await self.customer()
        await eventually(lambda: len(customer_of(node).suppliers.connected()) == 4, timeout=60)
        catalog = customer_of(node).catalog
        for number in range(300):
            catalog.ensure(f"albums/{number // 30}/trip{number}", "dir", 1000.0 + number)
        first = await self.store(node, "notes.txt", 70_000)
        pages = customer_of(node).keeper.copies.pages
        self.assertGreater(len(pages), 4)
        # one more change: only its page goes, and the page it replaces leaves the suppliers
        second = await self.store(node, "photo.jpg", 2 * MIB + 1)
        now = customer_of(node).keeper.copies.pages
        self.assertEqual(len([p for p in now if p not in pages]), 1)
        for process in suppliers:
            held = {p.relative_to(process.home).as_posix() for p in process.home.rglob("*-Data") if "/0/C" in str(p)}
            self.assertEqual({h.rpartition("/master/")[2] for h in held}, {page.piece for page in now})
        # my own copy is the same pages, in the home
        digests = {page.digest for page in now}
        self.assertEqual({p.name for p in customer_of(node).keeper.disk.pages_path.iterdir()}, digests)
        entries = dict(catalog.entries)
        fresh = await self.moved_to_a_fresh_home(node)
        await eventually(lambda: len(customer_of(fresh).catalog.entries) == len(entries), timeout=90, interval=0.5)
        self.assertEqual(customer_of(fresh).catalog.entries, entries)
        # its own copy written in pages too, once the catalog taken is (in a worker thread, after it is taken)
        folder = customer_of(fresh).keeper.disk.pages_path
        await eventually(lambda: folder.is_dir() and {p.name for p in folder.iterdir()} == digests, timeout=30)
        self.assertEqual(await self.fetch(fresh, "notes.txt"), first)
        self.assertEqual(await self.fetch(fresh, "photo.jpg"), second)


def _fresh_home(test: TestCase) -> Path:
    from tests.support.nodes import make_home

    return make_home(test, CUSTOMER, settings_for("customer", **{"services/customer/suppliers-number": 4}))
