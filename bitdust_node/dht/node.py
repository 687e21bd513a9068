"""The DHT node: what the rest of the program asks of the DHT (values, lookups, advertised roles),
built from its layers, its answers to others (answers.py), joining (join.py) and upkeep (upkeep.py)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet import defer

from bitdust_node.dht import join as joining
from bitdust_node.dht import store as store_rules
from bitdust_node.dht.answers import RpcAnswers, am_close
from bitdust_node.dht.layers import KNOWN_LAYERS, DhtConfig, Layer, LayerSet, new_node_id
from bitdust_node.dht.lookup import Lookup, LookupResult, parse_contacts
from bitdust_node.dht.message import Response
from bitdust_node.dht.patience import Patience
from bitdust_node.dht.persist import DhtDatabase
from bitdust_node.dht.protocol import Address, DhtProtocol
from bitdust_node.dht.routing import Contact
from bitdust_node.dht.settle import answered, settle
from bitdust_node.dht.status import node_status
from bitdust_node.dht.store import StoredValue
from bitdust_node.dht.upkeep import Upkeep
from bitdust_node.net.clock import TimeSource

# random ids for bucket refreshes need no secrecy; one generator serves every node
_RNG = random.Random()
# batches of alpha base-layer contacts asked for a way into another layer before a lookup there gives up
ENTRY_ROUNDS = 3

__all__ = ["KNOWN_LAYERS", "DhtConfig", "DhtNode", "Layer", "new_node_id"]


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
        self.layer_set = LayerSet(self.config, db)
        self.layers = self.layer_set.by_id
        self.upkeep = Upkeep(self)
        self.answers = RpcAnswers(self)
        # called when the base layer's last contact went silent (the bootstrap rejoins)
        self.on_lonely: Callable[[], object] | None = None
        # how joining goes ({"state", "reason"}), set by whoever drives the bootstrap
        self.join_state: Callable[[], dict[str, str]] | None = None
        protocol.handler = self.answers

    # -- layers

    @property
    def node_id(self) -> str:
        return self.layer_set.node_id(0)

    def layer_node_id(self, layer_id: int) -> str:
        return self.layer_set.node_id(layer_id)

    def layer(self, layer_id: int) -> Layer:
        """The layer, made on first use for the ten BitDust layers; InvalidValue for others."""
        return self.layer_set.get(layer_id)

    def known_layers(self) -> list[int]:
        return self.layer_set.known()

    def attach(self, layer_id: int) -> Layer:
        return self.layer_set.attach(layer_id)

    def join_layer(self, layer_id: int) -> defer.Deferred[LookupResult]:
        """Attach a layer and look up my own id in it, so that its members learn me (a router joins layer 2)."""
        layer = self.attach(layer_id)
        return self.find_node(layer.node_id, layer_id)

    def leave_layer(self, layer_id: int) -> None:
        """Stop answering as a member of a layer the settings do not attach (a router that stops routing)."""
        if layer_id != 0 and layer_id not in self.config.attached:
            self.layer(layer_id).attached = False

    def holds(self, key: str, layer_id: int = 0) -> bool:
        """Whether this node keeps an unexpired value of `key` for the others."""
        return self.layer(layer_id).store.get(key, self.clock.seconds()) is not None

    def contact_count(self, layer_id: int = 0) -> int:
        return len(self.layer(layer_id).table)

    def saved_addresses(self) -> list[Address]:
        """Addresses of the base layer's contacts (restored from the home on start)."""
        return [c.address for c in self.layers[0].table.contacts()]

    # -- life

    def load(self) -> None:
        self.layer_set.load(self.clock.seconds())

    def save_contacts(self) -> None:
        self.layer_set.save_contacts()

    def start(self) -> None:
        self.load()
        self.upkeep.start()

    def stop(self) -> None:
        self.upkeep.stop()
        self.save_contacts()
        self.protocol.cancel_all()

    def contacts_lost(self, layer_id: int) -> None:
        self.upkeep.schedule_repair()
        self.upkeep.contacts_changed()
        if layer_id == 0 and not len(self.layers[0].table) and self.on_lonely is not None:
            self.on_lonely()

    def contacts_gained(self) -> None:
        self.upkeep.contacts_changed()

    # -- outgoing RPCs

    def patience(self) -> Patience | None:
        """How lookups and fan-outs go on without stalled calls; None waits every call out (patience.py)."""
        return self.protocol.patience() if self.config.short_timeout else None

    def call(self, layer: Layer, contact: Contact, method: str, args: list[Any]) -> defer.Deferred[Response]:
        return self.protocol.call(
            contact.address,
            layer.node_id,
            method,
            args,
            layer.layer_id,
            question=not layer.attached,
            node_id=contact.node_id,
        )

    def ping(self, layer: Layer, contact: Contact) -> defer.Deferred[Response]:
        return self.call(layer, contact, "ping", [])

    def store_at(self, layer: Layer, contact: Contact, item: StoredValue) -> defer.Deferred[Response]:
        age = max(0, int(self.clock.seconds() - item.originally_published))
        args = [item.key, item.value, item.publisher_id, age, item.expire_seconds]
        return self.call(layer, contact, "store", args)

    def request(self, contact: Contact, key: str, layer_id: int = 0) -> defer.Deferred[Any]:
        """Ask a node for its advertised value of `key` (e.g. idurl, stun_port)."""
        d = self.call(self.layer(layer_id), contact, "request", [key])
        d.addCallback(lambda r: r.payload.get(key) if isinstance(r.payload, dict) else None)
        return d

    # -- lookups

    def lookup(
        self,
        layer_id: int,
        key: str,
        find_value: bool,
        answered: Sequence[tuple[Contact, Any]] = (),
        width: int = 0,
    ) -> defer.Deferred[LookupResult]:
        layer = self.layer(layer_id)
        if not answered and not len(layer.table) and layer_id != 0 and len(self.layers[0].table):
            # nobody known in this layer yet: ask base-layer contacts for an entry
            d = self._enter_layer(layer, key)
            d.addCallback(lambda found: self._run_lookup(layer, key, find_value, found, width))
            return d
        return self._run_lookup(layer, key, find_value, answered, width)

    @defer.inlineCallbacks
    def _enter_layer(self, layer: Layer, key: str) -> Any:
        """Base-layer contacts asked, nearest `key` first and alpha at a time, for the layer's nodes near `key`,
        until an answer names one (at most ENTRY_ROUNDS times): a node answers in every layer with whom it has
        met there, and the first asked may have met nobody (a seed that no supplier entered through)."""
        alpha = self.config.alpha
        contacts = self.layers[0].table.closest(key, alpha * ENTRY_ROUNDS)
        found: list[tuple[Contact, Any]] = []
        for start in range(0, len(contacts), alpha):
            entry = contacts[start:start + alpha]
            replies = yield settle(
                [self.call(layer, Contact(c.node_id, c.host, c.port), "findNode", [key]) for c in entry],
                self.patience(),
            )
            batch = [
                (Contact(response.sender_id, contact.host, contact.port), response.payload)
                for contact, response in answered(entry, replies)
            ]
            found.extend(batch)
            if any(c.node_id != layer.node_id for _who, payload in batch for c in parse_contacts(payload) or []):
                break
        return found

    def _run_lookup(
        self, layer: Layer, key: str, find_value: bool, answered: Sequence[tuple[Contact, Any]], width: int = 0,
    ) -> defer.Deferred[LookupResult]:
        # width: how many of the closest must have answered before the lookup ends (k unless widened)
        width = width or self.config.k
        seeds = layer.table.closest(key, width * 2)

        def call(contact: Contact, method: str, lookup_key: str) -> defer.Deferred[Response]:
            return self.call(layer, contact, method, [lookup_key])

        return Lookup(
            key,
            layer.node_id,
            seeds,
            call,
            width,
            self.config.alpha,
            find_value,
            learn=layer.table.learn,
            patience=self.patience(),
            clock=self.clock,
        ).run(answered)

    def find_node(self, key: str, layer_id: int = 0) -> defer.Deferred[LookupResult]:
        return self.lookup(layer_id, key, find_value=False)

    @defer.inlineCallbacks
    def find_value(self, key: str, layer_id: int = 0) -> Any:
        """Fires with (StoredValue or None, LookupResult); the local store answers first."""
        layer = self.layer(layer_id)
        local = layer.store.get(key, self.clock.seconds())
        if local is not None:
            return local, LookupResult(key, [])
        result = yield self.lookup(layer_id, key, find_value=True)
        if result.value_reply is None and (result.failed or result.stalled):
            # dead contacts crowd the nearest lists that others answer with and hide the holders:
            # a second pass that must hear from twice as many of the closest looks past them
            again = yield self.lookup(layer_id, key, find_value=True, width=2 * self.config.k)
            again.rpcs += result.rpcs
            result = again
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

    # -- publishing

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
        layer.store.check(key, value, now)
        layer.published[key] = item
        if self.db is not None:
            self.db.save_value(layer_id, item, mine=True)
        stored, result = yield self.publish(layer, item)
        return stored, result

    @defer.inlineCallbacks
    def publish(self, layer: Layer, item: StoredValue) -> Any:
        result = yield self.find_node(item.key, layer.layer_id)
        if am_close(self, layer, item.key, result.closest):
            self.layer_set.keep(layer, item)
        stores = [self.store_at(layer, c, item) for c in result.closest]
        for contact, store in zip(result.closest, stores, strict=True):
            store.addCallback(_held_by, layer, item.key, contact)
        # a holder that died since the lookup costs the stall time; its store goes on in the background
        outcomes = yield settle(stores, self.patience())
        stored = [c for c, _reply in answered(result.closest, outcomes)]
        if layer.store.get(item.key, self.clock.seconds()) is not None:
            # only what this node holds is replicated from it, so only that is recorded
            layer.replicated_to[item.key] = frozenset(c.node_id for c in stored)
        return stored, result

    def random_values(self, key: str, layer_id: int = 0, count: int = 1) -> defer.Deferred[list[Any]]:
        """Advertised values (`idurl`...) of up to `count` nodes found around a random id of
        the layer: how a role (proxy router, supplier) is looked up."""
        d = self.random_advertised(key, layer_id, count)
        d.addCallback(lambda found: [value for _contact, value in found][:count])
        return d

    @defer.inlineCallbacks
    def random_advertised(self, key: str, layer_id: int = 0, count: int = 0) -> Any:
        """(contact, advertised value) of the nodes found around a random id of the layer that
        answered `request(key)` with a value (`stun_port`: how a node finds STUN servers). Up to
        `count` (at least k) of the nodes the lookup heard from are asked, nearest first: in a small
        layer the k closest may all be taken already, or not play the role at all."""
        result = yield self.find_node(new_node_id(), layer_id)
        wanted = result.answered[: max(count, self.config.k)] or result.closest
        # those that have not answered within the stall time are left out
        replies = yield settle([self.request(c, key, layer_id) for c in wanted], self.patience())
        return [(c, value) for c, value in answered(wanted, replies) if value]

    # -- joining

    def join(self, seeds: list[Address]) -> defer.Deferred[int]:
        """Ask each seed for our own id on every attached layer; fires with how many answered."""
        return joining.join(self, seeds)

    def fill_sparse_buckets(self, below: int = 1) -> defer.Deferred[Any]:
        return joining.fill_sparse_buckets(self, below)

    def refresh_all(self) -> defer.Deferred[Any]:
        lookups = [self.find_node(layer.node_id, layer.layer_id) for layer in self.layer_set.attached()]
        return defer.DeferredList(lookups, consumeErrors=True)

    def status(self) -> dict[str, Any]:
        return node_status(self)


def _held_by(response: Response, layer: Layer, key: str, contact: Contact) -> Response:
    """A store acknowledged, maybe after publish returned: the holder joins the record of who has the value."""
    held = layer.replicated_to.get(key)
    if held is not None:
        layer.replicated_to[key] = held | {contact.node_id}
    return response
