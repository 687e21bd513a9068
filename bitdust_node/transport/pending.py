"""Answers awaited by PacketID (PROTOCOL-P2P.md 3.2): the one way the gateway and the proxy client wait.

A packet sent to a node is answered with the same PacketID, by a command its own allows (`wire.REPLIES`),
from the node asked. Each wait has a timeout on the injected clock and all of them together a bound; a wait
ends when its answer comes, when it times out, when someone fails it (a router says it cannot deliver) or
when its Deferred is cancelled, and whichever comes first forgets it and its timer.
Whether an answer is addressed to me is the caller's check: it sees the packet, this sees only its fields.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Generic, TypeVar

import attrs
from twisted.internet import defer

from bitdust_node.net.clock import DelayedCall, TimeSource
from bitdust_node.transport.errors import TransportError
from bitdust_node.wire.packet import REPLIES

T = TypeVar("T")


class PendingFull(TransportError):
    """Too many answers are awaited already (or this one is, when each may be awaited once)."""


@attrs.define(eq=False)
class Awaited(Generic[T]):
    """One packet whose answer is awaited."""

    packet_id: str
    # the IDURL of the node asked: only its answer counts
    asked: str
    # the command that was sent: what may answer it
    command: str
    timeout: float
    answer: defer.Deferred[T]
    timer: DelayedCall | None = None

    def answered_by(self, reply_command: str) -> bool:
        return reply_command in REPLIES.get(self.command, frozenset())


class PendingReplies(Generic[T]):
    """Waits keyed by PacketID (case-blind, as official nodes compare them), bounded, each with a timeout."""

    def __init__(
        self,
        clock: TimeSource,
        limit: int,
        expired: Callable[[Awaited[T]], Exception],
        full: str,
        once_per_node: bool = False,
    ) -> None:
        self.clock = clock
        self.limit = limit
        # the error a wait fails with when its time is up (the caller counts it there too)
        self.expired = expired
        self.full = full
        # refuse a second wait for the same PacketID and node (its answers could not be told apart)
        self.once_per_node = once_per_node
        self._by_id: dict[str, list[Awaited[T]]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def wait(self, packet_id: str, asked: str, command: str, timeout: float) -> defer.Deferred[T]:
        """A Deferred that fires with the answer; raises PendingFull (before anything was sent) past the bound."""
        key = packet_id.lower()
        if self._count >= self.limit or (self.once_per_node and self.awaits(packet_id, asked)):
            raise PendingFull(self.full)
        awaited: Awaited[T] = Awaited(packet_id, asked, command, timeout, defer.Deferred())
        self._by_id.setdefault(key, []).append(awaited)
        self._count += 1
        awaited.timer = self.clock.callLater(timeout, self._time_is_up, awaited)

        def forget(result: object) -> object:
            if awaited.timer is not None and awaited.timer.active():
                awaited.timer.cancel()
            waiting = self._by_id.get(key, [])
            if awaited in waiting:
                waiting.remove(awaited)
                self._count -= 1
                if not waiting:
                    del self._by_id[key]
            return result

        return awaited.answer.addBoth(forget)

    def awaits(self, packet_id: str, asked: str) -> bool:
        return any(a.asked == asked for a in self._by_id.get(packet_id.lower(), ()))

    def answer(
        self, packet_id: str, senders: Collection[str], reply_command: str, value: T,
        same_node: Callable[[str, str], bool] | None = None,
    ) -> bool:
        """Hand `value` to the first wait this answers (same PacketID, an allowed reply, from the node asked: one
        of `senders`, or a sender `same_node` says is the node asked under another name)."""
        for awaited in list(self._by_id.get(packet_id.lower(), ())):
            if not (awaited.answered_by(reply_command) and not awaited.answer.called):
                continue
            renamed = same_node is not None and any(same_node(awaited.asked, sender) for sender in senders)
            if awaited.asked in senders or renamed:
                awaited.answer.callback(value)
                return True
        return False

    def fail(self, packet_id: str, error: Exception, asked: str | None = None) -> int:
        """Fail the waits for this PacketID (sent to `asked`, or to anyone); how many there were."""
        failed = 0
        for awaited in list(self._by_id.get(packet_id.lower(), ())):
            if (asked is None or awaited.asked == asked) and not awaited.answer.called:
                awaited.answer.errback(error)
                failed += 1
        return failed

    def fail_to(self, asked: str, error: Exception) -> int:
        """Fail every wait for an answer from `asked` (given up on); how many there were."""
        failed = 0
        for waiting in list(self._by_id.values()):
            for awaited in list(waiting):
                if awaited.asked == asked and not awaited.answer.called:
                    awaited.answer.errback(error)
                    failed += 1
        return failed

    def fail_all(self, error: Exception) -> None:
        for waiting in list(self._by_id.values()):
            for awaited in list(waiting):
                if not awaited.answer.called:
                    awaited.answer.errback(error)

    def _time_is_up(self, awaited: Awaited[T]) -> None:
        awaited.timer = None
        if not awaited.answer.called:
            awaited.answer.errback(self.expired(awaited))
