"""The setup guide on one machine: real nodes on loopback UDP, driven through the CLI and REST."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.trial import unittest

from bitdust_node.dht import datagram, message
from bitdust_node.dht.message import ErrorReply, Request
from bitdust_node.dht.store import dump_value
from bitdust_node.node import Node
from tests.dht.test_wire_vectors import VECTORS
from tests.support.nodes import api, eventually, run_cli, running_dht, start_node

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
            genesis,
            "POST",
            "/dht/value/set/v1",
            {"key": "guide_key", "value": {"hello": 1, "type": "other"}},
        )
        self.assertEqual(code, 409, reply)
        # the REST replies carry the fields of the captured BitDust replies
        shapes = [
            ("GET", "/dht/value/get/v1?key=guide_key", None, "A_dht_value_get.json"),
            ("GET", "/dht/value/get/v1?key=no_such_key", None, "A_dht_value_get_missing.json"),
            ("POST", "/dht/value/set/v1", {"key": "shape", "value": {"a": 1}}, "A_dht_value_set.json"),
            ("GET", "/dht/node/find/v1", None, "C_dht_node_find_random.json"),
            ("GET", "/network/status/v1?dht=1", None, "A_network_status_dht.json"),
        ]
        for method, path, body, vector in shapes:
            with self.subTest(path=path):
                code, reply = await api(genesis, method, path, body)
                captured = json.loads((VECTORS / "rest" / vector).read_text())["result"]
                if "dht" in captured:
                    reply["result"], captured = reply["result"]["dht"], captured["dht"]
                    self.assertEqual(set(reply["result"]["layers"][0]), set(captured["layers"][0]))
                    # one field more than official nodes: why the node is (not) joined
                    self.assertEqual(set(reply["result"]) - {"bootstrap"}, set(captured))
                    self.assertEqual(reply["result"]["bootstrap"], {"state": "READY", "reason": ""})
                else:
                    self.assertEqual(set(reply["result"]), set(captured))
                if "closest_nodes" in captured:
                    self.assertEqual(set(reply["result"]["closest_nodes"][0]), set(captured["closest_nodes"][0]))

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
        self.assertEqual(reply["result"]["dht"]["layers"][0]["data_store_items"], 2)  # guide_key, shape
        code, reply = await api(again, "GET", "/dht/value/get/v1?key=guide_key")
        self.assertEqual(reply["result"]["value"]["hello"], "world")


async def _equal(got: Any, expected: list[int]) -> bool:
    return bool(await got == expected)


class _Inbox(DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        self.received.append(data)


class BadInputTests(unittest.TestCase):
    timeout = 60

    async def test_junk_is_dropped_counted_and_node_keeps_serving(self) -> None:
        node = await start_node(self, "127.0.0.6", {DHT + "known-nodes": "genesis", **FAST})
        inbox = _Inbox()
        port = reactor.listenUDP(0, inbox, interface="127.0.0.6")
        self.addCleanup(port.stopListening)
        target = ("127.0.0.6", 14441)
        me = "d" * 40

        # a second socket: the flood below fills the first sender's share of pending parts
        other_inbox = _Inbox()
        other = reactor.listenUDP(0, other_inbox, interface="127.0.0.6")
        self.addCleanup(other.stopListening)

        def send(req: Request, via: Any = other) -> None:
            for part in datagram.split(req.msg_id, message.encode(req)):
                via.write(part, target)

        key = hashlib.sha1(b"bad-input").hexdigest()
        send(Request("1" * 40, me, "store", [key, dump_value({"type": "a", "revision": 2}), me, 0, 600]))
        junk = [
            os.urandom(300),
            b"\x00\x00\x01",
            datagram.pack(datagram.Header(1, 0, "a" * 40), b"l" * 4000 + b"e" * 4000),
            datagram.pack(datagram.Header(1, 0, "a" * 40), b"d1:a99999999:xe"),
        ]
        junk += [datagram.pack(datagram.Header(2, 0, f"{i:040x}"), b"x") for i in range(300)]
        for raw in junk:
            port.write(raw, target)
        dropped = running_dht(node).protocol.dropped
        # loopback may lose part of a burst; wait until the node has seen most of it
        await eventually(lambda: dropped["sender_pending_full"] >= 100)
        send(Request("2" * 40, me, "store", [key, dump_value({"type": "b", "revision": 3}), me, 0, 600]))
        send(Request("3" * 40, me, "store", [key, dump_value({"type": "a", "revision": 1}), me, 0, 600]))
        big = dump_value({"type": "a", "revision": 9, "pad": "x" * 30000})
        send(Request("4" * 40, me, "store", [key, big, me, 0, 600]))
        send(Request("5" * 40, me, "ping", []))

        def replies() -> dict[str, message.Message]:
            raws = inbox.received + other_inbox.received
            decoded = [message.decode(datagram.unpack(raw)[1]) for raw in raws]
            return {m.msg_id[0]: m for m in decoded}

        got = await eventually(lambda: len(replies()) >= 5 and replies())
        self.assertEqual(got["1"].payload, "OK")  # type: ignore[union-attr]
        self.assertEqual(got["5"].payload, "pong")  # type: ignore[union-attr]
        for refused in "234":
            self.assertIsInstance(got[refused], ErrorReply)
        self.assertGreaterEqual(dropped["bad_header"] + dropped["truncated_header"], 2)
        self.assertGreaterEqual(dropped["bad_bencode"], 2)
        self.assertGreaterEqual(dropped["sender_pending_full"], 100)
        self.assertEqual(dropped["refused_store"], 3)
        _code, reply = await api(node, "GET", "/dht/value/get/v1?key=bad-input")
        # the refused stores changed nothing
        self.assertEqual(reply["result"]["value"], {"type": "a", "revision": 2})

        # the STUN-like responder of udp_datagrams answers with the address it saw
        port.write(b"1s", ("127.0.0.6", 8882))
        expected = f"1m127.0.0.6:{port.getHost().port}".encode()
        await eventually(lambda: expected in inbox.received)
