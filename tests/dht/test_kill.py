"""A value survives SIGKILL of any k-1 of its holders: real `twistd bitdust` processes on loopback."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any

from twisted.internet.error import ConnectError
from twisted.trial import unittest

from bitdust_node.settings import Settings
from tests.support import processes
from tests.support.nodes import eventually

DHT = "services/entangled-dht/"
ADDRESSES = [f"127.0.0.{i}" for i in range(2, 10)]
K = 4


class NodeProcess(processes.NodeProcess):
    def saved_contacts(self) -> int:
        """Base-layer contacts in the node's SQLite file (read while the node runs)."""
        path = self.home / "dht" / "dht.db"
        if not path.exists():
            return 0
        with closing(sqlite3.connect(str(path))) as db:
            return int(db.execute("SELECT count(*) FROM contacts WHERE layer = 0").fetchone()[0])

    async def layer0(self) -> dict[str, Any] | None:
        try:
            reply = await self.api("GET", "/network/status/v1?dht=1")
        except ConnectError:
            return None  # not listening yet
        dht = reply.get("result", {}).get("dht")
        return dht["layers"][0] if dht else None


class KillTests(unittest.TestCase):
    timeout = 150

    async def test_value_survives_sigkill_of_k_minus_one_holders(self) -> None:
        tuning = {DHT + "rpc-timeout": 1, DHT + "maintenance-interval": 3}
        nodes = [NodeProcess(self, ADDRESSES[0], {DHT + "known-nodes": "genesis", **tuning})]
        seed = {DHT + "known-nodes": f"{ADDRESSES[0]}:14441", **tuning}
        nodes += [NodeProcess(self, address, seed) for address in ADDRESSES[1:]]

        async def joined() -> bool:
            layers = [await n.layer0() for n in nodes]
            return all(layer is not None and layer["contacts"] >= K - 1 for layer in layers)

        await eventually(joined, timeout=40, interval=0.3)

        writer = nodes[-1]
        reply = await writer.api("POST", "/dht/value/set/v1", {"key": "survivor", "value": {"n": 1}})
        self.assertEqual(reply["result"]["write"], "success", reply)

        async def holders(among: list[NodeProcess]) -> list[NodeProcess]:
            return [n for n in among if ((await n.layer0()) or {}).get("data_store_items")]

        held = await eventually(lambda: _at_least(holders(nodes), K), timeout=20, interval=0.3)
        victims = held[: K - 1]
        # a node writes its contacts to its home within a second of a change; the victims
        # may have joined only a moment ago
        for victim in victims:
            await eventually(lambda victim=victim: victim.saved_contacts() >= K - 1, timeout=10)
        for victim in victims:
            await victim.kill()
        alive = [n for n in nodes if n not in victims]

        # the surviving holder notices the silent neighbours and copies the value onwards
        await eventually(lambda: _at_least(holders(alive), K), timeout=60, interval=0.5)

        async def readable(node: NodeProcess) -> bool:
            reply = await node.api("GET", "/dht/value/get/v1?key=survivor")
            return reply["result"].get("read") == "success" and reply["result"]["value"]["n"] == 1

        for node in alive:
            await eventually(lambda node=node: readable(node), timeout=20, interval=0.3)

        # a killed node restarted without any seed rejoins through the contacts in its home
        victim = victims[0]
        Settings.load(victim.home).set(DHT + "known-nodes", "")
        back = NodeProcess(self, victim.address, {}, home=victim.home)

        async def rejoined() -> bool:
            layer = await back.layer0()
            return layer is not None and layer["contacts"] >= K - 1

        await eventually(rejoined, timeout=20, interval=0.3)
        await eventually(lambda: readable(back), timeout=20, interval=0.3)


async def _at_least(found: Any, count: int) -> Any:
    result = await found
    return result if len(result) >= count else None
