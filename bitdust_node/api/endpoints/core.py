"""Endpoints of the node itself: process, settings, services, state machines, network status."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from bitdust_node.api.openapi import document
from bitdust_node.api.routes import ApiRequest, endpoint
from bitdust_node.errors import InvalidInput

if TYPE_CHECKING:
    from bitdust_node.node import Node

# how long a settings change waits for the services it switches to settle before replying
SETTLE_TIMEOUT = 20.0


def _graph(node: Node) -> Any:
    assert node.graph is not None
    return node.graph


@endpoint("GET", "/process/health/v1", "Is the node alive?", bare=True)
def process_health(node: Node, req: ApiRequest) -> None:
    return None


@endpoint("POST", "/process/stop/v1", "Stop the node (services stop in reverse dependency order)")
def process_stop(node: Node, req: ApiRequest) -> dict[str, Any]:
    node.request_stop()
    return {"stopping": True}


@endpoint("GET", "/process/info/v1", "Process facts: pid, home, REST address")
def process_info(node: Node, req: ApiRequest) -> dict[str, Any]:
    return {"pid": os.getpid(), "home": str(node.home), "rest": node.rest_url()}


def _required(req: ApiRequest, name: str) -> str:
    value = req.body.get(name, req.args.get(name))
    if value is None or value == "":
        raise InvalidInput(f"missing parameter {name!r}")
    return value if isinstance(value, str) else str(value)


async def _settle(node: Node) -> None:
    """Wait until the services a change switched have settled; a slow one reports its own state."""
    settled = _graph(node).settled()
    settled.addTimeout(SETTLE_TIMEOUT, node.reactor)
    try:
        await settled
    except defer.TimeoutError:
        pass


@endpoint("GET", "/config/get/v1", "Read a setting (or every setting under a prefix)", params=("key",))
def config_get(node: Node, req: ApiRequest) -> list[dict[str, Any]]:
    return node.settings.describe(_required(req, "key"))


@endpoint("POST", "/config/set/v1", "Change a setting; services react live", params=("key", "value"))
async def config_set(node: Node, req: ApiRequest) -> list[dict[str, Any]]:
    key = _required(req, "key")
    if "value" not in req.body and "value" not in req.args:
        raise InvalidInput("missing parameter 'value'")
    raw = req.body.get("value", req.args.get("value"))
    node.settings.set(key, raw)
    await _settle(node)
    return node.settings.describe(key)


@endpoint("GET", "/config/list/v1", "Every setting with its type, default and value")
def config_list(node: Node, req: ApiRequest) -> list[dict[str, Any]]:
    return [d.describe(v) for d, v in node.settings.items()]


@endpoint("GET", "/service/list/v1", "Every service with its state and switch")
def service_list(node: Node, req: ApiRequest) -> list[dict[str, Any]]:
    graph = _graph(node)
    return [graph.describe(name) for name in sorted(graph.managed)]


@endpoint("GET", "/service/info/v1", "One service", params=("name",))
def service_info(node: Node, req: ApiRequest) -> dict[str, Any]:
    graph = _graph(node)
    managed = graph.find(_required(req, "name"))
    return graph.describe(managed.service.name)


async def _switch(node: Node, req: ApiRequest, on: bool) -> dict[str, Any]:
    graph = _graph(node)
    managed = graph.find(_required(req, "name"))
    node.settings.set(managed.service.config_prefix() + "/enabled", on)
    await _settle(node)
    return graph.describe(managed.service.name)


@endpoint("POST", "/service/start/v1", "Enable a service and start it", params=("name",))
async def service_start(node: Node, req: ApiRequest) -> dict[str, Any]:
    return await _switch(node, req, True)


@endpoint("POST", "/service/stop/v1", "Disable a service and stop it with its dependents", params=("name",))
async def service_stop(node: Node, req: ApiRequest) -> dict[str, Any]:
    return await _switch(node, req, False)


@endpoint("GET", "/automat/list/v1", "Every live state machine")
def automat_list(node: Node, req: ApiRequest) -> list[dict[str, Any]]:
    return [entry.describe() for entry in node.registry.entries()]


@endpoint("GET", "/network/status/v1", "Addresses, identity and (with dht=1) DHT layers", params=("dht",))
def network_status(node: Node, req: ApiRequest) -> dict[str, Any]:
    graph = _graph(node)
    network = graph.service("network")
    result: dict[str, Any] = {
        "network_state": graph.state("network"),
        "bind_address": node.bind_address,
    }
    if network is not None:
        result.update(network.status())
    identity = node.my_identity
    if identity is not None:
        result["idurl"] = identity.idurl
        result["global_id"] = identity.global_id
    if req.args.get("dht") in ("1", "true") and node.dht is not None:
        result["dht"] = node.dht.status()
    return result


@endpoint("GET", "/openapi.json", "This document", raw=True)
def openapi(node: Node, req: ApiRequest) -> dict[str, Any]:
    return document()
