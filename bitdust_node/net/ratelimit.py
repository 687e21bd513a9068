"""Request limit per sender address: a DHT answer can be far larger than the request, so a node
must not answer without limit to one (possibly spoofed) address.

GCRA: one number per sender, the time its allowance is back to full; a sender whose time has
passed is forgotten (it is the same as a new one), so idle senders cost nothing.
"""

from __future__ import annotations

import attrs

from bitdust_node.net.clock import TimeSource

RATE = 100.0
BURST = 200
# senders remembered at most; the least recently heard one is forgotten first
MAX_SENDERS = 10_000


@attrs.define
class RequestLimiter:
    clock: TimeSource
    rate: float = RATE
    burst: int = BURST
    max_senders: int = MAX_SENDERS
    # sender -> when its allowance is full again; ordered from least to most recently heard
    _full_at: dict[object, float] = attrs.field(factory=dict)

    def allow(self, sender: object) -> bool:
        now = self.clock.seconds()
        full_at = max(self._full_at.pop(sender, now), now)
        # a small tolerance: the sum of many 1/rate steps drifts in floating point
        allowed = full_at - now <= (self.burst - 1) / self.rate + 1e-6
        self._full_at[sender] = full_at + 1 / self.rate if allowed else full_at
        self._forget(now)
        return allowed

    def _forget(self, now: float) -> None:
        """Drop senders back at full allowance, oldest first, and any over the cap."""
        while self._full_at:
            oldest = next(iter(self._full_at))
            if self._full_at[oldest] > now and len(self._full_at) <= self.max_senders:
                return
            del self._full_at[oldest]

    def __len__(self) -> int:
        return len(self._full_at)
