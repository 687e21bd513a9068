"""Caps on the connections a listening port takes: in all, and from one address.

Every connection holds some memory (a partial frame, an HTTP head, a request being read) before anything it
says is verified; with no cap, one address could open thousands. A newcomer over a cap is closed at once and
counted. The loopback addresses a reverse proxy on this machine connects from (127.0.0.1, ::1) pass the
per-address cap: every client behind Apache or nginx comes from there, and the total still holds them. An IPv4
client seen on an IPv6 socket (::ffff:a.b.c.d) counts as its IPv4 address; IPv6 clients count by their /64,
which one host may hold whole.
The port's wrapping factory asks `admit` for each new connection and says `gone` when it closes (net/deadline.py
does, so a connection passes through one wrapper, not two). (twisted.protocols.policies.LimitConnectionsByPeer
indexes addresses as tuples, which Twisted no longer gives, so it cannot serve.)
"""

from __future__ import annotations

import collections
import ipaddress

# what one listening port takes at most, and from one address
DEFAULT_TOTAL = 2048
DEFAULT_PER_HOST = 64
# a reverse proxy on this machine connects from these
LOCAL_PROXY_HOSTS = frozenset({"127.0.0.1", "::1"})


class ConnectionCaps:
    def __init__(self, total: int = DEFAULT_TOTAL, per_host: int = DEFAULT_PER_HOST) -> None:
        self.total = total
        self.per_host = per_host
        self.open = 0
        self.by_host: collections.Counter[str] = collections.Counter()
        self.refused: collections.Counter[str] = collections.Counter()

    def admit(self, host: str) -> bool:
        """Whether a new connection from `host` may open (then counted until `gone`), else counted refused."""
        if self.open >= self.total:
            self.refused["total"] += 1
            return False
        key = client_key(host)
        if key not in LOCAL_PROXY_HOSTS and self.by_host[key] >= self.per_host:
            self.refused["per_host"] += 1
            return False
        self.open += 1
        self.by_host[key] += 1
        return True

    def gone(self, host: str) -> None:
        """A connection `admit` let in has closed."""
        key = client_key(host)
        self.open -= 1
        self.by_host[key] -= 1
        if not self.by_host[key]:
            del self.by_host[key]


def client_key(host: str) -> str:
    """What a client's connections are counted under: its IPv4 address (also when it comes as ::ffff:a.b.c.d),
    its IPv6 /64, or the text as given for anything else."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        if address == ipaddress.IPv6Address("::1"):
            return "::1"
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
