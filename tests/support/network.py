"""A private network on loopback for tests of one part (routing, storage): the settings every node of it
shares, its seed (identity server and DHT genesis), and named nodes with their identities created."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import TestCase

from bitdust_node.node import Node
from tests.support.nodes import api, start_node


def node_settings(server: str, role: str = "", **switches: Any) -> dict[str, Any]:
    """A node registering on `server` and joining its DHT, with only the services a test names switched on
    (proxy transport, supplier and customer are off unless given); `server` as role makes the seed."""
    settings: dict[str, Any] = {
        "services/identity-propagate/known-servers": f"{server}:8084",
        "services/identity-propagate/min-servers": 1,
        "personal/private-key-size": 1024,
        "services/entangled-dht/known-nodes": f"{server}:14441",
        "services/proxy-transport/enabled": False,
        "services/supplier/enabled": False,
        "services/customer/enabled": False,
    }
    if role == "server":
        settings.update({
            "services/identity-server/enabled": True,
            "services/identity-server/host": server,
            "services/entangled-dht/known-nodes": "genesis",
        })
    settings.update(switches)
    return settings


async def start_named(test: TestCase, name: str, address: str, settings: dict[str, Any]) -> Node:
    """A node on `address` with its identity `name` created and its services settled."""
    node = await start_node(test, address, settings)
    status, reply = await api(node, "POST", "/identity/create/v1", {"username": name})
    test.assertEqual(status, 200, reply)
    assert node.graph is not None
    await node.graph.settled()
    return node
