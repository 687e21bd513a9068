"""The slice of the reactor the DHT waits with, typed for mypy (Clock and the reactor fit it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable


# checkable: a typed machine's state that holds a timer is checked against it
@runtime_checkable
class DelayedCall(Protocol):
    def active(self) -> bool: ...

    def cancel(self) -> None: ...


class TimeSource(Protocol):
    def seconds(self) -> float: ...

    def callLater(self, delay: float, callable: Callable[..., Any], *args: Any, **kw: Any) -> DelayedCall: ...
