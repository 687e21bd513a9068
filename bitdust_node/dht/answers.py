"""The DHT's answers to others: the five RPC methods, and what a node learns from the traffic it sees
(new contacts, values offered to newcomers, contacts that stopped answering)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bitdust_node.dht import store as store_rules
from bitdust_node.dht.errors import DhtError, InvalidValue
from bitdust_node.dht.host import DhtHost
from bitdust_node.dht.layers import Layer
from bitdust_node.dht.message import ErrorReply, Message, Request, Response, is_id
from bitdust_node.dht.protocol import Address
from bitdust_node.dht.routing import Contact, distance
from bitdust_node.dht.store import StoredValue

# above this many values, newcomers are not offered values one by one
OFFER_LIMIT = 1000
# an unknown method's name is echoed in the error at most this long (official names are under 20)
MAX_ECHOED_METHOD = 64


def am_close(host: DhtHost, layer: Layer, key: str, closest: list[Contact]) -> bool:
    """Whether this node is among the k nodes closest to `key`, given the closest it knows."""
    if len(closest) < host.config.k:
        return True
    return distance(layer.node_id, key) <= distance(closest[-1].node_id, key)


class RpcAnswers:
    """The DhtProtocol's RequestHandler."""

    def __init__(self, host: DhtHost) -> None:
        self.host = host
        self._methods: dict[str, Callable[[Layer, Request], Any]] = {
            "ping": self.rpc_ping,
            "findNode": self.rpc_find_node,
            "findValue": self.rpc_find_value,
            "store": self.rpc_store,
            "request": self.rpc_request,
        }

    def handle_request(self, request: Request, address: Address) -> Message:
        layer = self.host.layer_set.find(request.layer)
        if layer is None:
            return ErrorReply(
                request.msg_id,
                self.host.layer_set.node_id(0),
                "builtins.KeyError",
                f"Invalid layer: {request.layer}",
                request.layer,
            )
        if not request.question:
            self.seen(layer, Contact(request.sender_id, address[0], address[1]))
        method = self._methods.get(request.method)
        if method is None:
            # the name is echoed as official nodes do, cut: a spoofed datagram is not reflected at its own size
            return ErrorReply(
                request.msg_id, layer.node_id, "builtins.AttributeError",
                f"Invalid method: {request.method[:MAX_ECHOED_METHOD]}", request.layer,
            )
        try:
            payload = method(layer, request)
        except DhtError as exc:
            return ErrorReply(request.msg_id, layer.node_id, "builtins.ValueError", exc.message, request.layer)
        return Response(request.msg_id, layer.node_id, payload, request.layer)

    def response_seen(self, response: Response, address: Address) -> None:
        layer = self.host.layer_set.by_id.get(response.layer)
        if layer is not None:
            self.seen(layer, Contact(response.sender_id, address[0], address[1]))

    def rpc_failed(self, node_id: str | None, address: Address, layer_id: int) -> None:
        layer = self.host.layer_set.by_id.get(layer_id)
        if layer is None or node_id is None:
            return
        if layer.table.remove(node_id):
            self.host.contacts_lost(layer_id)

    def seen(self, layer: Layer, contact: Contact) -> None:
        host = self.host
        is_new = layer.table.get(contact.node_id) is None
        oldest = layer.table.add(contact, host.clock.seconds())
        if oldest is not None:
            # a full bucket keeps its oldest contact only if it still answers; one heard
            # from lately surely does, so it is not pinged
            if host.clock.seconds() - oldest.last_seen >= host.config.ping_stale_after:
                host.ping(layer, oldest).addErrback(lambda _f: None)
        elif is_new and layer.table.get(contact.node_id) is not None:
            self._offer_values(layer, contact)
            host.contacts_gained()

    def _offer_values(self, layer: Layer, newcomer: Contact) -> None:
        """Copy stored values to a new contact that is among the k closest to their keys."""
        if len(layer.store) > OFFER_LIMIT:
            return  # a big store is left to the periodic replication
        for item in layer.store:
            closest = layer.table.closest(item.key, self.host.config.k)
            near = any(c.node_id == newcomer.node_id for c in closest)
            if near and am_close(self.host, layer, item.key, closest):
                self.host.store_at(layer, newcomer, item).addErrback(lambda _f: None)

    # -- the RPC methods

    def rpc_ping(self, layer: Layer, request: Request) -> Any:
        return "pong"

    def rpc_find_node(self, layer: Layer, request: Request) -> Any:
        key = _key_arg(request)
        closest = layer.table.closest(key, self.host.config.k, exclude=request.sender_id)
        return [c.to_triple(layer.layer_id) for c in closest]

    def rpc_find_value(self, layer: Layer, request: Request) -> Any:
        key = _key_arg(request)
        item = layer.store.get(key, self.host.clock.seconds())
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
        now = self.host.clock.seconds()
        item = StoredValue(args[0], args[1], publisher, now - age, store_rules.clamp_expire(expire), now)
        if item.expires_at <= now:
            raise InvalidValue("value already expired")
        self.host.layer_set.keep(layer, item)
        return "OK"

    def rpc_request(self, layer: Layer, request: Request) -> Any:
        key = request.args[0] if request.args else None
        if not isinstance(key, str):
            raise InvalidValue("request needs a key")
        # a node advertises itself only in the layers it is attached to
        value = self.host.advertised.get(key) if layer.attached else None
        # some values (idurl) appear later in the node's life
        return {key: value() if callable(value) else value, 0: 0}


def _key_arg(request: Request) -> str:
    if not request.args or not is_id(request.args[0]):
        raise InvalidValue("expected a 40-char hex key")
    key: str = request.args[0]
    return key
