"""Whether the identity servers this node knows answer: one GET of each server's index, at most once a
minute, only while someone looks at a page that shows them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
from twisted.internet import defer

from bitdust_node.net.clock import TimeSource
from bitdust_node.net.http import Unreachable

# how long an answer (or its absence) is taken as current
FRESH_FOR = 60.0
PROBE_TIMEOUT = 5.0
# no setting names more servers than this; any beyond are not probed
MAX_SERVERS = 16


@attrs.frozen
class ProbeResult:
    answered: bool
    when: float
    detail: str


@attrs.define
class ServerProbes:
    """`http` has `get(url)` returning a reply with `.status` (CappedHttp), or raising Unreachable."""

    http: Any
    clock: TimeSource
    results: dict[str, ProbeResult] = attrs.field(factory=dict)
    _asking: set[str] = attrs.field(factory=set)

    def refresh(self, urls: Iterable[str]) -> None:
        """Ask the servers whose answer is older than FRESH_FOR; never waits for them."""
        now = self.clock.seconds()
        wanted = list(dict.fromkeys(urls))[:MAX_SERVERS]
        for stale in set(self.results) - set(wanted):
            del self.results[stale]
        for url in wanted:
            known = self.results.get(url)
            if url not in self._asking and (known is None or now - known.when >= FRESH_FOR):
                self._asking.add(url)
                defer.ensureDeferred(self._ask(url))

    async def _ask(self, url: str) -> None:
        try:
            reply = await self.http.get(url)
            result = ProbeResult(reply.status < 500, self.clock.seconds(), f"HTTP {reply.status}")
        except Unreachable as err:
            result = ProbeResult(False, self.clock.seconds(), str(err)[:200])
        finally:
            self._asking.discard(url)
        self.results[url] = result
