"""A private network on loopback for the routing tests: an identity server and DHT seed, routers, users."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import TestCase

from bitdust_node.node import Node
from bitdust_node.proxy.client import ProxyClient
from bitdust_node.proxy.router import ProxyRouter
from bitdust_node.services.proxy_server import ProxyServerService
from bitdust_node.services.proxy_transport import ProxyTransportService
from tests.support import network
from tests.support.nodes import eventually, running_dht, start_node

SERVER = "127.0.0.60"
ROUTERS = ("127.0.0.61", "127.0.0.62")
USERS = {"alice": "127.0.0.63", "bob": "127.0.0.64", "carl": "127.0.0.65"}


def settings_for(role: str, **extra: Any) -> dict[str, Any]:
    """`server`, `router` (as the guide sets one up), `direct` (a user reachable as it is) or `routed`; storage
    services stay off: they would add their own traffic to what these tests count."""
    switches = {"services/proxy-transport/enabled": role == "routed", "services/proxy-server/enabled": role == "router"}
    return network.node_settings(SERVER, role, **{**switches, **extra})


async def start_server(test: TestCase) -> Node:
    return await start_node(test, SERVER, settings_for("server"))


async def start_named(test: TestCase, name: str, address: str, role: str, **extra: Any) -> Node:
    return await network.start_named(test, name, address, settings_for(role, **extra))


def router_of(node: Node) -> ProxyRouter:
    assert node.graph is not None
    service = node.graph.service("proxy_server")
    assert isinstance(service, ProxyServerService) and service.router is not None, "service_proxy_server is not ON"
    return service.router


def client_of(node: Node) -> ProxyClient:
    assert node.graph is not None
    service = node.graph.service("proxy_transport")
    assert isinstance(service, ProxyTransportService) and service.client is not None, "proxy_transport is not ON"
    return service.client


async def routers_known(server: Node, count: int) -> None:
    """Until the seed knows `count` routers in DHT layer 2 (where users look for them)."""
    await eventually(lambda: running_dht(server).contact_count(2) >= count, timeout=30)


async def routed(node: Node, timeout: float = 30) -> ProxyClient:
    client = client_of(node)
    await eventually(lambda: client.listening, timeout=timeout)
    return client
