"""Build several DhtNodes on one MemoryNetwork for unit tests."""

from __future__ import annotations

import random
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from bitdust_node.dht.node import DhtConfig, DhtNode
from bitdust_node.dht.protocol import DhtProtocol
from tests.dht.memnet import MemoryNetwork


class Grid:
    def __init__(self, config: DhtConfig | None = None, rpc_timeout: float = 2.0) -> None:
        self.clock = Clock()
        self.clock.advance(1_800_000_000)
        self.net = MemoryNetwork(self.clock)
        self.config = config or DhtConfig()
        self.rpc_timeout = rpc_timeout
        self.nodes: list[DhtNode] = []
        self.rng = random.Random(7)

    def add(self, host: str | None = None, port: int = 14441) -> DhtNode:
        host = host or f"10.0.0.{len(self.nodes) + 1}"
        protocol = DhtProtocol(self.clock, rpc_timeout=self.rpc_timeout)
        node = DhtNode(protocol, self.clock, self.config, rng=self.rng)
        self.net.listen((host, port), protocol)
        node.udp_port = port
        node.start()
        self.nodes.append(node)
        return node

    def address(self, node: DhtNode) -> tuple[str, int]:
        transport: Any = node.protocol.transport
        host = transport.getHost()
        return (host[0], host[1])

    def join(self, node: DhtNode, seed: DhtNode) -> int:
        result: list[int] = []
        node.join([self.address(seed)]).addCallback(result.append)
        self.net.run(30)
        return result[0]

    def kill(self, node: DhtNode) -> None:
        """Vanish without goodbye."""
        transport: Any = node.protocol.transport
        transport.stopListening()

    def resolve(self, d: Deferred[Any], seconds: float = 60) -> Any:
        result: list[Any] = []
        d.addBoth(result.append)
        self.net.run(seconds)
        assert result, "deferred did not fire"
        return result[0]
