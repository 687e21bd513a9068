"""What the DHT's helpers (answers, join, upkeep, status) may use of the node that holds them."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet import defer

from bitdust_node.dht.layers import DhtConfig, Layer, LayerSet
from bitdust_node.dht.lookup import LookupResult
from bitdust_node.dht.message import Response
from bitdust_node.dht.patience import Patience
from bitdust_node.dht.protocol import Address, DhtProtocol
from bitdust_node.dht.routing import Contact
from bitdust_node.dht.store import StoredValue
from bitdust_node.net.clock import TimeSource


class DhtHost(Protocol):
    protocol: DhtProtocol
    clock: TimeSource
    config: DhtConfig
    rng: random.Random
    layer_set: LayerSet
    advertised: dict[str, Any]
    udp_port: int
    join_state: Callable[[], dict[str, str]] | None

    def call(self, layer: Layer, contact: Contact, method: str, args: list[Any]) -> defer.Deferred[Response]: ...

    def patience(self) -> Patience | None: ...

    def ping(self, layer: Layer, contact: Contact) -> defer.Deferred[Response]: ...

    def store_at(self, layer: Layer, contact: Contact, item: StoredValue) -> defer.Deferred[Response]: ...

    def find_node(self, key: str, layer_id: int = 0) -> defer.Deferred[LookupResult]: ...

    def lookup(
        self, layer_id: int, key: str, find_value: bool, answered: list[tuple[Contact, Any]]
    ) -> defer.Deferred[LookupResult]: ...

    def publish(self, layer: Layer, item: StoredValue) -> defer.Deferred[Any]: ...

    def save_contacts(self) -> None: ...

    def fill_sparse_buckets(self, below: int = 1) -> defer.Deferred[Any]: ...

    def contacts_lost(self, layer_id: int) -> None: ...

    def contacts_gained(self) -> None: ...


__all__ = ["Address", "DhtHost"]
