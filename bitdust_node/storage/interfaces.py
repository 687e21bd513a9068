"""What the customer's cores are handed besides the gateway's face (`transport/interfaces.PacketNetwork`): who
I am, others' identities, a clock and a way to run work off the reactor's thread. Each is a small Protocol the
node's real objects fit and a test's fakes fit too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet import defer

from bitdust_node.identity.my_identity import MyIdentity
from bitdust_node.net.clock import TimeSource
from bitdust_node.wire.identity_xml import Identity

# the slice of IReactorTime a core uses (zope interfaces do not type-check as protocols): Clock and the reactor fit
Clock = TimeSource
# runs f(*args) off the reactor's thread and fires with its result: deferToThread, or maybeDeferred in a test
Worker = Callable[..., defer.Deferred[Any]]


class Me(Protocol):
    """My identity and key (MyIdentityHolder)."""

    def require(self) -> MyIdentity: ...


class IdentityLookup(Protocol):
    """Others' identities (IdentityCache): the cached one, or fetched when unknown."""

    def get(self, idurl: str) -> Identity | None: ...

    async def known(self, idurl: str) -> Identity: ...


class Pinger(Protocol):
    """Hookups: an Identity ping that fails (BitDustError) unless the peer answers in time."""

    async def ping(self, idurl: str, timeout: float = ..., channel: str = ...) -> Any: ...
