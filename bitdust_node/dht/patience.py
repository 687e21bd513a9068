"""How long a caller waits on one DHT call before going on without it.

A dead or unreachable contact costs the whole RPC timeout (10 s, then a retry) before the call fails.
Lookups and fan-outs do not wait that long: a call unanswered for a few round trips is *stalled*
(libtorrent's "short timeout", 1 s there): the caller asks someone else, the call stays open and a late
answer is still used; only the real timeout fails it (and takes the contact out of the routing table).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from bitdust_node.net.clock import TimeSource

Address = tuple[str, int]

# the shortest stall time: answers on a busy machine come hundreds of milliseconds late (libtorrent: 1 s)
STALL_MIN = 1.0
# a call unanswered this many smoothed round trips is stalled
STALL_ROUND_TRIPS = 3.0


@attrs.define
class RoundTrips:
    """Smoothed round-trip time of answered calls and its variation, as TCP keeps them (RFC 6298)."""

    smoothed: float | None = None
    variation: float = 0.0
    samples: int = 0

    def sample(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.samples += 1
        if self.smoothed is None:
            self.smoothed, self.variation = seconds, seconds / 2
            return
        self.variation = 0.75 * self.variation + 0.25 * abs(self.smoothed - seconds)
        self.smoothed = 0.875 * self.smoothed + 0.125 * seconds

    def stall_after(self, limit: float) -> float:
        """Seconds after which an unanswered call is stalled: a few round trips (or TCP's RTO if the
        round trips vary more), at least STALL_MIN, never more than `limit` (the RPC timeout)."""
        wait = STALL_MIN
        if self.smoothed is not None:
            wait = max(wait, STALL_ROUND_TRIPS * self.smoothed, self.smoothed + 4 * self.variation)
        return min(wait, limit)


def never_silent(_address: Address) -> bool:
    return False


@attrs.frozen
class Patience:
    """What a lookup or fan-out needs to stop waiting on stalled calls."""

    clock: TimeSource
    stall_after: float
    # whether an address already left a call unanswered for stall_after: a new call to it is stalled at once
    silent: Callable[[Address], bool] = never_silent
