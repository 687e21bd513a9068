"""A small private network on loopback for the peer-to-peer tests: an identity server and users."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import TestCase

from bitdust_node.node import Node
from tests.support.nodes import api, start_node

# loopback addresses of the p2p tests: the identity server, then users
SERVER = "127.0.0.40"
USERS = {"alice": "127.0.0.41", "bob": "127.0.0.42", "carl": "127.0.0.43"}


def user_settings(dht: bool = False, **extra: Any) -> dict[str, Any]:
    """A user of the test network; with `dht`, joined to the DHT through the server (genesis)."""
    settings: dict[str, Any] = {
        "services/identity-propagate/known-servers": f"{SERVER}:8084",
        "services/identity-propagate/min-servers": 1,
        "personal/private-key-size": 1024,
        "services/entangled-dht/enabled": dht,
        "services/entangled-dht/known-nodes": f"{SERVER}:14441",
        # reachable directly, as in the captured loopback network; the proxy tests turn it on
        "services/proxy-transport/enabled": False,
        # messages alone: storage would add its own traffic to what these tests count
        "services/supplier/enabled": False,
        "services/customer/enabled": False,
    }
    settings.update(extra)
    return settings


async def start_server(test: TestCase, dht: bool = False) -> Node:
    server = {"services/identity-server/enabled": True, "services/identity-server/host": SERVER}
    settings = user_settings(dht, **server)
    settings["services/entangled-dht/known-nodes"] = "genesis"
    return await start_node(test, SERVER, settings)


async def start_user(test: TestCase, name: str, create: bool = True, dht: bool = False, **extra: Any) -> Node:
    node = await start_node(test, USERS[name], user_settings(dht, **extra))
    if create:
        status, reply = await api(node, "POST", "/identity/create/v1", {"username": name})
        test.assertEqual(status, 200, reply)
        assert node.graph is not None
        await node.graph.settled()
    return node
