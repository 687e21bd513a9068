"""The one owner of my identity: who I am now, kept in the home, and who must hear of a change.

Registration, recovery and propagation return a new MyIdentity; the caller `adopt`s it. The service
graph, the transport, the proxy client and the DHT's `idurl` answer subscribe.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from twisted.logger import Logger

from bitdust_node.errors import Conflict, NotFound
from bitdust_node.identity import my_identity
from bitdust_node.identity.my_identity import MyIdentity

log = Logger()
Subscriber = Callable[[MyIdentity], object]


class MyIdentityHolder:
    def __init__(self, home: Path, current: MyIdentity | None = None) -> None:
        self._home = home
        self._current = current
        self._subscribers: list[Subscriber] = []

    @classmethod
    def load(cls, home: Path) -> MyIdentityHolder:
        """The identity kept in the home (None before one is created or restored)."""
        return cls(home, my_identity.load(home))

    @property
    def current(self) -> MyIdentity | None:
        return self._current

    def require(self) -> MyIdentity:
        if self._current is None:
            raise NotFound(my_identity.NOT_EXIST)
        return self._current

    def refuse_if_exists(self) -> None:
        if self._current is not None:
            raise Conflict(my_identity.ALREADY_EXIST)

    def adopt(self, new: MyIdentity) -> None:
        """Save `new` to the home, make it current, then tell every subscriber, in order."""
        my_identity.save(self._home, new)
        self._current = new
        for subscriber in list(self._subscribers):
            try:
                subscriber(new)
            except Exception:
                # one broken listener must not keep the others from hearing of the change
                log.failure("identity subscriber {who} failed", who=getattr(subscriber, "__qualname__", subscriber))

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(new)` after every adopt; returns the function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe
