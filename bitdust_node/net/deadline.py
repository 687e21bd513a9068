"""Drop clients that take too long to send a request, however slowly they trickle bytes.

An idle timeout does not catch a client that sends one byte per second; this deadline runs
from the first byte of a request until the protocol calls `request_complete()` on its transport
(found with `request_complete(transport)`). Writes do not count: an `Expect: 100-continue`
answer must not free a client that then trickles its body. The factory may also hold the port to
connection caps (net/connection_caps.py): a newcomer over them is closed at once.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

from bitdust_node.net.connection_caps import ConnectionCaps

log = Logger()


class DeadlineProtocol(ProtocolWrapper):
    factory: DeadlineFactory

    def __init__(self, factory: Any, wrapped: Any) -> None:
        super().__init__(factory, wrapped)
        self._timer: Any = None
        # the address the caps count this connection under, until it closes
        self.counted_host: str | None = None

    def connectionMade(self) -> None:
        self._arm()
        super().connectionMade()

    def dataReceived(self, data: bytes) -> None:
        if self._timer is None:
            self._arm()
        super().dataReceived(data)

    def request_complete(self) -> None:
        """The wrapped protocol has a whole request; the next byte starts a new deadline."""
        self._disarm()

    def connectionLost(self, reason: Any = None) -> None:
        self._disarm()
        host, self.counted_host = self.counted_host, None
        if host is not None and self.factory.caps is not None:
            self.factory.caps.gone(host)
        super().connectionLost(reason)

    def _arm(self) -> None:
        self._timer = self.factory.clock.callLater(self.factory.deadline, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _expired(self) -> None:
        self._timer = None
        log.info(
            "dropping a client too slow to send its request: {peer}",
            peer=self.getPeer(),
        )
        self.factory.timeouts += 1
        transport: Any = self.transport  # a TCP transport (ITCPTransport), which can abort
        if transport is not None:
            transport.abortConnection()


class DeadlineFactory(WrappingFactory):
    protocol = DeadlineProtocol
    # the port's own "starting on" line says enough
    noisy = False

    def __init__(
        self, wrapped: Any, deadline: float, clock: IReactorTime, caps: ConnectionCaps | None = None,
    ) -> None:
        super().__init__(wrapped)
        self.deadline = deadline
        self.clock = clock
        self.timeouts = 0
        self.caps = caps

    def buildProtocol(self, addr: Any) -> Any:  # a DeadlineProtocol, or None over the caps: Twisted closes it
        host = str(getattr(addr, "host", ""))
        if self.caps is not None and not self.caps.admit(host):
            return None
        built: Any = super().buildProtocol(addr)
        if self.caps is not None:
            built.counted_host = host
        return built


def request_complete(transport: Any) -> None:
    """Tell the deadline wrapper under `transport`, if there is one, that a request is complete."""
    complete = getattr(transport, "request_complete", None)
    if complete is not None:
        complete()
