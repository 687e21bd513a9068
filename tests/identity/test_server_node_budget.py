"""An identity server node's uploads being read hold their bytes against the node's one receive budget (the
network service's, which /network/status reports), over real sockets: TCP 6661 and HTTP 8084."""

from __future__ import annotations

import struct
from typing import Any

from twisted.internet import defer, protocol, reactor
from twisted.trial.unittest import TestCase

from bitdust_node.wire import tcp_frames
from tests.identity.test_my_identity import start_server_node
from tests.support.nodes import eventually

CLIENT = "127.0.0.13"


class Raw(protocol.Protocol):
    def __init__(self) -> None:
        self.closed: defer.Deferred[None] = defer.Deferred()

    def connectionLost(self, reason: Any = None) -> None:
        self.closed.callback(None)


async def connect(port: int) -> Raw:
    client: Raw = await protocol.ClientCreator(reactor, Raw).connectTCP("127.0.0.10", port, bindAddress=(CLIENT, 0))
    return client


class NodeBudgetTests(TestCase):
    timeout = 60

    async def test_unfinished_uploads_hold_the_nodes_budget_until_they_end(self) -> None:
        node = await start_server_node(self)
        graph: Any = node.graph
        budget = graph.service("network").budget
        tcp = await connect(6661)
        announced = 40_000
        tcp.transport.write(tcp_frames.encode_frame(tcp_frames.HELLO, b"127.0.0.13:7771 x") + tcp_frames.encode_frame(
            tcp_frames.DATA, struct.pack("<ii", 1, announced) + b"<" * 1000))
        await eventually(lambda: budget.held_by(CLIENT) == announced)
        web = await connect(8084)
        web.transport.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 30000\r\n\r\n<identity")
        await eventually(lambda: budget.held_by(CLIENT) == announced + 30_000)
        tcp.transport.loseConnection()
        web.transport.loseConnection()
        await tcp.closed
        await web.closed
        await eventually(lambda: budget.held_by(CLIENT) == 0)
