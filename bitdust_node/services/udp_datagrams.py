"""service_udp_datagrams: the STUN-like UDP responder (`1s` -> `1m<ip>:<port>` of the asker)."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol

from bitdust_node.net.ports import PortSet
from bitdust_node.services.base import Service

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

    responder: StunResponder | None = None
    _port: Any = None

    def start(self) -> defer.Deferred[None]:
        self._ports = PortSet(self.ctx.reactor)
        self.responder = StunResponder()
        self._port = self._ports.listen_udp(int(self.setting("udp-port")), self.responder, self.ctx.bind_address)
        return defer.succeed(None)

    def stop(self) -> defer.Deferred[None]:
        self._port = None
        return self._ports.close_all()

    def udp_port(self) -> int:
        return int(self._port.getHost().port) if self._port is not None else 0

    def status(self) -> dict[str, object]:
        return {
            "udp_port": self.udp_port(),
            "answered": self.responder.answered if self.responder else 0,
        }
