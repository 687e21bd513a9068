"""DHT nodes on the in-memory network: RPC answers, joins, values, repair, bad input."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.trial import unittest

from bitdust_node.dht import datagram, message
from bitdust_node.dht.errors import RevisionLower, TypeChanged, ValueTooLarge
from bitdust_node.dht.message import RPC_METHODS, ErrorReply, Request, Response
from bitdust_node.dht.node import DhtConfig
from bitdust_node.dht.routing import Contact
from bitdust_node.dht.store import dump_value
from tests.dht.grid import Grid


def key_of(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


class RpcTests(unittest.TestCase):
    def setUp(self) -> None:
        self.grid = Grid()
        self.node = self.grid.add()
        self.node.advertised["stun_port"] = 8882
        self.replies: list[tuple[bytes, object]] = []
        self.probe = self.grid.net.listen(("10.9.9.9", 14449), _Recorder(self.replies))

    def ask(self, req: Request) -> message.Message:
        for part in datagram.split(req.msg_id, message.encode(req)):
            self.probe.write(part, ("10.0.0.1", 14441))
        self.grid.net.run(1)
        header, body = datagram.unpack(self.replies[-1][0])
        self.assertEqual(header.rpc_id, req.msg_id)
        return message.decode(body)

    def test_ping_each_layer(self) -> None:
        for layer in (0, 2):
            reply = self.ask(Request("1" * 40, "d" * 40, "ping", [], layer))
            assert isinstance(reply, Response)
            self.assertEqual((reply.payload, reply.layer), ("pong", layer))
            self.assertEqual(reply.sender_id, self.node.layers[layer].node_id)

    def test_unknown_method_error(self) -> None:
        reply = self.ask(Request("2" * 40, "d" * 40, "noSuchMethod", []))
        self.assertEqual(
            reply,
            ErrorReply(
                "2" * 40,
                self.node.node_id,
                "builtins.AttributeError",
                "Invalid method: noSuchMethod",
                0,
            ),
        )

    def test_an_unknown_method_s_long_name_is_echoed_cut(self) -> None:
        reply = self.ask(Request("2" * 40, "d" * 40, "x" * 7000, []))
        assert isinstance(reply, ErrorReply)
        self.assertEqual(reply.text, "Invalid method: " + "x" * 64)

    def test_the_methods_counted_by_name_are_those_a_node_answers(self) -> None:
        self.assertEqual(set(self.node.answers._methods), RPC_METHODS)

    def test_request_answers_advertised(self) -> None:
        reply = self.ask(Request("3" * 40, "d" * 40, "request", ["stun_port"]))
        assert isinstance(reply, Response)
        self.assertEqual(message.encode(reply)[-32:], b"d9:stun_porti8882ei0ei0eei5ei0ee")

    def test_question_does_not_add_sender(self) -> None:
        self.ask(Request("4" * 40, "d" * 40, "findNode", ["d" * 40], 9, question=True))
        self.assertEqual(self.node.contact_count(9), 0)
        self.ask(Request("5" * 40, "d" * 40, "findNode", ["d" * 40], 9))
        self.assertEqual(self.node.contact_count(9), 1)

    def test_store_rules(self) -> None:
        key = key_of("k")
        value = dump_value({"type": "t", "revision": 2})

        def store(v: str, expire: int = 3600) -> Any:
            return self.ask(
                Request(
                    f"{len(self.replies):040x}",
                    "d" * 40,
                    "store",
                    [key, v, "d" * 40, 0, expire],
                )
            )

        self.assertEqual(store(value).payload, "OK")
        for bad, text in [
            (dump_value({"type": "other", "revision": 3}), "type"),
            (dump_value({"type": "t", "revision": 1}), "revision"),
            ("not json", "JSON"),
            (dump_value({"type": "t", "revision": 5, "pad": "x" * 20000}), "bytes"),
        ]:
            with self.subTest(text=text):
                reply = store(bad)
                assert isinstance(reply, ErrorReply)
                self.assertIn(text, reply.text)
        self.assertEqual(store(dump_value({"type": "t", "revision": 2, "n": 1})).payload, "OK")  # type: ignore[union-attr]
        found = self.ask(Request("9" * 40, "d" * 40, "findValue", [key]))
        assert isinstance(found, Response)
        self.assertEqual(json.loads(found.payload[key])["n"], 1)
        self.assertEqual(found.payload["expireSeconds"], 3600)
        self.assertGreaterEqual(self.node.protocol.dropped["refused_store"], 4)

    def test_expiry(self) -> None:
        key = key_of("short")
        self.ask(
            Request(
                "7" * 40,
                "d" * 40,
                "store",
                [key, dump_value({"type": "t"}), "d" * 40, 0, 5],
            )
        )
        self.assertEqual(len(self.node.layers[0].store), 1)  # 5 s is raised to the 120 s floor
        self.grid.net.run(119)
        self.assertEqual(len(self.node.layers[0].store), 1)
        self.grid.net.run(61)
        self.assertEqual(len(self.node.layers[0].store), 0)

    def test_bad_input_dropped_counted_and_node_keeps_serving(self) -> None:
        junk = {
            "truncated_header": b"\x00\x00\x01",
            "bad_header": b"\x07" * 60,
            "bad_bencode": datagram.pack(datagram.Header(1, 0, "a" * 40), b"l" * 5000),
            "bad_message": datagram.pack(datagram.Header(1, 0, "a" * 40), b"li1ee"),
        }
        for raw in junk.values():
            self.probe.write(raw, ("10.0.0.1", 14441))
        huge = datagram.pack(datagram.Header(1, 0, "a" * 40), b"999999999:x")
        self.probe.write(huge, ("10.0.0.1", 14441))
        for i in range(300):
            self.probe.write(
                datagram.pack(datagram.Header(3, 0, f"{i:040x}"), b"x"),
                ("10.0.0.1", 14441),
            )
        events: list[dict[str, object]] = []
        self.node.protocol.log = Logger(observer=events.append)  # type: ignore[arg-type]
        self.grid.net.run(1)
        dropped = self.node.protocol.dropped
        for kind in junk:
            self.assertGreaterEqual(dropped[kind], 1, kind)
        self.assertEqual(dropped["bad_bencode"], 2)
        self.assertEqual(dropped["sender_pending_full"], 300 - 16)
        logged = [e["kind"] for e in events]
        self.assertEqual(sorted(logged), sorted(set(logged)))  # once per kind
        self.assertIn("sender_pending_full", logged)
        reply = self.ask(Request("8" * 40, "d" * 40, "ping", []))
        assert isinstance(reply, Response)
        self.assertEqual(reply.payload, "pong")


class _Recorder(DatagramProtocol):
    def __init__(self, into: list[tuple[bytes, object]]) -> None:
        self.into = into

    def datagramReceived(self, data: bytes, addr: object) -> None:
        self.into.append((data, addr))


class NetworkTests(unittest.TestCase):
    def setUp(self) -> None:
        self.grid = Grid(DhtConfig(repair_delay=5.0))

    def test_guide_joins(self) -> None:
        genesis = self.grid.add("10.0.0.2")
        self.assertEqual(genesis.contact_count(), 0)
        second = self.grid.add("10.0.0.3")
        self.assertEqual(self.grid.join(second, genesis), 1)
        self.assertEqual((genesis.contact_count(), second.contact_count()), (1, 1))
        for host in ("10.0.0.4", "10.0.0.5"):
            self.grid.join(self.grid.add(host), genesis)
        self.assertEqual([n.contact_count() for n in self.grid.nodes], [3, 3, 3, 3])

    def test_last_contact_gone_calls_on_lonely(self) -> None:
        genesis = self.grid.add()
        other = self.grid.add()
        self.grid.join(other, genesis)
        lonely: list[bool] = []
        other.on_lonely = lambda: lonely.append(True)
        self.grid.kill(genesis)
        self.grid.resolve(other.find_node(genesis.node_id))
        self.assertEqual((other.contact_count(), lonely), (0, [True]))

    def test_attached_layer_lookup_of_a_role(self) -> None:
        genesis = self.grid.add()
        routers = []
        for i in range(3):
            node = self.grid.add()
            node.attach(2)
            node.advertised["idurl"] = f"http://id.example/router{i}.xml"
            self.grid.join(node, genesis)
            routers.append(node)
        genesis.advertised["idurl"] = "http://id.example/genesis.xml"
        # an outsider, not attached to layer 2, knows nobody there yet
        outsider = self.grid.add()
        self.grid.join(outsider, genesis)
        self.assertEqual(outsider.contact_count(2), 0)
        found = self.grid.resolve(outsider.random_values("idurl", 2, count=3))
        self.assertEqual(sorted(found), [f"http://id.example/router{i}.xml" for i in range(3)])
        # the outsider asked with questions (type 3): no router added it to layer 2
        outsider_id = outsider.layer(2).node_id
        for router in routers:
            self.assertIsNone(router.layer(2).table.get(outsider_id))
        self.assertIsNotNone(routers[0].layer(2).table.get(routers[1].layer(2).node_id))

    def test_a_layer_is_entered_past_base_contacts_that_met_nobody_there(self) -> None:
        # k = 8: the outsider's buckets take all five base contacts (with k = 4 a full bucket could leave the
        # seed out, at random)
        grid = Grid(DhtConfig(alpha=2, k=8))
        genesis = grid.add()
        plain = [grid.add() for _ in range(4)]
        for node in plain:
            grid.join(node, genesis)
        # the member's id in layer 3 is as far from the seed's base id as an id can be: a lookup near it asks the
        # seed last of all base contacts, after the plain nodes that met nobody in layer 3 (random ids made this
        # order, and the test, a matter of luck)
        far = f"{int(genesis.node_id, 16) ^ ((1 << 160) - 1):040x}"
        member = grid.add()
        member.layer_set._ids[3] = far
        member.attach(3)
        grid.join(member, genesis)  # in layer 3 only the seed met it
        self.assertEqual([n.contact_count(3) for n in plain], [0] * len(plain))
        outsider = grid.add()
        for node in [*plain, genesis]:
            host, port = grid.address(node)
            outsider.layers[0].table.add(Contact(node.node_id, host, port), grid.clock.seconds())
        result = grid.resolve(outsider.find_node(far, 3))
        self.assertIn(far, [c.node_id for c in result.answered])

    def test_join_with_silent_seed(self) -> None:
        node = self.grid.add()
        result = self.grid.resolve(node.join([("10.99.0.1", 14441)]))
        self.assertEqual(result, 0)

    def _network(self, count: int) -> None:
        genesis = self.grid.add()
        for _ in range(count - 1):
            self.grid.join(self.grid.add(), genesis)
        for node in self.grid.nodes:
            self.grid.resolve(node.refresh_all())

    def test_value_survives_loss_of_k_minus_one_holders(self) -> None:
        self._network(12)
        key = key_of("survivor")
        value = dump_value({"type": "t", "key": "survivor"})
        stored, _ = self.grid.resolve(self.grid.nodes[0].set_value(key, value))  # type: ignore[misc]
        self.assertEqual(len(stored), 4)
        for node in self.grid.nodes:
            found, _ = self.grid.resolve(node.find_value(key))  # type: ignore[misc]
            self.assertEqual(found.value, value)
        holders = [n for n in self.grid.nodes if len(n.layers[0].store)]
        self.assertGreaterEqual(len(holders), 4)
        for node in holders[:3]:
            self.grid.kill(node)
        alive = [n for n in self.grid.nodes if n not in holders[:3]]
        # with nobody reading, the holders' neighbour pings notice the dead and repair
        self.grid.net.run(150)
        self.assertGreaterEqual(sum(1 for n in alive if len(n.layers[0].store)), 4)
        for node in alive:
            found, _ = self.grid.resolve(node.find_value(key))  # type: ignore[misc]
            self.assertEqual(found.value, value)

    def test_the_record_of_replicas_keeps_only_values_held(self) -> None:
        self._network(12)
        publisher = self.grid.nodes[0]
        keys = [key_of(f"brief {n}") for n in range(8)]
        for key in keys:
            self.grid.resolve(publisher.set_value(key, dump_value({"type": "t"}), expire=300))
        # every node replicates what it holds (the random ids decide who holds what: the publisher may hold none;
        # values copied during the passes are held without a record until their holder's next pass)
        self.grid.resolve(defer.DeferredList([node.upkeep.repair() for node in self.grid.nodes]))
        for node in self.grid.nodes:
            layer = node.layers[0]
            held = {key for key in keys if layer.store.get(key, self.grid.clock.seconds()) is not None}
            self.assertLessEqual(set(layer.replicated_to), held)
        self.assertTrue(any(node.layers[0].replicated_to for node in self.grid.nodes))
        # the values expire (republish is an hour away): their records go with them
        self.grid.net.run(400)
        for node in self.grid.nodes:
            self.assertEqual((len(node.layers[0].store), node.layers[0].replicated_to), (0, {}))

    def test_publisher_republishes(self) -> None:
        self._network(5)
        key = key_of("repub")
        publisher = self.grid.nodes[1]
        self.grid.resolve(publisher.set_value(key, dump_value({"type": "t"}), expire=300))
        self.grid.net.run(3700)
        self.assertTrue(any(len(n.layers[0].store) for n in self.grid.nodes))
        # the publisher refreshed its value; without republish the 300 s value would be gone
        found, _ = self.grid.resolve(self.grid.nodes[3].find_value(key))  # type: ignore[misc]
        self.assertIsNotNone(found)

    def test_stale_buckets_are_refreshed(self) -> None:
        self._network(5)

        def find_nodes() -> int:
            return sum(n.protocol.layer_stats(0).rpc_calls["findNode"] for n in self.grid.nodes)

        before = find_nodes()
        self.grid.net.run(3000)
        self.assertEqual(find_nodes(), before)  # nothing is stale within the hour
        self.grid.net.run(700)
        self.assertGreater(find_nodes(), before)

    def test_local_refusals(self) -> None:
        node = self.grid.add()
        key = key_of("x")
        self.grid.resolve(node.set_value(key, dump_value({"type": "a", "revision": 2})))
        for value, error in [
            (dump_value({"type": "b", "revision": 2}), TypeChanged),
            (dump_value({"type": "a", "revision": 1}), RevisionLower),
            (dump_value({"type": "a", "revision": 3, "x": "y" * 20000}), ValueTooLarge),
        ]:
            result = self.grid.resolve(node.set_value(key, value))
            assert isinstance(result, Failure)
            self.assertTrue(result.check(error))
