"""Telling the peers I talk to that my identity moved (the official `propagate` after a rotation): an Identity
packet carrying my new identity, sent wide to each, its Ack awaited with a timeout. Those told first (my
router, through which the others are reached) are told before the rest; a few at a time."""

from __future__ import annotations

import collections
from collections.abc import Callable

from twisted.internet import defer
from twisted.logger import Logger

from bitdust_node.errors import BitDustError
from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.identity.my_identity import MyIdentity
from bitdust_node.net.clock import TimeSource
from bitdust_node.transport.interfaces import PacketNetwork
from bitdust_node.wire import identity_xml

log = Logger()
ACK_TIMEOUT = 20.0
FETCH_TIMEOUT = 15.0
AT_ONCE = 8
# (first, others): the IDURLs of the peers to tell
PeerLister = Callable[[], tuple[list[str], list[str]]]


class IdentityAnnouncer:
    def __init__(
        self, gateway: PacketNetwork, me: MyIdentityHolder, cache: IdentityCache, clock: TimeSource, peers: PeerLister,
    ) -> None:
        self.gateway = gateway
        self.me = me
        self.cache = cache
        self.clock = clock
        self.peers = peers
        self.counters: collections.Counter[str] = collections.Counter()

    def announce(self, moved: MyIdentity) -> defer.Deferred[int]:
        """Tell every peer; fires with how many Acked (never fails)."""
        return defer.ensureDeferred(self._announce(moved))

    async def _announce(self, moved: MyIdentity) -> int:
        first, others = self.peers()
        told = 0
        for group in (first, others):
            peers = [p for p in group if not self.me.answers_to(p)]
            limit = defer.DeferredSemaphore(AT_ONCE)
            results = await defer.gatherResults([limit.run(self._tell, p, moved) for p in peers], consumeErrors=True)
            told += sum(1 for ok in results if ok)
        log.info("my identity revision {rev} told to {told} of {all} peers", rev=moved.identity.revision, told=told,
                 all=len(first) + len(others))
        return told

    async def _tell(self, idurl: str, moved: MyIdentity) -> bool:
        try:
            peer = self.cache.get(idurl)
            if peer is None:
                fetching = defer.ensureDeferred(self.cache.fetch(idurl))
                fetching.addTimeout(FETCH_TIMEOUT, self.clock)
                peer = await fetching
            packet = self.gateway.outbox("Identity", peer.sources[0], moved.xml,
                                         packet_id="propagate:" + self.gateway.new_packet_id())
            await self.gateway.request(packet, peer, wide=True, timeout=ACK_TIMEOUT)
        except (BitDustError, defer.TimeoutError, identity_xml.IdentityFormatError) as err:
            self.counters["not_told"] += 1
            log.info("{peer} not told of my move: {why}", peer=idurl, why=str(err) or repr(err))
            return False
        self.counters["told"] += 1
        return True
