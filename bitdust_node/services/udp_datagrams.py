"""service_udp_datagrams: the UDP datagrams port, which answers `1s` with `1m<ip>:<port>` of the asker
and carries my own STUN requests (net/stun_port.py)."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from bitdust_node.net.ports import PortSet
from bitdust_node.net.stun_port import StunPort
from bitdust_node.services.base import Service


class UdpDatagramsService(Service):
    name = "udp_datagrams"

    stun_port: StunPort | None = None
    _port: Any = None

    def start(self) -> defer.Deferred[None]:
        self._ports = PortSet(self.ctx.reactor)
        self.stun_port = StunPort(self.ctx.reactor)
        self._port = self._ports.listen_udp(int(self.setting("udp-port")), self.stun_port, self.ctx.bind_address)
        return defer.succeed(None)

    def stop(self) -> defer.Deferred[None]:
        self._port = None
        return self._ports.close_all()

    def udp_port(self) -> int:
        return int(self._port.getHost().port) if self._port is not None else 0

    def status(self) -> dict[str, object]:
        port = self.stun_port
        return {
            "udp_port": self.udp_port(),
            "answered": port.answered if port else 0,
            "asked": port.asked if port else 0,
            "limited": port.limited if port else 0,
        }
