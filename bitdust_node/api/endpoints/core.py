"""Endpoints of the node itself: process, settings, services, state machines, network status."""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import defer

from bitdust_node.api.endpoints.network import nat_warning, outside_address
from bitdust_node.api.endpoints.proxy import proxy_status, service_fields
from bitdust_node.api.openapi import document
from bitdust_node.api.routes import ApiContext, ApiRequest, TextReply, endpoint
from bitdust_node.errors import InvalidInput
from bitdust_node.services.entangled_dht import EntangledDhtService

# how long a settings change waits for the services it switches to settle before replying
SETTLE_TIMEOUT = 20.0


@endpoint("GET", "/process/health/v1", "Is the node alive?", bare=True)
def process_health(api: ApiContext, req: ApiRequest) -> None:
    return None


@endpoint("POST", "/process/stop/v1", "Stop the node (services stop in reverse dependency order)")
def process_stop(api: ApiContext, req: ApiRequest) -> dict[str, Any]:
    api.request_stop()
    return {"stopping": True}


@endpoint("GET", "/process/info/v1", "Process facts: pid, home, REST address")
def process_info(api: ApiContext, req: ApiRequest) -> dict[str, Any]:
    return {"pid": os.getpid(), "home": str(api.ctx.home), "rest": api.rest_url()}


def _required(req: ApiRequest, name: str) -> str:
    value = req.body.get(name, req.args.get(name))
    if value is None or value == "":
        raise InvalidInput(f"missing parameter {name!r}")
    return value if isinstance(value, str) else str(value)


async def _settle(api: ApiContext) -> None:
    """Wait until the services a change switched have settled; a slow one reports its own state."""
    settled = api.graph.settled()
    settled.addTimeout(SETTLE_TIMEOUT, api.ctx.reactor)
    try:
        await settled
    except defer.TimeoutError:
        pass


@endpoint("GET", "/config/get/v1", "Read a setting (or every setting under a prefix)", params=("key",))
def config_get(api: ApiContext, req: ApiRequest) -> list[dict[str, Any]]:
    return api.ctx.settings.describe(_required(req, "key"))


@endpoint("POST", "/config/set/v1", "Change a setting; services react live", params=("key", "value"))
async def config_set(api: ApiContext, req: ApiRequest) -> list[dict[str, Any]]:
    key = _required(req, "key")
    if "value" not in req.body and "value" not in req.args:
        raise InvalidInput("missing parameter 'value'")
    raw = req.body.get("value", req.args.get("value"))
    api.ctx.settings.set(key, raw)
    await _settle(api)
    return api.ctx.settings.describe(key)


@endpoint("GET", "/config/list/v1", "Every setting with its type, default and value")
def config_list(api: ApiContext, req: ApiRequest) -> list[dict[str, Any]]:
    return [d.describe(v) for d, v in api.ctx.settings.items()]


def _service(api: ApiContext, name: str) -> dict[str, Any]:
    """A service as the graph describes it, with what its room reports while it is ON, and a warning when it
    plays a core role behind NAT."""
    described = api.graph.describe(name)
    described.update(service_fields(api, name))
    warning = nat_warning(api, name)
    if warning:
        described["warnings"] = [warning]
    return described


@endpoint("GET", "/service/list/v1", "Every service with its state and switch")
def service_list(api: ApiContext, req: ApiRequest) -> list[dict[str, Any]]:
    return [_service(api, name) for name in sorted(api.graph.managed)]


@endpoint("GET", "/service/info/v1", "One service", params=("name",))
def service_info(api: ApiContext, req: ApiRequest) -> dict[str, Any]:
    managed = api.graph.find(_required(req, "name"))
    return _service(api, managed.service.name)


async def _switch(api: ApiContext, req: ApiRequest, on: bool) -> dict[str, Any]:
    graph = api.graph
    managed = graph.find(_required(req, "name"))
    api.ctx.settings.set(managed.service.config_prefix() + "/enabled", on)
    await _settle(api)
    return _service(api, managed.service.name)


@endpoint("POST", "/service/start/v1", "Enable a service and start it", params=("name",))
async def service_start(api: ApiContext, req: ApiRequest) -> dict[str, Any]:
    return await _switch(api, req, True)


@endpoint("POST", "/service/stop/v1", "Disable a service and stop it with its dependents", params=("name",))
async def service_stop(api: ApiContext, req: ApiRequest) -> dict[str, Any]:
    return await _switch(api, req, False)


@endpoint("GET", "/automat/list/v1", "Every live state machine")
def automat_list(api: ApiContext, req: ApiRequest) -> list[dict[str, Any]]:
    return [entry.describe() for entry in api.ctx.registry.entries()]


@endpoint("GET", "/network/status/v1", "Addresses, identity and (with dht=1) DHT layers", params=("dht",))
def network_status(api: ApiContext, req: ApiRequest) -> dict[str, Any]:
    graph = api.graph
    network = graph.service("network")
    result: dict[str, Any] = {
        "network_state": graph.state("network"),
        "bind_address": api.ctx.bind_address,
    }
    if network is not None:
        result.update(network.status())
        result["external"] = outside_address(api)
    identity = api.ctx.identity.current
    if identity is not None:
        result["idurl"] = identity.idurl
        result["global_id"] = identity.global_id
    dht = api.graph.service("entangled_dht")
    if req.args.get("dht") in ("1", "true") and isinstance(dht, EntangledDhtService) and dht.dht is not None:
        result["dht"] = dht.dht.status()
    if identity is not None:
        result["identity_contacts"] = list(identity.identity.contacts)
        result["identity_revision"] = identity.identity.revision
    proxy = proxy_status(api)
    if proxy is not None:
        result["proxy"] = proxy
    return result


@endpoint("GET", "/metrics", "The node's figures in the Prometheus text format")
def metrics(api: ApiContext, req: ApiRequest) -> TextReply:
    # prometheus-client is loaded by the first scrape: a node nobody scrapes does not carry it
    from prometheus_client import CONTENT_TYPE_LATEST

    from bitdust_node.api.metrics import metrics_text

    return TextReply(metrics_text(api.graph), CONTENT_TYPE_LATEST.encode())


@endpoint("GET", "/openapi.json", "This document", raw=True)
def openapi(api: ApiContext, req: ApiRequest) -> dict[str, Any]:
    return document()
