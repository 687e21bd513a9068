"""The route through my router (PROTOCOL-P2P.md 4.4, 4.5): each of my packets goes to it sealed in a RelayOut
and is awaited until its RelayAck (or RelayFail, or silence); what others send me comes from it as RelayIn.
A RelayFail or Fail `route not exist` says the router forgot my route: the route is lost.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

from twisted.internet import defer
from twisted.logger import Logger

from bitdust_node.crypto import keys
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.net.clock import TimeSource
from bitdust_node.proxy import relay
from bitdust_node.transport.errors import TransportError
from bitdust_node.transport.interfaces import Inbound, PacketNetwork
from bitdust_node.transport.pending import Awaited, PendingFull, PendingReplies
from bitdust_node.wire import packet_fast
from bitdust_node.wire.identity_xml import Identity
from bitdust_node.wire.packet import Packet
from bitdust_node.wire.tcp_frames import FileBytes, joined

log = Logger()
# a router that answers this says it has no route for me (any more)
ROUTE_GONE = (relay.ROUTE_NOT_EXIST, relay.ROUTE_CLOSED)
# what a RelayAck may take beyond the relayed packet's own timeout: the router's delivery to the receiver
ACK_MARGIN = 10.0


class RelayedRoute:
    """The gateway's OutboundRoute while a router routes me, and what that router sends me."""

    def __init__(
        self,
        gateway: PacketNetwork,
        me: MyIdentityHolder,
        router: Identity,
        clock: TimeSource,
        counters: collections.Counter[str],
        lost: Callable[[str], None],
        max_awaiting: int = 10_000,
        relay_timeout: float = 30.0,
    ) -> None:
        self.gateway = gateway
        self.me = me
        self.router = router
        self.router_key = keys.public_key_from_openssh(router.publickey)
        self.since = clock.seconds()
        self.counters = counters
        self.relay_timeout = relay_timeout
        # told once when the router says it forgot my route; dropped when the route closes
        self._lost: Callable[[str], None] | None = lost
        self._acks: PendingReplies[None] = PendingReplies(
            clock, max_awaiting, self._ack_timed_out, "too many relayed packets await their RelayAck",
            once_per_node=True)

    @property
    def awaiting(self) -> int:
        """Relayed packets whose RelayAck has not come yet."""
        return len(self._acks)

    def close(self) -> None:
        """The route is over: what still awaits its RelayAck fails now instead of when its time is up."""
        self._lost = None
        self._acks.fail_all(TransportError(f"no longer routed through {self.router.sources[0]}"))

    # -- out (OutboundRoute)

    def send(
        self, packet: Packet, data: FileBytes, remote: Identity, wide: bool, timeout: float | None,
    ) -> defer.Deferred[None] | None:
        if remote.publickey == self.router.publickey:
            return None  # to the router itself (by its key: it may have moved): straight on my connection to it
        return self.relay_out(packet, data, remote, wide, timeout)

    def relay_out(
        self, packet: Packet, data: FileBytes, remote: Identity, wide: bool, timeout: float | None,
    ) -> defer.Deferred[None]:
        """The packet in a RelayOut to my router; fires on its RelayAck, fails on RelayFail or silence."""
        receiver = remote.sources[0]
        wait = (timeout or self.relay_timeout) + ACK_MARGIN
        try:
            acked = self._acks.wait(packet.packet_id, receiver, "RelayOut", wait)
        except PendingFull as err:
            return defer.fail(err)
        me = self.me.require()
        # joined only when it is relayed: it is encrypted then
        envelope = relay.Envelope(me.idurl, receiver, joined(data), wide, timeout)
        payload = relay.seal(relay.encode_envelope(envelope), relay.ROUTED_OUTGOING, me.idurl, self.router_key, me.key)
        wrapped = self.gateway.outbox("RelayOut", self.router.sources[0], payload, packet_id=packet.packet_id,
                                      owner_id=packet.owner_id)
        self.counters["relayed_out"] += 1
        sent = self.gateway.send_data(packet_fast.serialize(wrapped), self.router)
        sent.addErrback(lambda failure: acked.errback(failure) if not acked.called else None)
        return acked

    def _ack_timed_out(self, awaited: Awaited[None]) -> Exception:
        self.counters["relay_timed_out"] += 1
        return TransportError(f"no RelayAck from the router in {awaited.timeout:g} s")

    # -- in, from the router

    def from_router(self, inbound: Inbound) -> bool:
        # by key: a router whose identity moved to other servers is still my router
        return inbound.for_me and inbound.creator.publickey == self.router.publickey

    def relay_in_received(self, inbound: Inbound) -> defer.Deferred[None] | None:
        """A packet someone sent me through my router: opened and taken in as if it came directly."""
        if not self.from_router(inbound):
            self.counters["relay_in_not_from_router"] += 1
            return None
        try:
            inner = relay.unseal(inbound.packet.payload, self.me.require().key, relay.ROUTED_INCOMING)
        except relay.RelayFormatError as err:
            self.counters["relay_in_invalid"] += 1
            log.info("RelayIn from my router not opened: {why}", why=str(err))
            return None
        self.counters["relayed_in"] += 1
        return self.gateway.file_received(inner)

    def result_received(self, inbound: Inbound) -> None:
        """RelayAck or RelayFail to one of my RelayOuts."""
        if not self.from_router(inbound):
            return
        try:
            result = relay.decode_result(relay.unseal(inbound.packet.payload, self.me.require().key,
                                                      relay.ROUTED_INCOMING))
        except relay.RelayFormatError as err:
            log.info("relay result from my router not read: {why}", why=str(err))
            return
        if inbound.packet.command == "RelayAck":
            self._acks.answer(result.packet_id, (result.receiver,), "RelayAck", None)
            return
        self.counters["relay_failed"] += 1
        error = TransportError(f"the router could not deliver {result.command}({result.packet_id}): {result.error}")
        self._acks.fail(result.packet_id, error, asked=result.receiver)
        # a request it carried will get no answer either
        self.gateway.fail_pending(result.packet_id, result.receiver, error)
        if result.error in ROUTE_GONE:
            self._route_gone("the router says " + result.error)

    def fail_received(self, inbound: Inbound) -> None:
        """The router's Fail `route not exist` to a RelayOut: it forgot my route."""
        text = inbound.packet.payload.decode("utf-8", "replace")
        if self.from_router(inbound) and text in ROUTE_GONE:
            self._acks.fail(inbound.packet.packet_id, TransportError("the router says " + text))
            self._route_gone("the router says " + text)

    def _route_gone(self, why: str) -> None:
        lost, self._lost = self._lost, None
        if lost is not None:
            lost(why)
