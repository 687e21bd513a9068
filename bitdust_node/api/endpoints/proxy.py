"""REST of routing: is this node connected (directly or through its router), and the proxy part of its status."""

from __future__ import annotations

from typing import Any

from twisted.internet import task

from bitdust_node.api.params import number
from bitdust_node.api.routes import ApiContext, ApiRequest, endpoint
from bitdust_node.errors import ServiceOff
from bitdust_node.services.proxy_server import ProxyServerService
from bitdust_node.services.proxy_transport import ProxyTransportService

CONNECTED_SERVICES = ("network", "gateway", "p2p_hookups", "proxy_transport")
POLL = 0.1


def proxy_status(api: ApiContext) -> dict[str, Any] | None:
    """The router's routes, or the routed user's session with its router; None when neither runs."""
    for cls in (ProxyServerService, ProxyTransportService):
        found = api.graph.service(cls.name)
        if isinstance(found, cls):
            return found.status()
    return None


def _not_connected(api: ApiContext) -> str | None:
    """Why this node cannot talk to peers yet, or None when it can."""
    for name in CONNECTED_SERVICES[:3]:
        if api.graph.state(name) != "ON":
            return f"service_{name} is {api.graph.state(name)}"
    if api.graph.enabled("proxy_transport"):
        service = api.graph.service("proxy_transport")
        client = service.client if isinstance(service, ProxyTransportService) else None
        if client is None or not client.listening:
            state = client.state if client is not None else api.graph.state("proxy_transport")
            return f"proxy_receiver is {state}: no proxy router yet"
    return None


@endpoint("GET", "/network/connected/v1", "Wait until this node can talk to peers (through its router if it uses one)",
          params=("wait_timeout",))
async def network_connected(api: ApiContext, req: ApiRequest) -> dict[str, str]:
    wait = number(req, "wait_timeout", 5.0, 60.0, least=0.0)
    deadline = api.ctx.reactor.seconds() + wait
    why = _not_connected(api)
    while why is not None and api.ctx.reactor.seconds() < deadline:
        await task.deferLater(api.ctx.reactor, POLL, lambda: None)
        why = _not_connected(api)
    if why is not None:
        raise ServiceOff(f"disconnected: {why}")
    result = {}
    for name in CONNECTED_SERVICES:
        enabled = api.graph.enabled(name)
        result[f"service_{name}"] = "started" if enabled and api.graph.state(name) == "ON" else (
            "disabled" if not enabled else api.graph.state(name))
    return result
