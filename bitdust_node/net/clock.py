"""The slice of the reactor that rooms wait with, typed for mypy (Clock and the reactor fit it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

from twisted.internet.interfaces import IReactorTime


class DelayedCall(Protocol):
    def active(self) -> bool: ...

    def cancel(self) -> None: ...


class TimeSource(Protocol):
    def seconds(self) -> float: ...

    def callLater(self, delay: float, callable: Callable[..., Any], *args: Any, **kw: Any) -> DelayedCall: ...


def reactor_time(clock: TimeSource) -> IReactorTime:
    """The same clock for Twisted's own APIs (`Deferred.addTimeout`, `LoopingCall.clock`), which want the
    zope interface that mypy cannot match against a Protocol."""
    return cast(IReactorTime, clock)
