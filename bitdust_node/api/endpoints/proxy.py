"""REST of routing: is this node connected (directly or through its router), and the proxy part of its status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import task

from bitdust_node.api.params import number
from bitdust_node.api.routes import ApiContext, ApiRequest, endpoint
from bitdust_node.errors import ServiceOff
from bitdust_node.services.proxy_server import ProxyServerService
from bitdust_node.services.proxy_transport import ProxyTransportService

if TYPE_CHECKING:
    from bitdust_node.proxy.client import ClientStatus
    from bitdust_node.proxy.router import RouteInfo, RouterStatus

CONNECTED_SERVICES = ("network", "gateway", "p2p_hookups", "proxy_transport")
POLL = 0.1


def proxy_status(api: ApiContext) -> dict[str, Any] | None:
    """The router's routes, or the routed user's session with its router; None when neither runs."""
    for name in (ProxyServerService.name, ProxyTransportService.name):
        if api.graph.service(name) is not None:
            return service_fields(api, name)
    return None


def service_fields(api: ApiContext, name: str) -> dict[str, Any]:
    """What /service/list/v1 and /service/info/v1 add for a proxy service that is ON (nothing for others)."""
    found = api.graph.service(name)
    if isinstance(found, ProxyServerService):
        return router_reply(found.router.status()) if found.router is not None else {}
    if isinstance(found, ProxyTransportService):
        return client_reply(found.client.status()) if found.client is not None else {}
    return {}


def router_reply(status: RouterStatus) -> dict[str, Any]:
    return {
        "acks": status.acks,
        "closed_routes": [[idurl, when] for idurl, when in status.closed_routes],
        "hosts": " ".join(status.hosts),
        "routes": [_route(route) for route in status.routes],
        "sessions": [],
        "routes_limit": status.routes_limit,
        "counters": status.counters,
        "refused": status.refused,
    }


def _route(route: RouteInfo) -> dict[str, Any]:
    return {
        "address": f"tcp:{route.address[0]}:{route.address[1]}" if route.address else "",
        "contacts": " ".join(c.replace("://", ":", 1) for c in route.contacts),
        "host": route.host,
        "idurl": route.idurl,
        "proto": "tcp",
        "bytes_in": route.bytes_in,
        "bytes_out": route.bytes_out,
        "packets_in": route.packets_in,
        "packets_out": route.packets_out,
        "refused": route.refused,
        "connected": route.connected,
    }


def client_reply(status: ClientStatus) -> dict[str, Any]:
    session: dict[str, Any] = {"id": "proxy_receiver", "name": "ProxyReceiver", "state": status.state, "proto": "tcp"}
    router = status.router
    if router is not None:
        session.update({
            "idurl": router.idurl,
            "router": router.global_id,
            "host": f"{router.address[0]}:{router.address[1]}" if router.address else "",
            "connected": router.connected,
            "bytes_sent": router.bytes_sent,
            "bytes_received": router.bytes_received,
            "routed_for": round(router.routed_for, 1) if router.routed_for is not None else 0,
        })
    return {
        "sessions": [session],
        "queued": status.queued,
        "awaiting_relay_ack": status.awaiting_relay_ack,
        "counters": status.counters,
        "past_routers": [{"router": p.router, "left": p.left, "why": p.why} for p in status.past_routers],
    }


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
