"""Thousands of real DhtNodes on one simulated clock and datagram network, no sockets.

Twisted's task.Clock sorts its whole list of calls on every callLater, which is quadratic with
10,000 nodes each keeping timers; HeapClock keeps them in a heap and steps time call by call, so a
chain of datagrams (each delivered `latency` after it was written) runs to its end in one advance.
"""

from __future__ import annotations

import heapq
import itertools
import random
from typing import Any

from twisted.internet.base import DelayedCall
from twisted.internet.defer import Deferred

from bitdust_node.dht.layers import DhtConfig
from bitdust_node.dht.node import DhtNode
from bitdust_node.dht.protocol import DhtProtocol
from bitdust_node.dht.routing import Contact
from tests.dht.memnet import MemoryNetwork

DHT_PORT = 14441


class HeapClock:
    """IReactorTime on a heap: callLater is O(log n); cancelled and moved calls are skipped lazily."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self._heap: list[tuple[float, int, DelayedCall]] = []
        self._order = itertools.count()
        self.calls_run = 0

    def seconds(self) -> float:
        return self.now

    def callLater(self, delay: float, func: Any, *args: Any, **kw: Any) -> DelayedCall:
        call = DelayedCall(self.now + delay, func, args, kw, self._forget, self._push, seconds=self.seconds)
        self._push(call)
        return call

    def _push(self, call: DelayedCall) -> None:
        heapq.heappush(self._heap, (call.time, next(self._order), call))

    def _forget(self, call: DelayedCall) -> None:
        """Cancelled: its heap entry is skipped when it comes up."""

    def getDelayedCalls(self) -> list[DelayedCall]:
        return [c for _, _, c in self._heap if not (c.cancelled or c.called)]

    def advance(self, seconds: float) -> None:
        """Run every call due within `seconds`, in time order, including those they schedule."""
        end = self.now + seconds
        heap = self._heap
        while heap and heap[0][0] <= end:
            when, _, call = heapq.heappop(heap)
            if call.cancelled or call.called or when != call.time:
                continue
            if call.delayed_time:
                call.activate_delay()  # reset() to a later time: it comes up again then
                self._push(call)
                continue
            self.now = max(self.now, when)
            call.called = 1
            self.calls_run += 1
            call.func(*call.args, **call.kw)
        self.now = end


class SimNetwork(MemoryNetwork):
    """MemoryNetwork on a HeapClock, without the log of every datagram (it would hold gigabytes)."""

    def send(self, source: tuple[str, int], target: tuple[str, int], data: bytes) -> None:
        self.clock.callLater(self.latency, self._deliver, source, target, data)

    def run(self, seconds: float) -> None:
        self.clock.advance(seconds)


def host_of(number: int) -> str:
    """A distinct address per node: 10.x.y.z from the node's number."""
    return f"10.{(number >> 16) & 255}.{(number >> 8) & 255}.{number & 255}"


class SimDht:
    """N DhtNodes joined through a few seeds, as a private network grows."""

    def __init__(self, config: DhtConfig | None = None, seed: int = 7, rpc_timeout: float = 2.0,
                 latency: float = 0.005) -> None:
        self.clock = HeapClock()
        self.net = SimNetwork(self.clock, latency=latency)  # type: ignore[arg-type]
        self.config = config or DhtConfig()
        self.rpc_timeout = rpc_timeout
        self.rng = random.Random(seed)
        self.nodes: list[DhtNode] = []
        self.addresses: dict[int, tuple[str, int]] = {}
        self.dead: set[int] = set()

    def add(self) -> DhtNode:
        number = len(self.nodes) + 1
        protocol = DhtProtocol(self.clock, rpc_timeout=self.rpc_timeout)
        node = DhtNode(protocol, self.clock, self.config, rng=self.rng)
        address = (host_of(number), DHT_PORT)
        self.net.listen(address, protocol)
        node.udp_port = DHT_PORT
        node.start()
        self.addresses[id(node)] = address
        self.nodes.append(node)
        return node

    def resolve(self, d: Deferred[Any], seconds: float = 120.0) -> Any:
        result: list[Any] = []
        d.addBoth(result.append)
        step = 0.05
        waited = 0.0
        while not result and waited < seconds:
            self.clock.advance(step)
            waited += step
        if not result:
            raise AssertionError("the simulated call did not finish")
        return result[0]

    def timed(self, d: Deferred[Any], seconds: float = 120.0) -> tuple[Any, float]:
        """The result of `d` and the simulated seconds it took to fire."""
        started = self.clock.seconds()
        ended: list[float] = []

        def end(result: Any) -> Any:
            ended.append(self.clock.seconds())
            return result

        d.addBoth(end)
        result = self.resolve(d, seconds)
        return result, ended[0] - started

    def grow(self, count: int, seeds: int = 3) -> None:
        """The first node is the genesis; each later one joins through up to `seeds` of the first nodes."""
        while len(self.nodes) < count:
            node = self.add()
            known = [self.addresses[id(n)] for n in self.nodes[:seeds] if n is not node]
            if known:
                self.resolve(node.join(known))

    def alive(self) -> list[DhtNode]:
        return [n for n in self.nodes if id(n) not in self.dead]

    def kill(self, fraction: float, spare: set[int] = frozenset()) -> list[DhtNode]:  # type: ignore[assignment]
        """Take `fraction` of the live nodes off the network without a word (their sockets vanish)."""
        candidates = [n for n in self.alive() if id(n) not in spare]
        victims = self.rng.sample(candidates, int(len(self.nodes) * fraction))
        self.take_down(victims)
        return victims

    def take_down(self, victims: list[DhtNode]) -> None:
        """These nodes vanish without a word."""
        for node in victims:
            transport: Any = node.protocol.transport
            transport.stopListening()
            node.upkeep.stop()
            self.dead.add(id(node))

    def contact_of(self, node: DhtNode) -> Contact:
        host, port = self.addresses[id(node)]
        return Contact(node.node_id, host, port)
