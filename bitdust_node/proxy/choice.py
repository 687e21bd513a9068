"""Which router a routed user asks next (PROTOCOL-P2P.md 4.2): one of `preferred-routers`, else one an earlier
lookup found, else a fresh one from DHT layer 2. A router that refused, timed out or died is set aside for a
while, so failing over asks another one; a router found earlier comes first, so failing over does not wait for
DHT timeouts on the one that just died.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Callable
from typing import Protocol

import attrs
from twisted.internet import defer
from twisted.logger import Logger

from bitdust_node.errors import BitDustError
from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.net.clock import TimeSource
from bitdust_node.wire.identity_xml import Identity

log = Logger()
ROUTERS_LAYER = 2
# routers left, remembered for status; routers found, remembered for failing over
PAST_ROUTERS_KEPT = 20
KNOWN_ROUTERS_KEPT = 50


class RouterLookup(Protocol):
    async def random_nodes(self, layer_id: int, count: int = 1) -> list[Identity]: ...


@attrs.frozen
class PastRouter:
    """A router this node stopped using: when and why."""

    router: str
    left: float
    why: str


def tcp_contact(identity: Identity) -> str | None:
    return next((c for c in identity.contacts if c.startswith("tcp://")), None)


def _reachable(router: Identity) -> Identity:
    """The router, if this node can keep a connection to it (its tcp contact)."""
    if tcp_contact(router) is None:
        raise BitDustError(f"proxy router {router.sources[0]} has no tcp contact")
    return router


class RouterChoice:
    """Finds the next router to ask, and remembers the ones that failed (RouterFinder of the receiver)."""

    def __init__(
        self,
        me: MyIdentityHolder,
        cache: IdentityCache,
        lookup: RouterLookup,
        preferred: Callable[[], list[str]],
        clock: TimeSource,
        set_aside_for: float = 60.0,
        candidates: int = 5,
        rng: random.Random | None = None,
    ) -> None:
        self.me = me
        self.cache = cache
        self.lookup = lookup
        self.preferred = preferred
        self.clock = clock
        self.set_aside_for = set_aside_for
        self.candidates = candidates
        self.rng = rng or random.Random()
        # IDURL -> not asked again before this time (unless it is the only one)
        self.aside: dict[str, float] = {}
        # routers found in DHT layer 2, by IDURL (when found): asked first when the current one fails
        self.known: dict[str, float] = {}
        self.history: collections.deque[PastRouter] = collections.deque(maxlen=PAST_ROUTERS_KEPT)

    def find(self) -> defer.Deferred[Identity]:
        """The next router to ask; fails when none can be had now."""
        return defer.ensureDeferred(self._find())

    def set_aside(self, router: Identity, why: str) -> None:
        idurl = router.sources[0]
        now = self.clock.seconds()
        self.aside = {u: until for u, until in self.aside.items() if until > now}
        self.aside[idurl] = now + self.set_aside_for
        self.history.append(PastRouter(idurl, now, why))
        log.info("proxy router {router} set aside: {why}", router=idurl, why=why)

    async def _find(self) -> Identity:
        now = self.clock.seconds()
        aside = {idurl for idurl, until in self.aside.items() if until > now}
        mine = self.me.require().idurl
        choices = [u for u in self.preferred() if u != mine and u not in aside]
        if choices:
            return _reachable(await self._router_identity(self.rng.choice(choices)))
        known = [idurl for idurl in self.known if idurl not in aside]
        if known:
            return _reachable(await self._router_identity(self.rng.choice(known)))
        found = await self.lookup.random_nodes(ROUTERS_LAYER, self.candidates)
        usable = [i for i in found if i.sources[0] != mine and tcp_contact(i) is not None]
        for identity in usable[: self.candidates]:
            self._remember(identity.sources[0], now)
        fresh = [i for i in usable if i.sources[0] not in aside]
        if not fresh:
            # every router refused or failed lately: wait (OFFLINE, with backoff) instead of asking again at once
            raise BitDustError(f"no proxy router to ask in DHT layer 2 ({len(usable)} found, all set aside)")
        return self.rng.choice(fresh)

    def _remember(self, idurl: str, now: float) -> None:
        self.known.pop(idurl, None)
        self.known[idurl] = now
        while len(self.known) > KNOWN_ROUTERS_KEPT:
            del self.known[next(iter(self.known))]

    async def _router_identity(self, idurl: str) -> Identity:
        """The router's identity fresh from its server, or the cached one while the server cannot be reached."""
        try:
            return await self.cache.fetch(idurl)
        except BitDustError:
            cached = self.cache.get(idurl)
            if cached is None:
                raise
            return cached
