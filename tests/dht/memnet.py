"""A small in-memory datagram network: MemoryReactor has no listenUDP, the DHT needs one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock


@attrs.define(eq=False)
class MemoryTransport:
    network: MemoryNetwork
    address: tuple[str, int]
    protocol: DatagramProtocol
    connected: bool = True

    def write(self, data: bytes, addr: Any) -> None:
        self.network.send(self.address, (addr[0], addr[1]), data)

    def getHost(self) -> tuple[str, int]:
        return self.address

    def stopListening(self) -> None:
        self.connected = False
        self.network.endpoints.pop(self.address, None)


@attrs.define
class MemoryNetwork:
    """Delivers each datagram after `latency` seconds of the shared Clock, unless the target is gone."""

    clock: Clock
    latency: float = 0.001
    endpoints: dict[tuple[str, int], MemoryTransport] = attrs.field(factory=dict)
    delivered: int = 0
    # every datagram written, delivered or not: (source, target, bytes)
    sent: list[tuple[tuple[str, int], tuple[str, int], bytes]] = attrs.field(factory=list)
    # a fault on the wire: datagrams for which it says True are lost (a node that stops answering some calls)
    lose: Callable[[tuple[str, int], tuple[str, int], bytes], bool] | None = None

    def listen(self, address: tuple[str, int], protocol: DatagramProtocol) -> MemoryTransport:
        transport = MemoryTransport(self, address, protocol)
        self.endpoints[address] = transport
        protocol.makeConnection(transport)  # type: ignore[arg-type]
        return transport

    def send(self, source: tuple[str, int], target: tuple[str, int], data: bytes) -> None:
        self.sent.append((source, target, data))
        self.clock.callLater(self.latency, self._deliver, source, target, data)

    def _deliver(self, source: tuple[str, int], target: tuple[str, int], data: bytes) -> None:
        transport = self.endpoints.get(target)
        if self.lose is not None and self.lose(source, target, data):
            return
        if transport is not None:
            self.delivered += 1
            transport.protocol.datagramReceived(data, source)

    def run(self, seconds: float) -> None:
        """Advance the clock call by call for `seconds`, so chains of datagrams complete."""
        end = self.clock.seconds() + seconds
        while True:
            calls: list[Any] = list(self.clock.getDelayedCalls())
            pending = [c.getTime() for c in calls]
            upcoming = min(pending) if pending else end
            if upcoming > end:
                break
            self.clock.advance(max(0.0, upcoming - self.clock.seconds()))
            if not pending:
                break
        self.clock.advance(max(0.0, end - self.clock.seconds()))
