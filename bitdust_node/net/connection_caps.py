"""Caps on the connections a listening port takes: in all, and from one address.

Every connection holds some memory (a partial frame, an HTTP head, a request being read) before anything it
says is verified; with no cap, one address could open thousands. A newcomer over a cap is closed at once and
counted. The loopback addresses a reverse proxy on this machine connects from (127.0.0.1, ::1) pass the
per-address cap: every client behind Apache or nginx comes from there, and the total still holds them.
(twisted.protocols.policies.LimitConnectionsByPeer indexes addresses as tuples, which Twisted no longer
gives, so it cannot serve.)
"""

from __future__ import annotations

import collections
from typing import Any

from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

# what one listening port takes at most, and from one address
DEFAULT_TOTAL = 2048
DEFAULT_PER_HOST = 64
# a reverse proxy on this machine connects from these
LOCAL_PROXY_HOSTS = frozenset({"127.0.0.1", "::1"})


class CappedProtocol(ProtocolWrapper):
    # the address it is counted under; None once uncounted
    counted_host: str | None = None


class ConnectionCaps(WrappingFactory):
    protocol = CappedProtocol
    noisy = False

    def __init__(self, wrapped: Any, total: int = DEFAULT_TOTAL, per_host: int = DEFAULT_PER_HOST) -> None:
        super().__init__(wrapped)
        self.total = total
        self.per_host = per_host
        self.open = 0
        self.by_host: collections.Counter[str] = collections.Counter()
        self.refused: collections.Counter[str] = collections.Counter()

    def buildProtocol(self, addr: Any) -> Any:  # a CappedProtocol, or None: Twisted closes the connection
        host = str(getattr(addr, "host", ""))
        if self.open >= self.total:
            self.refused["total"] += 1
            return None
        if host not in LOCAL_PROXY_HOSTS and self.by_host[host] >= self.per_host:
            self.refused["per_host"] += 1
            return None
        built = super().buildProtocol(addr)
        if isinstance(built, CappedProtocol):
            built.counted_host = host
            self.open += 1
            self.by_host[host] += 1
        return built

    def unregisterProtocol(self, p: Any) -> None:
        super().unregisterProtocol(p)
        host = getattr(p, "counted_host", None)
        if host is None:
            return
        p.counted_host = None
        self.open -= 1
        self.by_host[host] -= 1
        if not self.by_host[host]:
            del self.by_host[host]
