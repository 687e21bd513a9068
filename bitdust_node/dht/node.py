"""The DHT node: layers (own id, routing table, store each), the RPC methods it answers,
iterative lookups, set/get of values, joining through seeds, and upkeep (expiry, bucket
refresh, republish, re-replication)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from twisted.internet import defer

from bitdust_node.dht import store as store_rules
from bitdust_node.dht.clock import TimeSource
from bitdust_node.dht.errors import DhtError, InvalidValue
from bitdust_node.dht.lookup import Lookup, LookupResult, parse_contacts
from bitdust_node.dht.message import ErrorReply, Message, Request, Response, is_id
from bitdust_node.dht.persist import DhtDatabase
from bitdust_node.dht.protocol import Address, DhtProtocol
from bitdust_node.dht.routing import Contact, RoutingTable, distance, id_int
from bitdust_node.dht.status import node_status
from bitdust_node.dht.store import DataStore, StoredValue
from bitdust_node.dht.upkeep import Upkeep

KNOWN_LAYERS = tuple(range(10))
# random ids for bucket refreshes need no secrecy; one generator serves every node
_RNG = random.Random()
# above this many values, newcomers are not offered values one by one
OFFER_LIMIT = 1000


@attrs.define
class DhtConfig:
    k: int = 4
    alpha: int = 4
    max_value_bytes: int = store_rules.MAX_VALUE_BYTES
    maintenance_interval: float = 60.0
    refresh_interval: float = 3600.0
    republish_interval: float = 3600.0
    replicate_interval: float = 3600.0
    # a full bucket pings its oldest contact only if silent this long
    ping_stale_after: float = 60.0
    # delay between noticing a vanished contact and the repair pass
    repair_delay: float = 5.0
    attached: frozenset[int] = frozenset({0})


@attrs.define(eq=False)
class Layer:
    layer_id: int
    node_id: str
    table: RoutingTable
    store: DataStore
    attached: bool
    # values this node published, republished on schedule
    published: dict[str, StoredValue] = attrs.field(factory=dict)
    # for each stored key, the ids of the k closest nodes it was last copied to
    replicated_to: dict[str, frozenset[str]] = attrs.field(factory=dict)
    last_replicated: float = 0.0


def new_node_id() -> str:
    return os.urandom(20).hex()


class DhtNode:
    def __init__(
        self,
        protocol: DhtProtocol,
        clock: TimeSource,
        config: DhtConfig | None = None,
        db: DhtDatabase | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.protocol = protocol
        self.clock = clock
        self.config = config or DhtConfig()
        self.db = db
        self.rng = rng or _RNG
        self.advertised: dict[str, Any] = {}
        self.udp_port: int = 0
        self.layers: dict[int, Layer] = {}
        self.upkeep = Upkeep(self)
        # called when the base layer's last contact went silent (the bootstrap rejoins)
        self.on_lonely: Callable[[], object] | None = None
        protocol.handler = self
        self._layer_ids: dict[int, str] = db.layer_ids() if db is not None else {}
        # unattached layers get their table and store only once someone talks to them
        for layer_id in sorted(self.config.attached | {0}):
            self._make_layer(layer_id)

    # -- layers and persistence

    def layer_node_id(self, layer_id: int) -> str:
        node_id = self._layer_ids.get(layer_id)
        if node_id is None:
            node_id = self._layer_ids[layer_id] = new_node_id()
            if self.db is not None:
                self.db.save_layer_id(layer_id, node_id)
        return node_id

    def _make_layer(self, layer_id: int) -> Layer:
        node_id = self.layer_node_id(layer_id)
        layer = Layer(
            layer_id,
            node_id,
            RoutingTable(node_id, self.config.k),
            DataStore(self.config.max_value_bytes),
            layer_id in self.config.attached,
        )
        self.layers[layer_id] = layer
        return layer

    def known_layers(self) -> list[int]:
        return sorted(set(KNOWN_LAYERS) | set(self.layers))

    def layer(self, layer_id: int) -> Layer:
        """The layer, made on first use for the ten BitDust layers; InvalidValue for others."""
        found = self.layers.get(layer_id)
        if found is not None:
            return found
        if layer_id not in KNOWN_LAYERS:
            raise InvalidValue(f"unknown DHT layer {layer_id}")
        return self._make_layer(layer_id)

    @property
    def node_id(self) -> str:
        return self.layers[0].node_id

    def attach(self, layer_id: int) -> Layer:
        layer = self.layers.get(layer_id) or self._make_layer(layer_id)
        layer.attached = True
        return layer

    def load(self) -> None:
        """Restore contacts and values saved by an earlier run."""
        if self.db is None:
            return
        now = self.clock.seconds()
        for layer in self.layers.values():
            for contact in self.db.contacts(layer.layer_id):
                layer.table.add(contact, now)
            for item in self.db.values(layer.layer_id, mine=False):
                if item.expires_at > now:
                    layer.store.restore(item)
            for item in self.db.values(layer.layer_id, mine=True):
                layer.published[item.key] = item

    def save_contacts(self) -> None:
        if self.db is None:
            return
        for layer in self.layers.values():
            self.db.save_contacts(layer.layer_id, layer.table.contacts())

    def start(self) -> None:
        self.load()
        self.upkeep.start()

    def stop(self) -> None:
        self.upkeep.stop()
        self.save_contacts()
        self.protocol.cancel_all()

    # -- answering requests (RequestHandler)

    def handle_request(self, request: Request, address: Address) -> Message:
        layer = self.layers.get(request.layer)
        if layer is None and request.layer in KNOWN_LAYERS:
            layer = self._make_layer(request.layer)
        if layer is None:
            return ErrorReply(
                request.msg_id,
                self.node_id,
                "builtins.KeyError",
                f"Invalid layer: {request.layer}",
                request.layer,
            )
        if not request.question:
            self._seen(layer, Contact(request.sender_id, address[0], address[1]))
        method = _RPC_METHODS.get(request.method)
        if method is None:
            return ErrorReply(
                request.msg_id,
                layer.node_id,
                "builtins.AttributeError",
                f"Invalid method: {request.method}",
                request.layer,
            )
        try:
            payload = method(self, layer, request)
        except DhtError as exc:
            return ErrorReply(
                request.msg_id,
                layer.node_id,
                "builtins.ValueError",
                exc.message,
                request.layer,
            )
        return Response(request.msg_id, layer.node_id, payload, request.layer)

    def response_seen(self, response: Response, address: Address) -> None:
        layer = self.layers.get(response.layer)
        if layer is not None:
            self._seen(layer, Contact(response.sender_id, address[0], address[1]))

    def rpc_failed(self, node_id: str | None, address: Address, layer_id: int) -> None:
        layer = self.layers.get(layer_id)
        if layer is None or node_id is None:
            return
        if layer.table.remove(node_id):
            self.upkeep.schedule_repair()
            self.upkeep.contacts_changed()
            if layer_id == 0 and not len(layer.table) and self.on_lonely is not None:
                self.on_lonely()

    def _seen(self, layer: Layer, contact: Contact) -> None:
        is_new = layer.table.get(contact.node_id) is None
        oldest = layer.table.add(contact, self.clock.seconds())
        if oldest is not None:
            # a full bucket keeps its oldest contact only if it still answers; one heard
            # from lately surely does, so it is not pinged
            if self.clock.seconds() - oldest.last_seen >= self.config.ping_stale_after:
                self.ping(layer, oldest).addErrback(lambda _f: None)
        elif is_new and layer.table.get(contact.node_id) is not None:
            self._offer_values(layer, contact)
            self.upkeep.contacts_changed()

    def ping(self, layer: Layer, contact: Contact) -> defer.Deferred[Response]:
        return self._call(layer, contact, "ping", [])

    def _offer_values(self, layer: Layer, newcomer: Contact) -> None:
        """Copy stored values to a new contact that is among the k closest to their keys."""
        if len(layer.store) > OFFER_LIMIT:
            return  # a big store is left to the periodic replication
        for item in layer.store:
            closest = layer.table.closest(item.key, self.config.k)
            near = any(c.node_id == newcomer.node_id for c in closest)
            if near and self._am_close(layer, item.key, closest):
                self.store_at(layer, newcomer, item).addErrback(lambda _f: None)

    def _am_close(self, layer: Layer, key: str, closest: list[Contact]) -> bool:
        if len(closest) < self.config.k:
            return True
        return distance(layer.node_id, key) <= distance(closest[-1].node_id, key)

    # -- RPC methods

    def rpc_ping(self, layer: Layer, request: Request) -> Any:
        return "pong"

    def rpc_find_node(self, layer: Layer, request: Request) -> Any:
        key = _key_arg(request)
        closest = layer.table.closest(key, self.config.k, exclude=request.sender_id)
        return [c.to_triple(layer.layer_id) for c in closest]

    def rpc_find_value(self, layer: Layer, request: Request) -> Any:
        key = _key_arg(request)
        item = layer.store.get(key, self.clock.seconds())
        if item is not None:
            return item.reply()
        return self.rpc_find_node(layer, request)

    def rpc_store(self, layer: Layer, request: Request) -> Any:
        args = request.args
        if len(args) < 2 or not is_id(args[0]) or not isinstance(args[1], str):
            raise InvalidValue("store needs a key and a string value")
        publisher = args[2] if len(args) > 2 and is_id(args[2]) else request.sender_id
        age = args[3] if len(args) > 3 and isinstance(args[3], int) and args[3] >= 0 else 0
        expire = args[4] if len(args) > 4 and isinstance(args[4], int) else store_rules.MAX_EXPIRE
        now = self.clock.seconds()
        item = StoredValue(
            args[0],
            args[1],
            publisher,
            now - age,
            store_rules.clamp_expire(expire),
            now,
        )
        if item.expires_at <= now:
            raise InvalidValue("value already expired")
        self._keep(layer, item)
        return "OK"

    def rpc_request(self, layer: Layer, request: Request) -> Any:
        key = request.args[0] if request.args else None
        if not isinstance(key, str):
            raise InvalidValue("request needs a key")
        # a node advertises itself only in the layers it is attached to
        value = self.advertised.get(key) if layer.attached else None
        # some values (idurl) appear later in the node's life
        return {key: value() if callable(value) else value, 0: 0}

    def _keep(self, layer: Layer, item: StoredValue) -> None:
        layer.store.put(item)
        if self.db is not None:
            self.db.save_value(layer.layer_id, item, mine=False)

    # -- outgoing RPCs and lookups

    def _call(self, layer: Layer, contact: Contact, method: str, args: list[Any]) -> defer.Deferred[Response]:
        return self.protocol.call(
            contact.address,
            layer.node_id,
            method,
            args,
            layer.layer_id,
            question=not layer.attached,
            node_id=contact.node_id,
        )

    def _lookup(
        self,
        layer_id: int,
        key: str,
        find_value: bool,
        answered: Sequence[tuple[Contact, Any]] = (),
    ) -> defer.Deferred[LookupResult]:
        layer = self.layer(layer_id)
        if not answered and not len(layer.table) and layer_id != 0 and len(self.layers[0].table):
            # nobody known in this layer yet: ask base-layer contacts for an entry
            d = self._enter_layer(layer, key)
            d.addCallback(lambda found: self._run_lookup(layer, key, find_value, found))
            return d
        return self._run_lookup(layer, key, find_value, answered)

    @defer.inlineCallbacks
    def _enter_layer(self, layer: Layer, key: str) -> Any:
        entry = self.layers[0].table.contacts()[: self.config.alpha]
        replies = yield defer.DeferredList(
            [self._call(layer, Contact(c.node_id, c.host, c.port), "findNode", [key]) for c in entry],
            consumeErrors=True,
        )
        found = []
        for contact, (ok, response) in zip(entry, replies, strict=True):
            if ok:
                found.append((Contact(response.sender_id, contact.host, contact.port), response.payload))
        return found

    def _run_lookup(
        self, layer: Layer, key: str, find_value: bool, answered: Sequence[tuple[Contact, Any]]
    ) -> defer.Deferred[LookupResult]:
        seeds = layer.table.closest(key, self.config.k * 2)

        def call(contact: Contact, method: str, lookup_key: str) -> defer.Deferred[Response]:
            return self._call(layer, contact, method, [lookup_key])

        return Lookup(
            key,
            layer.node_id,
            seeds,
            call,
            self.config.k,
            self.config.alpha,
            find_value,
            learn=layer.table.learn,
        ).run(answered)

    def find_node(self, key: str, layer_id: int = 0) -> defer.Deferred[LookupResult]:
        return self._lookup(layer_id, key, find_value=False)

    @defer.inlineCallbacks
    def find_value(self, key: str, layer_id: int = 0) -> Any:
        """Fires with (StoredValue or None, LookupResult); the local store answers first."""
        layer = self.layer(layer_id)
        local = layer.store.get(key, self.clock.seconds())
        if local is not None:
            return local, LookupResult(key, [])
        result = yield self._lookup(layer_id, key, find_value=True)
        reply = result.value_reply
        if reply is None or not isinstance(reply.get(key), str):
            return None, result
        expire = reply.get("expireSeconds")
        published = reply.get("originallyPublished")
        found = StoredValue(
            key,
            reply[key],
            "",
            float(published) if isinstance(published, (int, float)) else self.clock.seconds(),
            expire if isinstance(expire, int) else store_rules.MAX_EXPIRE,
        )
        return found, result

    @defer.inlineCallbacks
    def set_value(
        self,
        key: str,
        value: str,
        layer_id: int = 0,
        expire: int = store_rules.MAX_EXPIRE,
    ) -> Any:
        """Publish a value; fires with (contacts that stored it, LookupResult)."""
        layer = self.layer(layer_id)
        now = self.clock.seconds()
        item = StoredValue(key, value, layer.node_id, now, store_rules.clamp_expire(expire), now)
        layer.store.check(key, value)
        layer.published[key] = item
        if self.db is not None:
            self.db.save_value(layer_id, item, mine=True)
        stored, result = yield self.publish(layer, item)
        return stored, result

    @defer.inlineCallbacks
    def publish(self, layer: Layer, item: StoredValue) -> Any:
        result = yield self.find_node(item.key, layer.layer_id)
        if self._am_close(layer, item.key, result.closest):
            self._keep(layer, item)
        replies = yield defer.DeferredList([self.store_at(layer, c, item) for c in result.closest], consumeErrors=True)
        stored = [c for c, (ok, _r) in zip(result.closest, replies, strict=True) if ok]
        layer.replicated_to[item.key] = frozenset(c.node_id for c in stored)
        return stored, result

    def store_at(self, layer: Layer, contact: Contact, item: StoredValue) -> defer.Deferred[Response]:
        age = max(0, int(self.clock.seconds() - item.originally_published))
        args = [item.key, item.value, item.publisher_id, age, item.expire_seconds]
        return self._call(layer, contact, "store", args)

    def request(self, contact: Contact, key: str, layer_id: int = 0) -> defer.Deferred[Any]:
        """Ask a node for its advertised value of `key` (e.g. idurl, stun_port)."""
        d = self._call(self.layer(layer_id), contact, "request", [key])
        d.addCallback(lambda r: r.payload.get(key) if isinstance(r.payload, dict) else None)
        return d

    @defer.inlineCallbacks
    def random_values(self, key: str, layer_id: int = 0, count: int = 1) -> Any:
        """Advertised values (`idurl`...) of up to `count` nodes found around a random id of
        the layer: how a role (proxy router, supplier) is looked up."""
        result = yield self.find_node(new_node_id(), layer_id)
        asked = [self.request(c, key, layer_id) for c in result.closest]
        replies = yield defer.DeferredList(asked, consumeErrors=True)
        found = [value for ok, value in replies if ok and value]
        return found[:count]

    # -- joining

    @defer.inlineCallbacks
    def join(self, seeds: list[Address]) -> Any:
        """Ask each seed for our own id on every attached layer; fires with how many answered."""
        asked = [(address, layer) for address in seeds for layer in self.layers.values() if layer.attached]
        replies = yield defer.DeferredList(
            [
                self.protocol.call(address, layer.node_id, "findNode", [layer.node_id], layer.layer_id)
                for address, layer in asked
            ],
            consumeErrors=True,
        )
        answers: dict[int, list[tuple[Contact, Any]]] = {}
        for (address, layer), (ok, response) in zip(asked, replies, strict=True):
            if ok:
                contact = Contact(response.sender_id, address[0], address[1])
                answers.setdefault(layer.layer_id, []).append((contact, response.payload))
        if answers:
            # the seeds' answers are the first step of the lookup of our own id
            yield defer.DeferredList(
                [
                    self._lookup(layer_id, self.layers[layer_id].node_id, False, found)
                    for layer_id, found in answers.items()
                ],
                consumeErrors=True,
            )
            yield self.fill_sparse_buckets()
        return sum(len(found) for found in answers.values())

    def fill_sparse_buckets(self) -> defer.Deferred[Any]:
        """Ask, for each empty far bucket, the nearest known contact for nodes in its range:
        a fresh node learns every region (and the asked node learns it), so that lookups from
        anywhere converge. Without this, about 1 get in 100 missed at 256 nodes and k=4."""
        probes = []
        for layer in self.layers.values():
            if not layer.attached:
                continue
            own = id_int(layer.node_id)
            for bucket in layer.table.buckets:
                if not bucket.covers(own) and not bucket.contacts:
                    probes.append(self._probe(layer, bucket.random_id(self.rng)))
        return defer.DeferredList(probes, consumeErrors=True)

    def _probe(self, layer: Layer, target: str) -> defer.Deferred[None]:
        nearest = layer.table.closest(target, 1)
        if not nearest:
            return defer.succeed(None)

        def learn(response: Response) -> None:
            for contact in parse_contacts(response.payload) or []:
                layer.table.learn(contact)

        return self._call(layer, nearest[0], "findNode", [target]).addCallback(learn)

    def refresh_all(self) -> defer.Deferred[Any]:
        lookups = [self.find_node(layer.node_id, layer.layer_id) for layer in self.layers.values() if layer.attached]
        return defer.DeferredList(lookups, consumeErrors=True)

    def saved_addresses(self) -> list[Address]:
        """Addresses of the base layer's contacts (restored from the home on start)."""
        return [c.address for c in self.layers[0].table.contacts()]

    def contact_count(self, layer_id: int = 0) -> int:
        return len(self.layer(layer_id).table)

    def status(self) -> dict[str, Any]:
        return node_status(self)


def _key_arg(request: Request) -> str:
    if not request.args or not is_id(request.args[0]):
        raise InvalidValue("expected a 40-char hex key")
    key: str = request.args[0]
    return key


_RPC_METHODS = {
    "ping": DhtNode.rpc_ping,
    "findNode": DhtNode.rpc_find_node,
    "findValue": DhtNode.rpc_find_value,
    "store": DhtNode.rpc_store,
    "request": DhtNode.rpc_request,
}
