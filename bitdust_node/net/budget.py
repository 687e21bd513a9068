"""The one node-wide budget for what unverified or unfinished input may hold (DESIGN.md, rules of the house).

Unfinished incoming files (transport/connection.py), packets waiting for their creator's identity or a
signature check (transport/gateway.py), packets a router holds for a routed user (proxy/router.py),
identity uploads an identity server is reading (identity/server_tcp.py, server_http.py) and the parts of
multi-datagram DHT messages (dht/datagram.py) take their bytes from it, each under a holder: the address a peer
connects from, or the route. Anyone may take
what is free. Once all is taken, a newcomer gets room only by taking back unfinished files from whoever
holds the most (its newest file first), and only from a holder that holds more than the newcomer would
after; else the newcomer is refused. What cannot be taken back (a packet queued for a routed user) stays
within a quarter of the total for each holder. So one address, or a few with many connections, cannot keep
the others out, and a flood ends in refusals of the newest, counted by kind, not in memory.

A claim may also be asked without taking anything back (`evict=False`) and within a part of the total
(`within`): an unfinished file takes at most half the budget that way, else it waits for room (its connection is
not read meanwhile, transport/connection.py) before anyone's file is taken back. So many honest senders at once
are slowed down by TCP, not dropped, and the other half stays for what cannot wait (packets being verified,
packets a router relays). `when_released` says when some room may be back.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import attrs

# `services/network/receive-budget`: a node on a small machine stays small, a 64 MiB Data packet still fits
DEFAULT_TOTAL = 64 * 1024 * 1024
# the holder of packets that came without a connection of their own (unwrapped from a relay)
RELAYED = "relayed"
# a holder's claims that cannot be taken back stay within this part of the total
UNEVICTABLE_PART = 4
# what can wait for room (unfinished files) takes at most this part of the total before it waits
WAITING_PART = 2


def holder_of(session: object | None) -> str:
    """Whom a packet's bytes are held for: the address its connection comes from (TcpConnection.peer_host)."""
    host = getattr(session, "peer_host", None)
    return host if isinstance(host, str) and host else RELAYED


@attrs.define(eq=False)
class Claim:
    """Bytes one holder keeps against the budget until it releases them (or the budget takes them back)."""

    budget: ReceiveBudget
    holder: str
    kind: str
    size: int
    serial: int
    # called when the budget takes the bytes back for a smaller holder; None: never taken back
    on_evicted: Callable[[], None] | None = None
    released: bool = False

    def release(self) -> None:
        """Give the bytes back; a second call, or one after an eviction, does nothing."""
        self.budget.release(self)


class ReceiveBudget:
    """Bytes held by holders, at most `total` together; refusals and evictions counted by kind."""

    def __init__(self, total: int = DEFAULT_TOTAL) -> None:
        self.total = total
        self.held = 0
        self.peak = 0
        self._serial = 0
        self._by_holder: collections.Counter[str] = collections.Counter()
        self._by_kind: collections.Counter[str] = collections.Counter()
        self._unevictable: collections.Counter[str] = collections.Counter()
        # holder -> its claims that may be taken back, oldest first
        self._evictable: dict[str, dict[int, Claim]] = {}
        self.refused: collections.Counter[str] = collections.Counter()
        self.refused_bytes: collections.Counter[str] = collections.Counter()
        self.evicted: collections.Counter[str] = collections.Counter()
        # called once at the next release (connections waiting for room), and how many waited so far
        self._release_waiters: list[Callable[[], None]] = []
        self.waits = 0
        # bytes of reads kept by connections that wait for room: at most a quarter of the total
        self.waiting_reads = 0

    def claim(
        self, holder: str, size: int, kind: str, on_evicted: Callable[[], None] | None = None, evict: bool = True,
        count: bool = True, within: int | None = None,
    ) -> Claim | None:
        """`size` bytes for `holder`, or None (counted unless `count` is False: the caller waits and asks again)
        when they do not fit in the total (or in `within` of it) even after taking back what a larger holder may
        lose (nothing is taken back unless `evict`). `on_evicted` makes the claim one the budget may take back
        later."""
        beyond_part = on_evicted is None and self._unevictable[holder] + size > self.total // UNEVICTABLE_PART
        if evict and not beyond_part and size <= self.total < self.held + size:
            self._make_room(holder, size)
        # checked again after making room: what was taken back may have run code that claimed some of it
        if beyond_part or self.held + size > min(self.total, self.total if within is None else within):
            if count:
                self.refused[kind] += 1
                self.refused_bytes[kind] += size
            return None
        self._serial += 1
        claim = Claim(self, holder, kind, size, self._serial, on_evicted)
        self.held += size
        self.peak = max(self.peak, self.held)
        self._by_holder[holder] += size
        self._by_kind[kind] += size
        if on_evicted is not None:
            self._evictable.setdefault(holder, {})[claim.serial] = claim
        else:
            self._unevictable[holder] += size
        return claim

    def release(self, claim: Claim) -> None:
        if claim.released:
            return
        claim.released = True
        self.held -= claim.size
        self._by_kind[claim.kind] -= claim.size
        if not self._by_kind[claim.kind]:
            del self._by_kind[claim.kind]
        self._by_holder[claim.holder] -= claim.size
        if not self._by_holder[claim.holder]:
            del self._by_holder[claim.holder]
        if claim.on_evicted is None:
            self._unevictable[claim.holder] -= claim.size
            if not self._unevictable[claim.holder]:
                del self._unevictable[claim.holder]
        evictable = self._evictable.get(claim.holder)
        if evictable is not None and evictable.pop(claim.serial, None) is not None and not evictable:
            del self._evictable[claim.holder]
        if self._release_waiters:
            waiters, self._release_waiters = self._release_waiters, []
            for waiter in waiters:
                waiter()

    def when_released(self, waiter: Callable[[], None]) -> Callable[[], None]:
        """Call `waiter` once, at the next release (it must not claim from within: schedule that); the call
        returned forgets it."""
        self._release_waiters.append(waiter)
        self.waits += 1

        def forget() -> None:
            if waiter in self._release_waiters:
                self._release_waiters.remove(waiter)

        return forget

    def _make_room(self, holder: str, size: int) -> None:
        """Take back enough unfinished files from larger holders for `size` more bytes of `holder`, or nothing
        at all when that cannot be done."""
        newcomer = self._by_holder[holder] + size
        holding = dict(self._by_holder)
        taken = {h: list(claims.values()) for h, claims in self._evictable.items() if h != holder}
        victims: list[Claim] = []
        missing = self.held + size - self.total
        while missing > 0:
            larger = [h for h, claims in taken.items() if claims and holding[h] > newcomer]
            if not larger:
                return
            largest = max(larger, key=lambda h: holding[h])
            victim = taken[largest].pop()  # its newest
            holding[largest] -= victim.size
            missing -= victim.size
            victims.append(victim)
        for victim in victims:
            if victim.released:
                continue  # let go meanwhile, by what an earlier eviction set off
            self.release(victim)
            self.evicted[victim.kind] += 1
            assert victim.on_evicted is not None
            victim.on_evicted()

    def held_by(self, holder: str) -> int:
        return self._by_holder[holder]

    def resize(self, total: int) -> None:
        """A new total (the setting changed): what is held stays, new claims meet the new total."""
        self.total = total

    def status(self) -> dict[str, Any]:
        """The figures /service/list/v1 shows under service_network and /metrics exports."""
        return {
            "total": self.total,
            "held": self.held,
            "peak": self.peak,
            "holders": len(self._by_holder),
            "held_by_kind": dict(self._by_kind),
            "refused": dict(self.refused),
            "refused_bytes": dict(self.refused_bytes),
            "evicted": dict(self.evicted),
            "waits": self.waits,
            "waiting": len(self._release_waiters),
        }
