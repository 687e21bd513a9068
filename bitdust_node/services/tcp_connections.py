"""service_tcp_connections: the peer-to-peer TCP port (`services/tcp-connections/tcp-port`) and its connections."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, protocol

from bitdust_node.net.addresses import ANY_ADDRESSES
from bitdust_node.net.external import ExternalAddress
from bitdust_node.net.ports import PortSet
from bitdust_node.services.base import Service
from bitdust_node.services.network import NetworkService
from bitdust_node.transport.connection import TcpConnection
from bitdust_node.transport.tcp import TcpNode
from bitdust_node.wire import tcp_frames

# many peers dial at once after a restart of a busy router
LISTEN_BACKLOG = 512


class _SeenFrom(protocol.Factory):
    """The transport's listening factory, telling my outside address who connected (proof it works)."""

    noisy = False

    def __init__(self, inner: protocol.Factory, external: ExternalAddress) -> None:
        self.inner = inner
        self.external = external

    def buildProtocol(self, addr: Any) -> Any:
        built = self.inner.buildProtocol(addr)
        if built is not None:
            self.external.peer_connected(str(getattr(addr, "host", "")))
        return built


class TcpConnectionsService(Service):
    name = "tcp_connections"

    tcp: TcpNode | None = None
    _port: Any = None

    def start(self) -> defer.Deferred[None]:
        ctx = self.ctx
        self._ports = PortSet(ctx.reactor)
        # a node bound to one address dials from it too
        bound = ctx.bind_address not in ANY_ADDRESSES
        tcp = TcpNode(ctx.reactor, self.my_address, self._my_idurl, self._no_gateway, bind_source=bound,
                      budget=self.need(NetworkService).budget)
        port = int(self.setting("tcp-port"))
        self._external = self.need(NetworkService).external
        factory = _SeenFrom(tcp.factory(), self._external)
        self._port = self._ports.listen_tcp(port, factory, ctx.bind_address, LISTEN_BACKLOG)
        self.tcp = tcp
        return defer.succeed(None)

    def stop(self) -> defer.Deferred[None]:
        tcp, self.tcp = self.tcp, None
        closing = self._ports.close_all()
        if tcp is not None:
            closing.addCallback(lambda _: tcp.close_all())
        return closing

    def my_address(self) -> tuple[str, int]:
        """Where peers reach me: the address my identity's tcp contact names."""
        return self._external.address, int(self._port.getHost().port)

    def _my_idurl(self) -> str:
        me = self.ctx.identity.current
        return me.idurl if me is not None else ""

    def _no_gateway(self, connection: TcpConnection, data: tcp_frames.Chunks) -> None:
        assert self.tcp is not None
        self.tcp.count("files_without_gateway")

    def status(self) -> dict[str, object]:
        if self.tcp is None:
            return {}
        return {
            "tcp_port": self.my_address()[1],
            "connections": len(self.tcp.connections),
            "counters": dict(self.tcp.counters),
        }
