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


@attrs.define
class ByteRate:
    """A byte budget refilled at `rate` bytes per second, holding at most `burst`; rate 0 means no limit."""

    clock: TimeSource
    rate: float
    burst: float
    _level: float = 0.0
    _at: float | None = None

    def take(self, size: int) -> bool:
        """Spend `size` bytes if the budget has them (a packet larger than the burst passes on a full budget)."""
        if self.rate <= 0:
            return True
        now = self.clock.seconds()
        if self._at is None:
            self._level, self._at = self.burst, now
        self._level = min(self.burst, self._level + (now - self._at) * self.rate)
        self._at = now
        if self._level >= min(size, self.burst):
            self._level -= size  # may go below zero: a large packet is paid back before the next passes
            return True
        return False
