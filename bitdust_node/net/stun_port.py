"""The UDP datagrams port (`services/udp-datagrams/udp-port`, 8882): the I/O shell of the STUN exchange.

It answers every `1s` with the address the request came from, as official nodes do (a few a second
per sender IP: the answer is ten times the request, so a spoofed sender must not make this port a
reflector), sends my own `1s` requests from the same port (so answers name this port's mapping), and
hands every other datagram to whoever listens for answers (the STUN client), or counts it ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.protocol import DatagramProtocol

from bitdust_node.net.clock import TimeSource
from bitdust_node.net.ratelimit import RequestLimiter
from bitdust_node.wire import stun

# a node asks each server once a round, a round every few minutes
ANSWERS_PER_SECOND = 5.0
ANSWERS_BURST = 10

Address = tuple[str, int]
ReplyListener = Callable[[bytes, Address], object]


class StunPort(DatagramProtocol):
    def __init__(self, clock: TimeSource) -> None:
        self.limiter = RequestLimiter(clock, ANSWERS_PER_SECOND, ANSWERS_BURST)
        self.answered = 0
        self.limited = 0
        self.ignored = 0
        self.asked = 0
        self.send_failed = 0
        self._listener: ReplyListener | None = None

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        sender = (str(addr[0]), int(addr[1]))
        if stun.is_request(data):
            if not self.limiter.allow(sender[0]):
                self.limited += 1
                return
            self.answered += 1
            self._write(stun.encode_reply(*sender), sender)
            return
        if self._listener is None:
            self.ignored += 1
            return
        self._listener(data, sender)

    def send_request(self, address: Address) -> None:
        self.asked += 1
        self._write(stun.REQUEST, address)

    def listen_replies(self, listener: ReplyListener) -> Callable[[], None]:
        """Hand every datagram that is not a request to `listener`; returns the function that stops it."""
        self._listener = listener

        def stop() -> None:
            if self._listener is listener:
                self._listener = None

        return stop

    def _write(self, data: bytes, address: Address) -> None:
        transport: Any = self.transport
        if transport is None:
            return
        try:
            transport.write(data, address)
        except OSError:
            # an unreachable address (no route) costs one datagram, never the port
            self.send_failed += 1
