"""A process's output as it comes, for tests that read what a real node wrote (its log on stdout)."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, protocol


class ProcessOutput(protocol.ProcessProtocol):
    """stdout and stderr together, and a Deferred that fires when the process has ended."""

    def __init__(self) -> None:
        self.out = b""
        self.ended: defer.Deferred[None] = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    errReceived = outReceived

    def processEnded(self, reason: Any) -> None:
        self.ended.callback(None)
