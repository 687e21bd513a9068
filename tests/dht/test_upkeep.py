"""Replication passes against a scripted node: what they copy, what they record, and that one runs at a time."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.dht.layers import DhtConfig, Layer, LayerSet
from bitdust_node.dht.lookup import LookupResult
from bitdust_node.dht.message import Response
from bitdust_node.dht.routing import Contact
from bitdust_node.dht.store import StoredValue, dump_value
from bitdust_node.dht.upkeep import Upkeep

A, B, C = "a" * 40, "b" * 40, "c" * 40
PEERS = [Contact(f"{n:040x}", "10.0.0.9", 14441 + n) for n in (1, 2)]


class ReplicationHost:
    """What a replication pass uses of its node: lookups the test answers when it likes, stores that succeed."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.config = DhtConfig()
        self.layer_set = LayerSet(self.config, None)
        self.lookups: list[tuple[str, defer.Deferred[LookupResult]]] = []
        self.stores: list[tuple[str, str]] = []

    def find_node(self, key: str, layer_id: int = 0) -> defer.Deferred[LookupResult]:
        d: defer.Deferred[LookupResult] = defer.Deferred()
        self.lookups.append((key, d))
        return d

    def store_at(self, layer: Layer, contact: Contact, item: StoredValue) -> defer.Deferred[Response]:
        self.stores.append((item.key, contact.node_id))
        return defer.succeed(Response("9" * 40, contact.node_id, "OK", layer.layer_id))

    def answer(self, index: int) -> None:
        key, d = self.lookups[index]
        d.callback(LookupResult(key, PEERS))


class ReplicationTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.host = ReplicationHost()
        self.layer = self.host.layer_set.get(0)
        self.upkeep = Upkeep(self.host)  # type: ignore[arg-type]

    def hold(self, key: str, expire: int = 600) -> None:
        now = self.host.clock.seconds()
        self.layer.store.put(StoredValue(key, dump_value({"type": "t"}), "f" * 40, now, expire))

    def test_a_value_that_expires_during_a_pass_is_neither_copied_nor_recorded(self) -> None:
        for key, expire in ((A, 600), (B, 120), (C, 600)):
            self.hold(key, expire)
        done: list[Any] = []
        self.upkeep.repair().addBoth(done.append)
        self.host.answer(0)
        self.host.clock.advance(130)  # B expires while the pass looks it up
        self.host.answer(1)
        self.host.answer(2)
        self.assertEqual([key for key, _d in self.host.lookups], [A, B, C])
        self.assertEqual([key for key, _peer in self.host.stores], [A, A, C, C])
        self.assertEqual(set(self.layer.replicated_to), {A, C})
        self.assertEqual(len(done), 1)
