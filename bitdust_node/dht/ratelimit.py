"""Token buckets per sender address: a DHT answer can be far larger than the request, so a
node must not answer without limit to one (possibly spoofed) address."""

from __future__ import annotations

from collections import OrderedDict

import attrs

from bitdust_node.dht.clock import TimeSource

RATE = 100.0
BURST = 200.0
# senders remembered; the least recently heard one is forgotten first
MAX_SENDERS = 10_000


@attrs.define
class RequestLimiter:
    clock: TimeSource
    rate: float = RATE
    burst: float = BURST
    max_senders: int = MAX_SENDERS
    _buckets: OrderedDict[object, tuple[float, float]] = attrs.field(factory=OrderedDict)

    def allow(self, sender: object) -> bool:
        """Take one token from the sender's bucket; False when it is empty."""
        now = self.clock.seconds()
        tokens, last = self._buckets.pop(sender, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[sender] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self.max_senders:
            self._buckets.popitem(last=False)
        return allowed
