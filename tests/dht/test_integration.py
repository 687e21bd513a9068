"""The setup guide on one machine: real nodes on loopback UDP, driven through the CLI and REST."""

from __future__ import annotations

import json
from typing import Any

from twisted.trial import unittest

from bitdust_node.node import Node
from tests.support.nodes import api, eventually, run_cli, start_node

DHT = "services/entangled-dht/"
FAST = {DHT + "rpc-timeout": 1}


async def contacts(node: Node) -> int:
    code, reply = await api(node, "GET", "/network/status/v1?dht=1")
    assert code == 200, reply
    layer0 = reply["result"]["dht"]["layers"][0]
    assert layer0["layer_id"] == 0
    return int(layer0["contacts"])


async def all_contacts(nodes: list[Node]) -> list[int]:
    return [await contacts(n) for n in nodes]


class GuideTests(unittest.TestCase):
    timeout = 120

    async def test_genesis_join_values_restart(self) -> None:
        genesis = await start_node(self, "127.0.0.2", {DHT + "known-nodes": "genesis", **FAST})
        self.assertEqual(await contacts(genesis), 0)
        code, reply = await api(genesis, "GET", "/network/status/v1?dht=1")
        dht = reply["result"]["dht"]
        self.assertEqual(dht["udp_port"], 14441)
        self.assertEqual({layer["layer_id"] for layer in dht["layers"]}, set(range(10)))

        seed = {DHT + "known-nodes": "127.0.0.2:14441", **FAST}
        second = await start_node(self, "127.0.0.3", seed)
        await eventually(lambda: _equal(all_contacts([genesis, second]), [1, 1]))
        others = [await start_node(self, f"127.0.0.{i}", seed) for i in (4, 5)]
        nodes = [genesis, second, *others]
        await eventually(lambda: _equal(all_contacts(nodes), [3, 3, 3, 3]), timeout=20)

        # a user writes through the CLI on one node and reads everywhere
        written = await run_cli(second.home, "dht", "set", "guide_key", '{"hello": "world"}')
        self.assertEqual(written.code, 0, written.err)
        self.assertIn("write success", written.out)
        for node in nodes:
            read = await run_cli(node.home, "dht", "get", "guide_key")
            self.assertEqual(read.code, 0, read.err)
            self.assertEqual(
                json.loads(read.out),
                {"hello": "world", "key": "guide_key", "type": "skip_validation"},
            )
            code, reply = await api(node, "GET", "/dht/value/get/v1?key=guide_key")
            self.assertEqual(reply["result"]["read"], "success")

        missing = await run_cli(genesis.home, "dht", "get", "no_such_key")
        self.assertEqual(missing.code, 1)
        self.assertIn("not found", missing.out)
        bad = await run_cli(genesis.home, "dht", "set", "k", "not json")
        self.assertEqual(bad.code, 2)
        code, reply = await api(genesis, "POST", "/dht/value/set/v1", {"key": "k", "value": [1]})
        self.assertEqual((code, reply["errors"]), (400, ["input value must be a json"]))
        code, reply = await api(
            genesis, "POST", "/dht/value/set/v1",
            {"key": "guide_key", "value": {"hello": 1, "type": "other"}},
        )
        self.assertEqual(code, 409, reply)
        found = await run_cli(second.home, "dht", "find")
        self.assertEqual(found.code, 0, found.err)
        self.assertEqual(found.out.count("127.0.0."), 3)

        # a restarted node keeps its contacts and values without any seed
        home = second.home
        await second.stopService()
        second.settings.set(DHT + "known-nodes", "")
        again = await start_node(self, "127.0.0.3", home=home)
        self.assertEqual(await contacts(again), 3)
        code, reply = await api(again, "GET", "/network/status/v1?dht=1")
        self.assertEqual(reply["result"]["dht"]["layers"][0]["data_store_items"], 1)
        code, reply = await api(again, "GET", "/dht/value/get/v1?key=guide_key")
        self.assertEqual(reply["result"]["value"]["hello"], "world")


async def _equal(got: Any, expected: list[int]) -> bool:
    return bool(await got == expected)
