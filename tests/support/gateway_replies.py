"""A gateway as a room's unit test needs it: handlers registered (and never called), answers recorded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet import defer

from bitdust_node.transport.interfaces import Inbound


@attrs.define
class Replies:
    """The few things a room asks of the gateway here: handlers registered, answers sent."""

    sent: list[tuple[str, bytes]] = attrs.field(factory=list)

    def register(self, command: str, handler: Callable[[Inbound], object]) -> Callable[[], None]:
        return lambda: None

    def reply(self, request: Inbound, command: str, payload: bytes = b"", **_: Any) -> defer.Deferred[None]:
        self.sent.append((command, payload))
        return defer.succeed(None)
