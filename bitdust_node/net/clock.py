"""The reactor as the node's code sees it, typed for mypy (with mypy-zope, which reads zope interfaces).

Rooms wait with an injected `IReactorTime` (the reactor, or `twisted.internet.task.Clock` in a test), never
the global reactor or `time.time()`. What the node's process reactor offers as a whole is `INodeReactor`,
a make-believe interface in the manner of Twisted's own `_IReactorCommon`.
"""

from __future__ import annotations

from typing import TypeAlias

from twisted.internet.interfaces import (
    IDelayedCall,
    IReactorCore,
    IReactorPluggableNameResolver,
    IReactorTCP,
    IReactorThreads,
    IReactorTime,
    IReactorUDP,
)

# the names the rooms have used since before the interfaces were read by mypy
TimeSource: TypeAlias = IReactorTime
DelayedCall: TypeAlias = IDelayedCall


class TcpReactor(IReactorTCP, IReactorTime):
    """What a TCP node dials and waits with (the reactor and MemoryReactorClock provide it)."""


class INodeReactor(IReactorCore, TcpReactor, IReactorUDP, IReactorThreads, IReactorPluggableNameResolver):
    """Every reactor the node runs on provides these (the default epoll reactor does); not implemented here."""
