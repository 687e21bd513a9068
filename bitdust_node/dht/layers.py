"""The DHT's layers: each has its own node id (kept in the home), routing table and value store."""

from __future__ import annotations

import functools
import os

import attrs

from bitdust_node.dht import store as store_rules
from bitdust_node.dht.errors import InvalidValue
from bitdust_node.dht.persist import DhtDatabase
from bitdust_node.dht.routing import RoutingTable
from bitdust_node.dht.store import DataStore, StoredValue, ValueRoom

KNOWN_LAYERS = tuple(range(10))


@attrs.define
class DhtConfig:
    k: int = 4
    alpha: int = 4
    max_value_bytes: int = store_rules.MAX_VALUE_BYTES
    # bytes of values held for others in all layers together
    max_stored_bytes: int = store_rules.MAX_STORED_BYTES
    maintenance_interval: float = 60.0
    refresh_interval: float = 3600.0
    republish_interval: float = 3600.0
    replicate_interval: float = 3600.0
    # far buckets with fewer than k contacts ask a neighbour for more this often: with k = 4 a region
    # known through one contact is lost with that contact
    sparse_fill_interval: float = 600.0
    # a full bucket pings its oldest contact only if silent this long
    ping_stale_after: float = 60.0
    # delay between noticing a vanished contact and the repair pass
    repair_delay: float = 5.0
    attached: frozenset[int] = frozenset({0})
    # lookups and fan-outs go on without a call unanswered for a few round trips (dht/patience.py);
    # False waits every call out to the RPC timeout, as before (benchmarks compare the two)
    short_timeout: bool = True


@attrs.define(eq=False)
class Layer:
    layer_id: int
    node_id: str
    table: RoutingTable
    store: DataStore
    attached: bool
    # values this node published, republished on schedule
    published: dict[str, StoredValue] = attrs.field(factory=dict)
    # for each key held in `store`, the ids of the k closest nodes it was last copied to (forgotten with the value)
    replicated_to: dict[str, frozenset[str]] = attrs.field(factory=dict)
    last_replicated: float = 0.0


def new_node_id() -> str:
    return os.urandom(20).hex()


class LayerSet:
    """The layers in use, by id. Unattached layers get a table and store only once someone talks to them."""

    def __init__(self, config: DhtConfig, db: DhtDatabase | None) -> None:
        self.config = config
        self.db = db
        # what the layers' stores hold for others, together
        self.room = ValueRoom(config.max_stored_bytes)
        self.by_id: dict[int, Layer] = {}
        self._ids: dict[int, str] = db.layer_ids() if db is not None else {}
        for layer_id in sorted(config.attached | {0}):
            self._make(layer_id)

    def node_id(self, layer_id: int) -> str:
        """This node's id in a layer, made and kept in the home on first use."""
        node_id = self._ids.get(layer_id)
        if node_id is None:
            node_id = self._ids[layer_id] = new_node_id()
            if self.db is not None:
                self.db.save_layer_id(layer_id, node_id)
        return node_id

    def _make(self, layer_id: int) -> Layer:
        node_id = self.node_id(layer_id)
        expired = functools.partial(self._expired, layer_id)
        layer = Layer(
            layer_id,
            node_id,
            RoutingTable(node_id, self.config.k),
            DataStore(self.config.max_value_bytes, room=self.room, on_expired=expired),
            layer_id in self.config.attached,
        )
        self.by_id[layer_id] = layer
        return layer

    def _expired(self, layer_id: int, keys: list[str]) -> None:
        """Values held for others that expired leave the home as they leave the memory, and so does the record of
        whom they were copied to."""
        replicated_to = self.by_id[layer_id].replicated_to
        for key in keys:
            replicated_to.pop(key, None)
        if self.db is not None:
            self.db.delete_values(layer_id, keys, mine=False)

    def get(self, layer_id: int) -> Layer:
        """The layer, made on first use for the ten BitDust layers; InvalidValue for others."""
        found = self.find(layer_id)
        if found is None:
            raise InvalidValue(f"unknown DHT layer {layer_id}")
        return found

    def find(self, layer_id: int) -> Layer | None:
        """Like get, but None for a layer BitDust does not know."""
        found = self.by_id.get(layer_id)
        if found is None and layer_id in KNOWN_LAYERS:
            found = self._make(layer_id)
        return found

    def attach(self, layer_id: int) -> Layer:
        layer = self.by_id.get(layer_id) or self._make(layer_id)
        layer.attached = True
        return layer

    def known(self) -> list[int]:
        return sorted(set(KNOWN_LAYERS) | set(self.by_id))

    def attached(self) -> list[Layer]:
        return [layer for layer in self.by_id.values() if layer.attached]

    def load(self, now: float) -> None:
        """Restore contacts and values saved by an earlier run."""
        if self.db is None:
            return
        for layer in self.by_id.values():
            for contact in self.db.contacts(layer.layer_id):
                layer.table.add(contact, now)
            # what expired while the node was off, or no longer fits the room, leaves the home too
            gone = [item.key for item in self.db.values(layer.layer_id, mine=False)
                    if item.expires_at <= now or not layer.store.restore(item)]
            if gone:
                self.db.delete_values(layer.layer_id, gone, mine=False)
            for item in self.db.values(layer.layer_id, mine=True):
                layer.published[item.key] = item

    def save_contacts(self) -> None:
        if self.db is None:
            return
        for layer in self.by_id.values():
            self.db.save_contacts(layer.layer_id, layer.table.contacts())

    def keep(self, layer: Layer, item: StoredValue) -> None:
        """Hold a value for others, in memory and in the home."""
        layer.store.put(item)
        if self.db is not None:
            self.db.save_value(layer.layer_id, item, mine=False)
