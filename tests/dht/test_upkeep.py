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

    def fill_sparse_buckets(self, below: int = 1) -> defer.Deferred[Any]:
        return defer.succeed(None)

    def save_contacts(self) -> None:
        pass

    def answer(self, index: int) -> None:
        key, d = self.lookups[index]
        d.callback(LookupResult(key, PEERS))


class ReplicationTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.host = ReplicationHost()
        self.layer = self.host.layer_set.get(0)
        self.upkeep = Upkeep(self.host)  # type: ignore[arg-type]

    def hold(self, key: str, expire: int = 43200) -> None:
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

    def looked_up(self) -> list[str]:
        return [key for key, _d in self.host.lookups]

    def test_one_pass_runs_at_a_time_and_at_most_one_more_waits(self) -> None:
        for key in (A, B):
            self.hold(key)
        for _ in range(6):  # contacts lost every few seconds, each asking for a repair
            self.upkeep.repair()
        self.assertEqual(self.looked_up(), [A])
        self.host.clock.advance(self.host.config.replicate_interval)
        self.upkeep.tick()  # the hourly pass is due, but one runs
        self.assertEqual(self.looked_up(), [A])
        self.host.answer(0)
        self.host.answer(1)
        # the first pass is over: the one asked meanwhile follows it
        self.assertEqual(self.looked_up(), [A, B, A])
        self.host.answer(2)
        self.host.answer(3)
        self.assertEqual(self.looked_up(), [A, B, A, B])  # none was asked during the second
        self.upkeep.repair()
        self.assertEqual(self.looked_up(), [A, B, A, B, A])

    def test_no_pass_follows_one_running_when_the_node_stops(self) -> None:
        self.hold(A)
        self.upkeep.repair()
        self.upkeep.repair()
        self.upkeep.stop()
        self.host.lookups[0][1].errback(RuntimeError("DHT stopped"))
        self.assertEqual(self.looked_up(), [A])
        self.upkeep.repair()  # the pass that failed is over
        self.assertEqual(self.looked_up(), [A, A])
