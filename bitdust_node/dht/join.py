"""Joining the DHT through seeds, and filling the far buckets so lookups from anywhere converge."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from bitdust_node.dht.host import DhtHost
from bitdust_node.dht.layers import Layer
from bitdust_node.dht.lookup import parse_contacts
from bitdust_node.dht.message import Response
from bitdust_node.dht.protocol import Address
from bitdust_node.dht.routing import Contact, id_int
from bitdust_node.dht.settle import answered, settle


@defer.inlineCallbacks
def join(host: DhtHost, seeds: list[Address]) -> Any:
    """Ask each seed for our own id on every attached layer; fires with how many answered."""
    asked = [(address, layer) for address in seeds for layer in host.layer_set.attached()]
    # a dead seed (or a dead contact saved by an earlier run) costs the stall time, not the RPC timeout
    replies = yield settle(
        [
            host.protocol.call(address, layer.node_id, "findNode", [layer.node_id], layer.layer_id)
            for address, layer in asked
        ],
        host.patience(),
    )
    answers: dict[int, list[tuple[Contact, Any]]] = {}
    for (address, layer), response in answered(asked, replies):
        contact = Contact(response.sender_id, address[0], address[1])
        answers.setdefault(layer.layer_id, []).append((contact, response.payload))
    if answers:
        # the seeds' answers are the first step of the lookup of our own id
        yield defer.DeferredList(
            [
                host.lookup(layer_id, host.layer_set.node_id(layer_id), False, found)
                for layer_id, found in answers.items()
            ],
            consumeErrors=True,
        )
        # the node can look up and store now; its far buckets fill meanwhile, one call each
        fill_sparse_buckets(host)
    return sum(len(found) for found in answers.values())


def fill_sparse_buckets(host: DhtHost, below: int = 1) -> defer.Deferred[Any]:
    """Ask, for each far bucket with fewer than `below` contacts (the empty ones by default), the
    nearest known contact for nodes in its range: a fresh node learns every region (and the asked
    node learns it), so that lookups from anywhere converge. Without this, about 1 get in 100
    missed at 256 nodes and k=4; upkeep asks again for buckets short of k (see upkeep.py)."""
    probes = []
    for layer in host.layer_set.attached():
        own = id_int(layer.node_id)
        for bucket in layer.table.buckets:
            if not bucket.covers(own) and len(bucket.contacts) < below:
                probes.append(_probe(host, layer, bucket.random_id(host.rng)))
    return defer.DeferredList(probes, consumeErrors=True)


def _probe(host: DhtHost, layer: Layer, target: str) -> defer.Deferred[None]:
    nearest = layer.table.closest(target, 1)
    if not nearest:
        return defer.succeed(None)

    def learn(response: Response) -> None:
        for contact in parse_contacts(response.payload) or []:
            layer.table.learn(contact)

    return host.call(layer, nearest[0], "findNode", [target]).addCallback(learn)
