"""service_udp_datagrams: the STUN-like UDP responder (`1s` -> `1m<ip>:<port>` of the asker)."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol

from bitdust_node.services.base import Service

PORT_KEY = "services/udp-datagrams/udp-port"
STUN_REQUEST = b"1s"


def stun_reply(data: bytes, address: tuple[str, int]) -> bytes | None:
    """The answer to one datagram, or None for anything that is not a STUN request."""
    if data != STUN_REQUEST:
        return None
    return b"1m%s:%d" % (address[0].encode("ascii"), address[1])


class StunResponder(DatagramProtocol):
    def __init__(self) -> None:
        self.answered = 0
        self.ignored = 0

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        reply = stun_reply(data, (addr[0], addr[1]))
        if reply is None:
            self.ignored += 1
            return
        self.answered += 1
        transport: Any = self.transport
        transport.write(reply, addr)


class UdpDatagramsService(Service):
    name = "udp_datagrams"
    depends_on = ("network",)

    _port: Any = None
    responder: StunResponder | None = None

    def start(self) -> defer.Deferred[None]:
        self.responder = StunResponder()
        self._port = self.node.reactor.listenUDP(
            self.node.settings.get(PORT_KEY),
            self.responder,
            interface=self.node.bind_address,
        )
        return defer.succeed(None)

    def stop(self) -> defer.Deferred[None]:
        port, self._port = self._port, None
        return (
            defer.maybeDeferred(port.stopListening)
            if port is not None
            else defer.succeed(None)
        )

    def udp_port(self) -> int:
        return int(self._port.getHost().port) if self._port is not None else 0

    def status(self) -> dict[str, object]:
        return {
            "udp_port": self.udp_port(),
            "answered": self.responder.answered if self.responder else 0,
        }
