"""My packets while the routed user looks for a router: they wait in a bounded queue, each for a bounded time,
until a route carries them or their time is up. The packets to the router being asked go directly.
"""

from __future__ import annotations

import collections

import attrs
from twisted.internet import defer

from bitdust_node.net.clock import DelayedCall, TimeSource
from bitdust_node.transport.errors import TransportError
from bitdust_node.wire.identity_xml import Identity
from bitdust_node.wire.packet import Packet
from bitdust_node.wire.tcp_frames import FileBytes


@attrs.define(eq=False)
class WaitingPacket:
    """A packet of mine held until a route can carry it: `done` fires when it went, or fails."""

    packet: Packet
    data: FileBytes
    remote: Identity
    wide: bool
    timeout: float | None
    done: defer.Deferred[None]
    timer: DelayedCall | None = None


class WaitingPackets:
    """The bounded queue of my packets waiting for a router."""

    def __init__(
        self, clock: TimeSource, counters: collections.Counter[str], limit: int = 100, wait: float = 30.0,
    ) -> None:
        self.clock = clock
        self.counters = counters
        self.limit = limit
        self.wait = wait
        self._queue: collections.deque[WaitingPacket] = collections.deque()

    def __len__(self) -> int:
        return len(self._queue)

    def hold(
        self, packet: Packet, data: FileBytes, remote: Identity, wide: bool, timeout: float | None,
    ) -> defer.Deferred[None]:
        if len(self._queue) >= self.limit:
            self.counters["queue_full"] += 1
            return defer.fail(TransportError("no proxy router yet and the queue of waiting packets is full"))
        item = WaitingPacket(packet, data, remote, wide, timeout, defer.Deferred())
        item.timer = self.clock.callLater(self.wait, self._expired, item)
        self._queue.append(item)
        self.counters["queued"] += 1
        return item.done

    def next(self) -> WaitingPacket | None:
        """The oldest waiting packet, taken out of the queue (its own timer stopped)."""
        if not self._queue:
            return None
        item = self._queue.popleft()
        if item.timer is not None and item.timer.active():
            item.timer.cancel()
        return item

    def fail_all(self, error: Exception) -> None:
        while (item := self.next()) is not None:
            item.done.errback(error)

    def _expired(self, item: WaitingPacket) -> None:
        if item in self._queue:
            self._queue.remove(item)
            self.counters["queue_expired"] += 1
            item.done.errback(TransportError(f"no proxy router within {self.wait:g} s"))


@attrs.define(eq=False)
class HeldRoute:
    """The gateway's OutboundRoute while there is no route: my packets wait, those to `router` go directly."""

    queue: WaitingPackets
    # the router being asked, if any
    router: Identity | None

    def send(
        self, packet: Packet, data: FileBytes, remote: Identity, wide: bool, timeout: float | None,
    ) -> defer.Deferred[None] | None:
        if self.router is not None and remote.publickey == self.router.publickey:
            return None
        return self.queue.hold(packet, data, remote, wide, timeout)

    def close(self) -> None:
        """Nothing to undo: what waits stays queued for the next route."""
