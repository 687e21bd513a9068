"""REST endpoints of the DHT: read and write values by application key, find nodes."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from twisted.internet import defer

from bitdust_node.api.routes import ApiContext, ApiRequest, endpoint
from bitdust_node.dht.errors import DhtNotReady
from bitdust_node.dht.message import is_id
from bitdust_node.dht.node import DhtNode
from bitdust_node.dht.routing import Contact
from bitdust_node.dht.store import MAX_VALUE_BYTES, dump_value, parse_value
from bitdust_node.errors import InvalidInput
from bitdust_node.services.entangled_dht import EntangledDhtService
from bitdust_node.wire import peer_json

SERVICE = "service_entangled_dht"


def dht_key(key: str) -> str:
    """Application keys are hashed into the id space."""
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


def _dht(api: ApiContext) -> DhtNode:
    dht = api.running(EntangledDhtService).dht
    if dht is None:
        raise DhtNotReady("DHT is not running")
    return dht


def _key(source: dict[str, Any]) -> str:
    key = source.get("key")
    if not isinstance(key, str) or not key.strip():
        raise InvalidInput("key is required")
    return key


def _layer(source: dict[str, Any], dht: DhtNode) -> int:
    raw = source.get("layer_id", 0)
    try:
        layer_id = int(raw)
    except (TypeError, ValueError):
        raise InvalidInput("layer_id must be a number") from None
    dht.layer(layer_id)  # InvalidValue (400) for a layer that does not exist
    return layer_id


def _closest(contacts: list[Contact]) -> list[dict[str, str]]:
    return [{"address": f"{c.host}:{c.port}", "dht_id": c.node_id} for c in contacts]


@endpoint(
    "GET",
    "/dht/value/get/v1",
    "Read a value from the DHT",
    service=SERVICE,
    params=("key", "layer_id"),
)
@defer.inlineCallbacks
def value_get(api: ApiContext, req: ApiRequest) -> Any:
    dht = _dht(api)
    key = _key(req.args)
    layer_id = _layer(req.args, dht)
    found, result = yield dht.find_value(dht_key(key), layer_id)
    reply: dict[str, Any] = {"key": key, "my_dht_id": dht.layer_node_id(layer_id)}
    if found is not None:
        try:
            reply["value"] = peer_json.loads(found.value, MAX_VALUE_BYTES)
        except peer_json.PeerJsonError:  # what another node stored: shown as it is when it is not JSON
            reply["value"] = found.value
        reply["read"] = "success"
    else:
        reply["closest_nodes"] = _closest(result.closest)
        reply["read"] = "failed"
    return reply


def _value(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get("value")
    if isinstance(value, str):
        try:
            value = parse_value(value)
        except InvalidInput:
            raise InvalidInput("input value must be a json") from None
    if not isinstance(value, dict):
        raise InvalidInput("input value must be a json")
    value = dict(value)
    value.setdefault("key", key)
    value.setdefault("type", str(body.get("record_type") or "skip_validation"))
    return value


@endpoint(
    "POST",
    "/dht/value/set/v1",
    "Write a JSON object to the DHT",
    service=SERVICE,
    params=("key", "value", "expire", "record_type", "layer_id"),
)
@defer.inlineCallbacks
def value_set(api: ApiContext, req: ApiRequest) -> Any:
    dht = _dht(api)
    body = req.body or {}
    key = _key(body)
    layer_id = _layer(body, dht)
    value = _value(body, key)
    expire = body.get("expire") or 43200
    if not isinstance(expire, int) or isinstance(expire, bool):
        raise InvalidInput("expire must be a number of seconds")
    stored, result = yield dht.set_value(dht_key(key), dump_value(value), layer_id, expire)
    held_here = dht.holds(dht_key(key), layer_id)
    return {
        "closest_nodes": _closest(result.closest),
        "key": key,
        "my_dht_id": dht.layer_node_id(layer_id),
        "value": value,
        "write": "success" if stored or held_here else "failed",
    }


@endpoint(
    "GET",
    "/dht/node/find/v1",
    "Find the DHT nodes closest to an id (random if none)",
    service=SERVICE,
    params=("node_id", "layer_id"),
)
@defer.inlineCallbacks
def node_find(api: ApiContext, req: ApiRequest) -> Any:
    dht = _dht(api)
    layer_id = _layer(req.args, dht)
    target = req.args.get("node_id") or os.urandom(20).hex()
    if not is_id(target):
        raise InvalidInput("node_id must be 40 hex characters")
    result = yield dht.find_node(target, layer_id)
    return {
        "closest_nodes": _closest(result.closest),
        "lookup": target,
        "my_dht_id": dht.layer_node_id(layer_id),
    }


@endpoint(
    "GET",
    "/dht/user/random/v1",
    "IDURLs of random nodes of a DHT layer",
    service=SERVICE,
    params=("layer_id", "count"),
)
@defer.inlineCallbacks
def user_random(api: ApiContext, req: ApiRequest) -> Any:
    dht = _dht(api)
    layer_id = _layer(req.args, dht)
    try:
        count = int(req.args.get("count", 1))
    except ValueError:
        raise InvalidInput("count must be a number") from None
    if not 1 <= count <= 100:
        raise InvalidInput("count must be between 1 and 100")
    found = yield dht.random_values("idurl", layer_id, count)
    return found
