"""What a router has on its way for one route in one direction, and the back-pressure past it.

A route's window holds the bytes of the packets relayed for it that still wait in this node: not yet written
whole into the next hop's socket. Past `limit`, the connections that bring more for it are not read
(TcpConnection.hold_reading): TCP then pushes back on the senders instead of the router queueing what they send.
What gives room back is the next hop's socket taking bytes, never this node reading a connection, so holds cannot
lock each other up. As bytes are handed on, the held connections are let go one at a time, the longest held
first (each brings about a packet), all of them once the window is empty. A hold ends after `wait` at the most: a
route whose user stopped reading no longer holds anyone up once its window has not drained for that long, and
what comes for it meanwhile is refused instead.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet import defer

from bitdust_node.net.clock import DelayedCall, TimeSource


class RelayWindow:
    def __init__(self, clock: TimeSource, limit: int, wait: float) -> None:
        self.clock = clock
        self.limit = limit
        self.wait = wait
        self.held = 0
        # since when it has been full without a byte handed on (None while it has room)
        self.full_since: float | None = None
        self._waiting: list[defer.Deferred[None]] = []
        self._timer: DelayedCall | None = None

    @property
    def full(self) -> bool:
        return self.held >= self.limit

    @property
    def stuck(self) -> bool:
        """Full for `wait` or longer: what comes now is refused, not waited for."""
        return self.full_since is not None and self.clock.seconds() - self.full_since >= self.wait

    def take(self, size: int) -> Callable[[], None]:
        """`size` bytes on their way (past the limit too: what came is relayed); the call that gives them back."""
        self.held += size
        if self.full and self.full_since is None:
            self.full_since = self.clock.seconds()
        given = False

        def give_back() -> None:
            nonlocal given
            if not given:
                given = True
                self._give_back(size)

        return give_back

    def _give_back(self, size: int) -> None:
        self.held -= size
        if self.full:
            self.full_since = self.clock.seconds()  # bytes handed on: it drains, if slowly
        elif not self.held:
            self.full_since = None
            self._release()
        else:
            self.full_since = None
            self._let_one_go()

    def _let_one_go(self) -> None:
        if self._waiting:
            self._waiting.pop(0).callback(None)
        if not self._waiting and self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None

    def room(self) -> defer.Deferred[None]:
        """Fires once the window has room, or after `wait` at the most (never fails)."""
        waiting: defer.Deferred[None] = defer.Deferred()
        if not self.full:
            waiting.callback(None)
            return waiting
        self._waiting.append(waiting)
        if self._timer is None:
            self._timer = self.clock.callLater(self.wait, self._release)
        return waiting

    def _release(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        waiting, self._waiting = self._waiting, []
        for each in waiting:
            each.callback(None)

    def close(self) -> None:
        """The route is gone: whoever waits for it reads again."""
        self._release()

    @property
    def waiting(self) -> int:
        return len(self._waiting)
