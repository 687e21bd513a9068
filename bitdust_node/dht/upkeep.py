"""Upkeep of a DHT node on its clock: value expiry, refresh of stale buckets, republish by the
publisher, pings of the neighbours of held keys, and repair (re-replication) when one vanished."""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure

from bitdust_node.dht.host import DhtHost
from bitdust_node.dht.layers import Layer
from bitdust_node.dht.routing import Contact
from bitdust_node.dht.store import StoredValue
from bitdust_node.net.clock import DelayedCall

# seconds between a change of contacts and its write to the home
SAVE_DELAY = 1.0


class Upkeep:
    log = Logger()

    def __init__(self, node: DhtHost) -> None:
        self.node = node
        self._loop: task.LoopingCall | None = None
        self._repair_call: DelayedCall | None = None
        # layer id -> its replication pass running; the layers in _pass_again get one more pass after it
        self._passes: dict[int, defer.Deferred[Any]] = {}
        self._pass_again: set[int] = set()
        self._save_call: DelayedCall | None = None
        self._last_sparse_fill = 0.0

    def start(self) -> None:
        self._loop = task.LoopingCall(self.tick)
        self._loop.clock = self.node.clock  # type: ignore[assignment]
        self._loop.start(self.node.config.maintenance_interval, now=False)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        # the passes running end as their calls fail; none follows them
        self._pass_again.clear()
        for call in (self._repair_call, self._save_call):
            if call is not None and call.active():
                call.cancel()

    def contacts_changed(self) -> None:
        """Write the contacts to the home soon (at most once a second): a node killed right
        after joining still rejoins from its home."""
        if self.node.layer_set.db is None:
            return
        if self._save_call is None or not self._save_call.active():
            self._save_call = self.node.clock.callLater(SAVE_DELAY, self.node.save_contacts)

    def tick(self) -> defer.Deferred[Any]:
        now = self.node.clock.seconds()
        work: list[defer.Deferred[Any]] = []
        for layer in self.node.layer_set.by_id.values():
            # the store tells the layer set, which deletes them from the home
            layer.store.expire(now)
            if not layer.attached:
                continue
            work.extend(self._refresh(layer, now))
            work.extend(self._check_neighbours(layer))
            work.extend(self._republish(layer, now))
            if now - layer.last_replicated >= self.node.config.replicate_interval:
                work.append(self.replicate(layer))
        if now - self._last_sparse_fill >= self.node.config.sparse_fill_interval:
            self._last_sparse_fill = now
            # a far region known through fewer than k contacts is lost with them (30 % gone: 1 get in 20)
            work.append(self.node.fill_sparse_buckets(below=self.node.config.k))
        self.node.save_contacts()
        return defer.DeferredList(work, consumeErrors=True)

    def _refresh(self, layer: Layer, now: float) -> list[defer.Deferred[Any]]:
        if not len(layer.table):
            return []
        stale = layer.table.stale_buckets(now, self.node.config.refresh_interval)
        return [self.node.find_node(b.random_id(self.node.rng), layer.layer_id) for b in stale]

    def _check_neighbours(self, layer: Layer) -> list[defer.Deferred[Any]]:
        """Ping the contacts nearest to each held key: a silent one leaves the table, which
        schedules a repair (see rpc_failed)."""
        nearest: dict[str, Contact] = {}
        for item in layer.store:
            for contact in layer.table.closest(item.key, self.node.config.k):
                nearest[contact.node_id] = contact
        return [self.node.ping(layer, c).addErrback(lambda _f: None) for c in nearest.values()]

    def _republish(self, layer: Layer, now: float) -> list[defer.Deferred[Any]]:
        work = []
        for key, item in list(layer.published.items()):
            if now - item.last_published < self.node.config.republish_interval:
                continue
            fresh = attrs.evolve(item, originally_published=now, last_published=now)
            layer.published[key] = fresh
            if self.node.layer_set.db is not None:
                self.node.layer_set.db.save_value(layer.layer_id, fresh, mine=True)
            work.append(self.node.publish(layer, fresh))
        return work

    def schedule_repair(self) -> None:
        if self._repair_call is None or not self._repair_call.active():
            self._repair_call = self.node.clock.callLater(self.node.config.repair_delay, self.repair)

    def repair(self) -> defer.Deferred[Any]:
        return defer.DeferredList(
            [self.replicate(layer) for layer in self.node.layer_set.by_id.values() if layer.attached],
            consumeErrors=True,
        )

    def replicate(self, layer: Layer) -> defer.Deferred[Any]:
        """Start a replication pass of `layer`; if one runs, have one more follow it (at most one waits) and fire at
        once. A pass makes a lookup per held value, and a repair is asked every few seconds while contacts go."""
        if layer.layer_id in self._passes:
            self._pass_again.add(layer.layer_id)
            return defer.succeed(None)
        running = self._passes[layer.layer_id] = self._replicate(layer)
        running.addBoth(self._pass_over, layer)
        return running

    def _pass_over(self, result: Any, layer: Layer) -> Any:
        del self._passes[layer.layer_id]
        if layer.layer_id in self._pass_again:
            self._pass_again.discard(layer.layer_id)
            self.replicate(layer).addErrback(self._pass_failed, layer)
        return result

    def _pass_failed(self, failure: Failure, layer: Layer) -> None:
        self.log.failure("DHT replication pass of layer {layer} failed", failure, layer=layer.layer_id)

    @defer.inlineCallbacks
    def _replicate(self, layer: Layer) -> Any:
        """Copy each held value to those of the k closest nodes that did not get it yet."""
        layer.last_replicated = self.node.clock.seconds()
        for key in layer.store.keys():
            if self._held(layer, key) is None:
                continue  # expired since the pass began: no lookup for it
            result = yield self.node.find_node(key, layer.layer_id)
            # the value may have expired or been replaced during the lookup: copy what is held now, if anything
            item = self._held(layer, key)
            if item is None:
                continue
            closest = frozenset(c.node_id for c in result.closest)
            if closest == layer.replicated_to.get(item.key):
                continue
            targets = [c for c in result.closest if c.node_id not in layer.replicated_to.get(item.key, frozenset())]
            replies = yield defer.DeferredList(
                [self.node.store_at(layer, c, item) for c in targets], consumeErrors=True
            )
            if self._held(layer, key) is None:
                continue  # expired while the stores were out: its record went with it
            done = {c.node_id for c, (ok, _r) in zip(targets, replies, strict=True) if ok}
            before = layer.replicated_to.get(item.key, frozenset()) & closest
            layer.replicated_to[item.key] = frozenset(before | done)

    def _held(self, layer: Layer, key: str) -> StoredValue | None:
        return layer.store.get(key, self.node.clock.seconds())
