"""Drop clients that take too long to send a request, however slowly they trickle bytes.

An idle timeout does not catch a client that sends one byte per second; this deadline runs
from the first byte of a request until the server starts answering it.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

log = Logger()


class DeadlineProtocol(ProtocolWrapper):
    factory: DeadlineFactory

    def __init__(self, factory: Any, wrapped: Any) -> None:
        super().__init__(factory, wrapped)
        self._timer: Any = None

    def connectionMade(self) -> None:
        self._arm()
        super().connectionMade()

    def dataReceived(self, data: bytes) -> None:
        if self._timer is None:
            self._arm()
        super().dataReceived(data)

    def write(self, data: bytes) -> None:
        self._disarm()  # the request was complete enough to be answered
        super().write(data)

    def writeSequence(self, data: Any) -> None:
        self._disarm()
        super().writeSequence(data)

    def connectionLost(self, reason: Any = None) -> None:
        self._disarm()
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
        if self.transport is not None:
            self.transport.abortConnection()


class DeadlineFactory(WrappingFactory):
    protocol = DeadlineProtocol

    def __init__(self, wrapped: Any, deadline: float, clock: Any) -> None:
        super().__init__(wrapped)
        self.deadline = deadline
        self.clock: Any = clock  # IReactorTime
        self.timeouts = 0
