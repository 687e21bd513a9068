"""service_tcp_transport: the gateway sends and receives over the TCP connections."""

from __future__ import annotations

from twisted.internet import defer

from bitdust_node.services.base import Service
from bitdust_node.services.gateway import GatewayService
from bitdust_node.services.tcp_connections import TcpConnectionsService
from bitdust_node.transport.connection import TcpConnection
from bitdust_node.wire import tcp_frames


class TcpTransportService(Service):
    name = "tcp_transport"

    def start(self) -> defer.Deferred[None]:
        gateway = self.need(GatewayService).gateway
        tcp = self.need(TcpConnectionsService).tcp
        assert gateway is not None and tcp is not None
        self._detach = gateway.attach(tcp)

        def deliver(connection: TcpConnection, data: tcp_frames.Chunks) -> None:
            gateway.file_received(data, connection)

        self._previous = tcp.on_file
        tcp.on_file = deliver
        self._tcp = tcp
        return defer.succeed(None)

    def stop(self) -> defer.Deferred[None]:
        self._detach()
        self._tcp.on_file = self._previous
        return defer.succeed(None)
