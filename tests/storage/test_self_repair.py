"""Storage that keeps itself whole while its owner does nothing, with real processes as a new user runs them:
five suppliers (`twistd bitdust`), a customer of four (`twistd bitdust` too) with short intervals, a file stored
through its REST API, then no command to the customer: a supplier SIGKILLed for good is replaced and the file
is back to 4/4; every piece deleted from another supplier's disk is found and rebuilt; a flipped byte in a
stored piece is found and rebuilt; the file restores byte for byte. How long each took is printed."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from twisted.trial.unittest import TestCase

from tests.storage.network import CUSTOMER, SERVER, SUPPLIERS, settings_for, start_server, suppliers_known
from tests.storage.test_faults import answering
from tests.support.nodes import eventually, run_cli
from tests.support.processes import NodeProcess

MIB = 1 << 20
INTERVAL = 2  # seconds between health checks
OFFLINE = 15  # seconds of silence before a supplier is replaced


class SelfRepairTests(TestCase):
    timeout = 600

    async def test_a_customer_left_alone_keeps_its_file_whole(self) -> None:
        server = await start_server(self)
        suppliers = []
        for address in SUPPLIERS[:5]:
            suppliers.append(NodeProcess(self, address, settings_for("supplier", **{
                "services/supplier/donated-space": "1 GB"})))
        for number, process in enumerate(suppliers):
            await eventually(lambda p=process: answering(p), timeout=60)
            reply = await process.api("POST", "/identity/create/v1", {"username": f"supplier{number}"})
            self.assertEqual(reply["status"], "OK", reply)
        await suppliers_known(server, 5)
        customer = NodeProcess(self, CUSTOMER, settings_for("customer", **{
            "services/customer/suppliers-number": 4, "services/customer/block-size": "1 MB",
            "services/customer/health-check-interval-seconds": INTERVAL,
            "services/customer/replace-offline-after-seconds": OFFLINE}))
        await eventually(lambda: answering(customer), timeout=60)
        reply = await customer.api("POST", "/identity/create/v1", {"username": "dave"})
        self.assertEqual(reply["status"], "OK", reply)

        async def hired() -> list[dict[str, Any]]:
            rows = (await customer.api("GET", "/supplier/list/v1")).get("result") or []
            return rows if sum(1 for r in rows if r["supplier_state"] == "CONNECTED") == 4 else []

        await eventually(hired, timeout=120, interval=0.5)
        data = os.urandom(3 * MIB + 4321)
        source = Path(self.mktemp()).resolve()
        source.write_bytes(data)
        reply = await customer.api("POST", "/file/upload/start/v1", {
            "local_path": str(source), "remote_path": "report.bin", "wait_result": True})
        self.assertEqual(reply["status"], "OK", reply)

        async def health() -> tuple[int, int]:
            rows = (await customer.api("GET", "/file/list/v1"))["result"]
            found = next(r for r in rows if r["path"] == "report.bin")["health"]
            return found["ok"], found["total"]

        async def whole() -> bool:
            return await health() == (4, 4)

        await eventually(whole, timeout=60, interval=0.5)
        by_idurl = {f"http://{SERVER}:8084/supplier{n}.xml": p for n, p in enumerate(suppliers)}
        rows = await hired()
        holders = [by_idurl[r["idurl"]] for r in sorted(rows, key=lambda r: r["position"])]
        timings = {}

        # 1. a supplier SIGKILLed for good: replaced after the offline time, its shares rebuilt, 4/4 again
        victim = holders[1]
        gone_idurl = rows[1]["idurl"]
        started = time.monotonic()
        await victim.kill()

        async def replaced() -> bool:
            rows = (await customer.api("GET", "/supplier/list/v1"))["result"]
            return rows[1]["supplier_state"] == "CONNECTED" and rows[1]["idurl"] != gone_idurl and await whole()

        await eventually(replaced, timeout=OFFLINE + 180, interval=0.5)
        timings["killed supplier replaced and its shares rebuilt"] = time.monotonic() - started
        rows = (await customer.api("GET", "/supplier/list/v1"))["result"]
        newcomer = by_idurl[rows[1]["idurl"]]
        self.assertGreater(len(pieces_of(newcomer)), 0)

        # 2. every piece deleted from another supplier's disk: found by the listing and rebuilt
        emptied = holders[2]
        gone = pieces_of(emptied)
        self.assertGreater(len(gone), 0)
        started = time.monotonic()
        for piece in gone:
            piece.unlink()
        await eventually(lambda: len(pieces_of(emptied)) == len(gone), timeout=120, interval=0.2)
        await eventually(whole, timeout=60, interval=0.5)
        timings["deleted pieces found and rebuilt"] = time.monotonic() - started

        # 3. a flipped byte in a stored piece: found by the sampled verification and rebuilt
        liar = holders[3]
        piece = pieces_of(liar)[0]
        raw = bytearray(piece.read_bytes())
        raw[len(raw) // 2] ^= 0x01
        flipped = bytes(raw)
        started = time.monotonic()
        piece.write_bytes(flipped)
        await eventually(lambda: piece.exists() and piece.read_bytes() != flipped, timeout=300, interval=0.2)
        await eventually(whole, timeout=60, interval=0.5)
        timings["flipped byte found and rebuilt"] = time.monotonic() - started

        # 4. the file restores byte for byte; the CLI shows 4/4
        back = Path(self.mktemp()).resolve()
        reply = await customer.api("POST", "/file/download/start/v1", {
            "remote_path": "report.bin", "destination_folder": str(back), "wait_result": True})
        self.assertEqual(reply["status"], "OK", reply)
        self.assertEqual((back / "report.bin").read_bytes(), data)
        listed = await run_cli(customer.home, "file", "list")
        self.assertEqual(listed.code, 0, listed.err)
        self.assertIn("4/4 report.bin", " ".join(listed.out.split()))
        status = (await customer.api("GET", "/service/info/v1?name=service_customer"))["result"]
        self.assertGreaterEqual(status["repair"]["repaired_blocks"], 3)
        for what, seconds in timings.items():
            print(f"self-repair: {what} in {seconds:.1f} s (checks every {INTERVAL} s, replaced after {OFFLINE} s)")


def pieces_of(process: NodeProcess) -> list[Path]:
    """The file's pieces on a supplier's disk (its shares; the catalog's copy is `index`)."""
    return sorted(p for p in (process.home / "customers").rglob("*-Data") if p.is_file())
