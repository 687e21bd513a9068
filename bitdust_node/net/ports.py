"""Port bookkeeping: a service listens through one PortSet and closes all it opened with one call."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from bitdust_node.net.clock import INodeReactor


class PortSet:
    """The listening ports (TCP and UDP) one service opened, closed together, newest first."""

    def __init__(self, reactor: INodeReactor) -> None:
        self._reactor = reactor
        self._ports: list[Any] = []

    def listen_tcp(self, port: int, factory: Any, interface: str = "", backlog: int = 50) -> Any:
        opened = self._reactor.listenTCP(port, factory, backlog=backlog, interface=interface)
        self._ports.append(opened)
        return opened

    def listen_udp(self, port: int, protocol: Any, interface: str = "", max_packet_size: int = 8192) -> Any:
        opened = self._reactor.listenUDP(port, protocol, interface=interface, maxPacketSize=max_packet_size)
        self._ports.append(opened)
        return opened

    def __len__(self) -> int:
        return len(self._ports)

    def close_all(self) -> defer.Deferred[None]:
        """Stop listening on every port; fires when all are closed, even if one failed to close."""
        ports, self._ports = self._ports, []
        closing = [defer.maybeDeferred(port.stopListening) for port in reversed(ports)]
        done = defer.DeferredList(closing, consumeErrors=True)
        return done.addCallback(lambda _: None)
