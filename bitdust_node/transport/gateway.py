"""Packets in and out (PROTOCOL-P2P.md sections 2 and 3.2).

Out: a packet signed with my key goes to the peer's contacts (the best one, or every one when `wide`).
In: a file from a transport is parsed, its creator's identity found (carried by an Identity packet,
cached, or fetched from its identity server), its signature verified; only then does anyone see it:
the request it answers (same PacketID, an allowed reply, from the node asked, to me), or else the
handlers registered for its command. Every wait has a timeout, every queue a bound.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any, Protocol

import attrs
from cryptography.hazmat.primitives.asymmetric import rsa
from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.failure import Failure

from bitdust_node.crypto import keys
from bitdust_node.crypto.packet_signing import packet_signature_valid, sign_packet
from bitdust_node.errors import BitDustError
from bitdust_node.identity.cache import IdentityCache, IdentityMismatch
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.net.budget import Claim, ReceiveBudget, holder_of
from bitdust_node.net.clock import TimeSource
from bitdust_node.transport.errors import NoContacts, TransportError
from bitdust_node.transport.interfaces import (
    DEFAULT_TIMEOUT,
    Forwarder,
    Handler,
    Inbound,
    OutboundRoute,
    Session,
    Timeout,
)
from bitdust_node.transport.pending import Awaited, PendingFull, PendingReplies
from bitdust_node.wire import identity_xml, packet_fast
from bitdust_node.wire import packet as wire
from bitdust_node.wire.identity_xml import Identity
from bitdust_node.wire.packet import Packet
from bitdust_node.wire.tcp_frames import Chunks, FileBytes, file_size

log = Logger()
IDENTITY_FETCH_TIMEOUT = 15.0


class PeerTransport(Protocol):
    """One way to carry a file to a contact (the TCP transport; the proxy client later)."""

    proto: str

    def send_to(
        self, contact: str, data: FileBytes, on_written: Callable[[], None] | None = None,
    ) -> defer.Deferred[None]: ...


class _Dropped(Exception):
    """A packet refused before anyone sees it: the reason it is counted under, and what to log."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@attrs.define
class GatewayLimits:
    max_pending_requests: int = 10_000
    # packets waiting for their creator's identity or a signature check in a thread, at once
    max_verifying: int = 256
    max_public_keys: int = 4096
    # payloads from this size are verified in a worker thread (a reactor without threads sets it out of reach)
    thread_verify_from: int = 256 * 1024


class Gateway:
    def __init__(
        self, clock: TimeSource, me: MyIdentityHolder, cache: IdentityCache, limits: GatewayLimits | None = None,
        budget: ReceiveBudget | None = None,
    ) -> None:
        self.clock = clock
        self.me = me
        self.cache = cache
        self.limits = limits or GatewayLimits()
        # the node's receive budget: packets waiting for verification hold their bytes against it
        self.budget = budget if budget is not None else ReceiveBudget()
        self.transports: dict[str, PeerTransport] = {}
        self.handlers: dict[str, list[Handler]] = collections.defaultdict(list)
        self._pending: PendingReplies[Packet] = PendingReplies(
            clock, self.limits.max_pending_requests, self._timed_out, "too many requests are waiting for answers")
        self._verifying = 0
        self._public_keys: dict[str, rsa.RSAPublicKey] = {}
        self.ids = wire.UniqueIds(clock.seconds())
        self.counters: collections.Counter[str] = collections.Counter()
        self.dropped: collections.Counter[str] = collections.Counter()
        # proxy routers' hooks: take verified packets addressed to someone else (True = taken)
        self._forwarders: list[Forwarder] = []
        # a routed user's route: carries my outgoing packets through its router
        self._route: OutboundRoute | None = None

    # -- wiring

    def attach(self, transport: PeerTransport) -> Callable[[], None]:
        self.transports[transport.proto] = transport

        def detach() -> None:
            if self.transports.get(transport.proto) is transport:
                del self.transports[transport.proto]

        return detach

    def new_packet_id(self) -> str:
        return self.ids.next()

    def add_forwarder(self, forwarder: Forwarder) -> Callable[[], None]:
        self._forwarders.append(forwarder)

        def withdraw() -> None:
            if forwarder in self._forwarders:
                self._forwarders.remove(forwarder)

        return withdraw

    def use_route(self, route: OutboundRoute) -> Callable[[], None]:
        self._route = route

        def leave() -> None:
            if self._route is route:
                self._route = None

        return leave

    def register(self, command: str, handler: Handler) -> Callable[[], None]:
        self.handlers[command].append(handler)

        def unregister() -> None:
            if handler in self.handlers[command]:
                self.handlers[command].remove(handler)

        return unregister

    # -- out

    def outbox(
        self, command: str, remote_id: str, payload: bytes, packet_id: str | None = None, owner_id: str | None = None,
        payload_is_base64: bool = False,
    ) -> Packet:
        """A packet from me, signed with my master key (KeyID `master$<my global id>`); `payload_is_base64` only
        for a payload the caller has just base64-encoded (it is then framed unchecked)."""
        me = self.me.require()
        unsigned = Packet(
            command=command,
            owner_id=owner_id or me.idurl,
            creator_id=me.idurl,
            packet_id=packet_id or self.ids.next(),
            date=wire.packet_date(self.clock.seconds()),
            payload=payload,
            remote_id=remote_id,
            key_id=me.key_id,
            payload_is_base64=payload_is_base64,
        )
        return sign_packet(unsigned, me.key)

    def send(
        self, packet: Packet, remote: Identity, wide: bool = False, timeout: float | None = None,
    ) -> defer.Deferred[None]:
        """Hand the packet to the peer: its first usable contact (then the next on failure), or all when `wide`;
        through my router instead when I have one."""
        data = packet_fast.serialize_parts(packet)
        self.counters["packets_out"] += 1
        if self._route is not None:
            routed = self._route.send(packet, data, remote, wide, timeout)
            if routed is not None:
                return routed
        return self.send_data(data, remote, wide)

    def send_data(
        self, data: FileBytes, remote: Identity, wide: bool = False, on_written: Callable[[], None] | None = None,
    ) -> defer.Deferred[None]:
        """Send a serialized packet (mine or one I forward unchanged) straight to the peer's contacts;
        `on_written` is told (at least once) when it no longer waits in this node (TcpConnection.send_file)."""
        contacts = [c for c in remote.contacts if c.split("://", 1)[0] in self.transports]
        if not contacts:
            if on_written is not None:
                on_written()
            return defer.fail(NoContacts(f"{remote.sources[0]} has no contact this node can use"))
        if wide:
            sends = [self._send_to(c, data, on_written) for c in contacts]
            done = defer.DeferredList(sends, consumeErrors=True)
            return done.addCallback(lambda results: _any_ok(results, remote))
        return self._send_first(contacts, data, on_written)

    def _send_to(
        self, contact: str, data: FileBytes, on_written: Callable[[], None] | None = None,
    ) -> defer.Deferred[None]:
        transport = self.transports[contact.split("://", 1)[0]]
        return transport.send_to(contact, data) if on_written is None else transport.send_to(contact, data, on_written)

    def _send_first(
        self, contacts: list[str], data: FileBytes, on_written: Callable[[], None] | None = None,
    ) -> defer.Deferred[None]:
        d = self._send_to(contacts[0], data, on_written)
        if len(contacts) > 1:
            d.addErrback(lambda failure: failure.trap(TransportError)
                         and self._send_first(contacts[1:], data, on_written))
        return d

    def request(
        self, packet: Packet, remote: Identity, wide: bool = False, timeout: float = DEFAULT_TIMEOUT,
        on_sent: Callable[[], object] | None = None,
    ) -> defer.Deferred[Packet]:
        """Send, then fire with the answer (3.2 matching) or fail with Timeout; never waits for ever. `on_sent` is
        called once the transport delivered the packet."""
        try:
            answer = self._pending.wait(packet.packet_id, packet.remote_id, packet.command, timeout)
        except PendingFull as err:
            return defer.fail(err)
        sent = self.send(packet, remote, wide, timeout)
        if on_sent is not None:
            sent.addCallback(lambda _: on_sent())
        sent.addErrback(lambda failure: answer.errback(failure) if not answer.called else None)
        return answer

    def fail_pending(self, packet_id: str, remote_id: str, error: Exception) -> bool:
        """Fail the request with this PacketID sent to `remote_id` (a router said it cannot be delivered)."""
        return self._pending.fail(packet_id, error, asked=remote_id) > 0

    def fail_pending_to(self, remote_id: str, error: Exception) -> int:
        """Fail every request awaiting an answer from `remote_id` (a peer given up on); how many."""
        return self._pending.fail_to(remote_id, error)

    def _timed_out(self, awaited: Awaited[Packet]) -> Timeout:
        self.counters["requests_timed_out"] += 1
        return Timeout(f"no answer to {awaited.command}({awaited.packet_id}) in {awaited.timeout:g} s")

    def reply(
        self, request: Inbound, command: str, payload: bytes = b"", wide: bool = False,
        packet_id: str | None = None, owner_id: str | None = None,
    ) -> defer.Deferred[None]:
        """Ack, Fail or another answer: same PacketID, Owner = Creator = me (unless told), to the request's owner:
        back on the connection the request came on while it is open (its contacts may name a router it left),
        else to its contacts."""
        answer = self.outbox(command, request.packet.owner_id, payload, packet_id=packet_id or request.packet.packet_id,
                             owner_id=owner_id)
        session = request.session
        if session is not None and session.usable:
            self.counters["packets_out"] += 1
            d = session.send_file(packet_fast.serialize_parts(answer))
        else:
            d = self.send(answer, request.creator, wide)
        to = request.creator.sources[0]  # not the request: the wait for delivery must not keep its bytes
        d.addErrback(lambda f: log.info("{cmd} to {to} not delivered: {why}", cmd=command, to=to,
                                        why=f.getErrorMessage()))
        return d

    # -- in

    def file_received(self, data: bytes | Chunks, session: Session | None = None) -> defer.Deferred[None]:
        """A whole file from a transport, whole or as the chunks it came in (or unwrapped from a relay); fires
        when dealt with (never fails)."""
        self.counters["packets_in"] += 1
        return defer.ensureDeferred(self._process(data, session)).addErrback(self._crashed)

    def _crashed(self, failure: Failure) -> None:
        # a bug met on what a peer sent: counted and said in one line; the traceback only at debug level
        self._drop("crashed", f"{getattr(failure.type, '__name__', 'error')}: {failure.getErrorMessage()}")
        log.debug("inbound packet handling crashed: {trace}", trace=failure.getTraceback())

    def _drop(self, reason: str, detail: str) -> None:
        self.dropped[reason] += 1
        log.info("packet dropped ({reason}): {detail}", reason=reason, detail=detail)

    def _hold_while_verified(
        self, packet: Packet, raw: wire.FileParts, session: Session | None, give_back: Callable[[], None],
    ) -> Claim | None:
        """The packet's bytes taken from the receive budget while it waits for its creator's identity or its
        signature check (`give_back` stops the wait if the budget takes them back for a smaller holder); None
        (dropped and counted) when too many wait or the budget has no room for them."""
        body = raw[1] if isinstance(raw, tuple) else None
        size = file_size(raw) + (0 if packet.payload is body else len(packet.payload))
        # each waiting packet takes at least its share of max_verifying: the budget shares the places fairly too
        claim = self.budget.claim(holder_of(session), max(size, self.budget.total // self.limits.max_verifying),
                                  "verifying", give_back)
        if claim is None:
            self._drop("over_budget", f"{packet.command}({packet.packet_id}) of {size} bytes from {packet.creator_id}")
            return None
        if self._verifying >= self.limits.max_verifying:  # the budget was made larger than the places since
            claim.release()
            self._drop("busy", "too many packets waiting for verification")
            return None
        self._verifying += 1
        return claim

    async def _process(self, data: bytes | Chunks, session: Session | None) -> None:
        try:
            packet, raw = packet_fast.parse_file(data)
        except wire.PacketFormatError as err:
            self._drop("malformed", str(err))
            return
        del data  # chunks are views of reads: what is kept was copied out of them by the parser
        carried: Identity | None = None
        own = False
        if packet.command == "Identity":
            try:
                carried = identity_xml.parse(packet.payload)
            except identity_xml.IdentityFormatError as err:
                if packet.owner_id == packet.creator_id:
                    self._drop("bad_identity", str(err))
                    return
            own = carried is not None and packet.owner_id == packet.creator_id and packet.creator_id in carried.sources
        # a packet that will wait (an identity to fetch, a large payload to hash in a thread) holds its bytes
        waits = not own and (self.cache.get(packet.creator_id) is None
                             or len(packet.payload) >= self.limits.thread_verify_from)
        verifying: defer.Deferred[Identity] | None = None
        evicted = False

        def give_back() -> None:  # the budget gave this packet's bytes to a smaller holder: it waits no more
            nonlocal evicted
            evicted = True
            if verifying is not None:
                verifying.cancel()

        held = self._hold_while_verified(packet, raw, session, give_back) if waits else None
        if waits and held is None:
            return
        verifying = defer.ensureDeferred(self._verified_creator(packet, carried if own else None))
        try:
            creator = await verifying
        except (_Dropped, defer.CancelledError) as why:
            if evicted:
                self._drop("evicted", f"{packet.command}({packet.packet_id}) from {packet.creator_id}")
            elif isinstance(why, _Dropped):
                self._drop(why.reason, why.detail)
            else:
                raise
            return
        finally:
            if held is not None:
                held.release()
                self._verifying -= 1
        # for me by any IDURL of mine: one a rotation left still reaches me
        inbound = Inbound(packet, creator, self.me.answers_to(packet.remote_id), raw, carried, session)
        if inbound.for_me and self._answers_pending(inbound):
            return
        if not inbound.for_me and any(forward(inbound) for forward in list(self._forwarders)):
            return
        handlers = self.handlers.get(packet.command)
        if not handlers:
            self._drop("unhandled", f"{packet.command}({packet.packet_id}) from {packet.creator_id}")
            return
        for handler in list(handlers):
            try:
                await defer.maybeDeferred(handler, inbound)
            except Exception as err:
                # what a peer sent met a bug of a handler: counted, one line, the traceback at debug level only
                self._drop("handler_error", f"{packet.command} handler: {err!r}"[:500])
                log.debug("handler of {cmd} failed: {trace}", cmd=packet.command, trace=Failure().getTraceback())

    async def _verified_creator(self, packet: Packet, carried: Identity | None) -> Identity:
        """The creator's identity once the packet's signature checked out with it (an Identity packet's own
        carried one, or the known or fetched one); _Dropped says why not."""
        if carried is not None:
            return self._carried_identity(packet, carried)
        creator = await self._known_identity(packet.creator_id)
        if not await self._signature_valid(packet, creator):
            raise _Dropped("bad_signature", f"{packet.command}({packet.packet_id}) from {packet.creator_id}")
        return creator

    async def _signature_valid(self, packet: Packet, creator: Identity) -> bool:
        """Check the signature; a large packet's hashing (which releases the GIL) in a worker thread, so the
        reactor goes on with other packets meanwhile."""
        key = self._public_key(creator)
        if len(packet.payload) < self.limits.thread_verify_from:
            return packet_signature_valid(packet, key)
        return bool(await threads.deferToThread(packet_signature_valid, packet, key))

    async def _known_identity(self, creator_id: str) -> Identity:
        """The creator's identity from the cache, else fetched from its server (with a timeout)."""
        known = self.cache.get(creator_id)
        if known is not None:
            return known
        try:
            fetching = defer.ensureDeferred(self.cache.fetch(creator_id))
            fetching.addTimeout(IDENTITY_FETCH_TIMEOUT, self.clock)
            return await fetching
        except (BitDustError, defer.TimeoutError, identity_xml.IdentityFormatError) as err:
            raise _Dropped("creator_unknown", f"identity of {creator_id[:200]} not available: {err}") from None

    def _carried_identity(self, packet: Packet, carried: Identity) -> Identity:
        """An Identity packet carries its creator's identity: checked, the packet checked with it, then kept."""
        try:
            self.cache.check(packet.creator_id, carried)
        except IdentityMismatch as err:
            raise _Dropped("bad_identity", f"identity in {packet.packet_id}: {err}") from None
        if not packet_signature_valid(packet, self._public_key(carried)):
            raise _Dropped("bad_signature", f"Identity({packet.packet_id}) from {packet.creator_id}")
        # the newer of the two becomes the cached one; the packet is checked against what it carries
        self.cache.keep(packet.creator_id, carried, packet.payload)
        return carried

    def _public_key(self, identity: Identity) -> rsa.RSAPublicKey:
        found = self._public_keys.get(identity.publickey)
        if found is None:
            if len(self._public_keys) >= self.limits.max_public_keys:
                self._public_keys.clear()
            found = self._public_keys[identity.publickey] = keys.public_key_from_openssh(identity.publickey)
        return found

    def _answers_pending(self, inbound: Inbound) -> bool:
        packet = inbound.packet
        # a peer asked by an IDURL it has moved from answers from its new one
        if self._pending.answer(packet.packet_id, (packet.owner_id, packet.creator_id), packet.command, packet,
                                same_node=self.cache.same_user):
            self.counters["answers_matched"] += 1
            return True
        return False

    def status(self) -> dict[str, Any]:
        return {
            "packets_in": self.counters["packets_in"],
            "packets_out": self.counters["packets_out"],
            "pending_requests": len(self._pending),
            "dropped": dict(self.dropped),
            "identity_cache_bytes": self.cache.held_bytes(),
            "identities_forgotten": self.cache.forgotten,
        }


def _any_ok(results: list[tuple[bool, Any]], remote: Identity) -> None:
    if not any(ok for ok, _ in results):
        failure = next(value for ok, value in results if not ok)
        raise TransportError(f"no contact of {remote.sources[0]} took the packet: {failure.getErrorMessage()}")

