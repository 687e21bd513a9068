"""The proxy router (PROTOCOL-P2P.md 4.3 to 4.6): routes for users who cannot be reached directly.

A user rents a route with RequestService `service_proxy_server`; from then on packets others send it
(to my address, RemoteID = the user) go to it as RelayIn, encrypted to its key, on the connection it
keeps open to me; the packets it sends me as RelayOut are opened, checked and sent on, and it gets a
RelayAck or RelayFail. I never see inside what I forward: RelayIn carries the packet as it came, and a
RelayOut's inner packet is signed by the user and checked before it leaves.

Better than official: `routes-limit` is honoured, each route and all of them together have a byte
rate, each route has a window in each direction (proxy/window.py: past it the connections that bring more are
not read, so senders wait in TCP, not in the router's memory), what waits to be relayed holds its bytes against
the node's receive budget (a user who stops reading cannot make the router hold more than its part), a route
outlives a reconnection of its user for a grace period, and every refusal is counted.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import attrs
from cryptography.hazmat.primitives.asymmetric import rsa
from twisted.internet import defer
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from bitdust_node.crypto import keys
from bitdust_node.crypto.packet_signing import packet_signature_valid
from bitdust_node.errors import BitDustError
from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.identity.signing import verify_identity
from bitdust_node.net.budget import Claim, ReceiveBudget
from bitdust_node.net.clock import TimeSource
from bitdust_node.net.ratelimit import ByteRate
from bitdust_node.proxy import relay
from bitdust_node.proxy.relay_in import relay_in_parts
from bitdust_node.proxy.window import RelayWindow
from bitdust_node.transport.hookups import ServiceAnswer
from bitdust_node.transport.interfaces import Inbound, PacketNetwork, Session
from bitdust_node.wire import identity_xml, packet_fast
from bitdust_node.wire import packet as wire
from bitdust_node.wire.identity_xml import Identity
from bitdust_node.wire.tcp_frames import FileBytes, file_size

log = Logger()
SERVICE_NAME = "service_proxy_server"
# answers and failures are never answered with a Fail (two routers would bounce them for ever)
_NOT_ANSWERED = frozenset({"Ack", "Fail", *relay.RELAY_COMMANDS})
CLOSED_ROUTES_SHOWN = 20
# a RelayIn's bytes beside its packet's: the block's and the outer packet's fields and signatures
RELAY_OVERHEAD = 4096
# all routes together have at most this part of the receive budget on its way before senders are held back: the
# rest is for the unfinished and unverified packets that become what is relayed
RELAYING_PART = 4


@attrs.define
class RouterLimits:
    routes: int = 20
    # bytes per second one route may relay (both ways), and all routes together; 0 = no limit
    route_rate: float = 16 * 1024 * 1024
    total_rate: float = 0.0
    # a user whose every connection closed keeps its route this long, to reconnect
    session_grace: float = 30.0
    closed_routes_kept: int = 1000
    identity_fetch_timeout: float = 15.0
    # bytes relayed for one route in one direction and still waiting in this node, past which the
    # connections bringing more are not read: 3 one-megabyte packets sealed as RelayIn, enough to keep a link busy
    window: int = 4 * 1024 * 1024
    # a window that has not drained for this long releases its senders, and what comes for it is refused
    window_wait: float = 10.0


@attrs.define(eq=False)
class Route:
    idurl: str
    identity: Identity
    public_key: rsa.RSAPublicKey
    session: Session | None
    created: float
    limiter: ByteRate
    # what is on its way to the user (RelayIn), and what it sent on its way to others
    incoming: RelayWindow
    outgoing: RelayWindow
    # when the route was last seen without any open connection (None while it has one)
    orphaned_at: float | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    packets_in: int = 0
    packets_out: int = 0
    refused: int = 0

    def describe(self) -> RouteInfo:
        session: Any = self.session
        return RouteInfo(
            idurl=self.idurl,
            # where the user's connection comes from, and the connection as the transport names it
            address=getattr(session, "address", None),
            host=session.describe() if hasattr(session, "describe") else "",
            contacts=self.identity.contacts,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            packets_in=self.packets_in,
            packets_out=self.packets_out,
            refused=self.refused,
            connected=self.session is not None and self.session.usable,
        )


@attrs.frozen
class RouteInfo:
    """One route as status shows it."""

    idurl: str
    address: tuple[str, int] | None
    host: str
    contacts: tuple[str, ...]
    bytes_in: int
    bytes_out: int
    packets_in: int
    packets_out: int
    refused: int
    connected: bool


@attrs.frozen
class RouterStatus:
    # RelayAcks sent
    acks: int
    # the latest routes closed: (user IDURL, when)
    closed_routes: tuple[tuple[str, float], ...]
    # my contacts, where users reach me
    hosts: tuple[str, ...]
    routes: tuple[RouteInfo, ...]
    routes_limit: int
    counters: dict[str, int]
    refused: dict[str, int]


class ProxyRouter:
    """Routes by user IDURL, the RemoteRequests of `service_proxy_server`, and the gateway's forward hook."""

    def __init__(
        self,
        gateway: PacketNetwork,
        me: MyIdentityHolder,
        cache: IdentityCache,
        clock: TimeSource,
        sessions_of: Callable[[str], list[Any]],
        limits: RouterLimits | None = None,
        budget: ReceiveBudget | None = None,
    ) -> None:
        self.gateway = gateway
        self.me = me
        self.cache = cache
        self.clock = clock
        self.sessions_of = sessions_of
        self.limits = limits or RouterLimits()
        # the node's receive budget: packets on their way through this router hold their bytes against it
        self.budget = budget if budget is not None else ReceiveBudget()
        self.routes: dict[str, Route] = {}
        self.closed_routes: collections.OrderedDict[str, float] = collections.OrderedDict()
        self.total = ByteRate(clock, self.limits.total_rate, max(self.limits.total_rate, 1))
        self.counters: collections.Counter[str] = collections.Counter()
        self.refusals: collections.Counter[str] = collections.Counter()
        # what all routes have on their way together
        self.relaying = RelayWindow(clock, self.budget.total // RELAYING_PART, self.limits.window_wait)
        self._unregister: list[Callable[[], None]] = []
        self._sweeper: LoopingCall | None = None

    # -- life

    def start(self) -> None:
        self._unregister = [
            self.gateway.add_forwarder(self.forward),
            self.gateway.register("RelayOut", self.relay_out_received),
            self.gateway.register("Identity", self.identity_received),
        ]
        self._sweeper = LoopingCall(self.sweep)
        self._sweeper.clock = self.clock
        self._sweeper.start(max(1.0, self.limits.session_grace / 3), now=False)

    def stop(self) -> None:
        for unregister in self._unregister:
            unregister()
        if self._sweeper is not None and self._sweeper.running:
            self._sweeper.stop()
        for idurl in list(self.routes):
            self._close(idurl, "router stopped")

    def set_limits(self, limits: RouterLimits) -> None:
        self.limits = limits
        self.total = ByteRate(self.clock, limits.total_rate, max(limits.total_rate, 1))
        self.relaying.wait = limits.window_wait
        for route in self.routes.values():
            route.limiter = self._route_limiter()
            for window in (route.incoming, route.outgoing):
                window.limit, window.wait = limits.window, limits.window_wait

    def _route_limiter(self) -> ByteRate:
        return ByteRate(self.clock, self.limits.route_rate, max(self.limits.route_rate, 1))

    def _window(self) -> RelayWindow:
        return RelayWindow(self.clock, self.limits.window, self.limits.window_wait)

    # -- renting a route (RemoteRequests)

    def request_service(self, inbound: Inbound, payload: dict[str, Any]) -> ServiceAnswer:
        user = inbound.packet.creator_id
        # a user who moved asks again by its new IDURL: the same route
        existing = self._route(user)
        if existing is None and len(self.routes) >= self.limits.routes:
            return self._refuse_request("routes_full", user, ServiceAnswer.ack("rejected"))
        submitted = payload.get("identity")
        identity = self._submitted_identity(user, inbound.creator, submitted)
        if identity is None:
            return self._refuse_request("bad_identity", user, ServiceAnswer.fail("identity invalid"))
        if inbound.session is None or not inbound.session.usable:
            return self._refuse_request("no_session", user, ServiceAnswer.fail("no connection to route through"))
        if existing is not None:
            existing.identity, existing.session, existing.orphaned_at = identity, inbound.session, None
            if existing.idurl != user:
                del self.routes[existing.idurl]
                existing.idurl = user
                self.routes[user] = existing
        else:
            self.open_route(user, identity, inbound.session)
        self.closed_routes.pop(user, None)
        self.counters["routes_opened"] += 1
        log.info("route opened for {user} ({n} of {limit})", user=user, n=len(self.routes), limit=self.limits.routes)
        return ServiceAnswer.ack("accepted")

    def open_route(self, user: str, identity: Identity, session: Session) -> Route:
        """A new route for `user` (by this IDURL) on its connection to me, with its own rate and windows."""
        route = Route(user, identity, keys.public_key_from_openssh(identity.publickey), session, self.clock.seconds(),
                      self._route_limiter(), self._window(), self._window())
        self.routes[user] = route
        return route

    def _submitted_identity(self, user: str, creator: Identity, submitted: Any) -> Identity | None:
        """The identity the user sent with its request, if it is the user's and well signed."""
        if not isinstance(submitted, str) or len(submitted) > identity_xml.MAX_IDENTITY_BYTES:
            return None
        try:
            identity = identity_xml.parse(submitted.encode("utf-8"))
        except (identity_xml.IdentityFormatError, UnicodeEncodeError):
            return None
        # signed by the user's own key: its identity, if perhaps one from before it moved (its IDURL then)
        if identity.publickey != creator.publickey or not verify_identity(identity):
            return None
        return identity

    def _refuse_request(self, why: str, user: str, answer: ServiceAnswer) -> ServiceAnswer:
        self.refusals["request_" + why] += 1
        log.info("route for {user} refused: {why}", user=user, why=why)
        return answer

    def cancel_service(self, inbound: Inbound, payload: dict[str, Any]) -> ServiceAnswer:
        user = inbound.packet.creator_id
        if user not in self.routes:
            return ServiceAnswer.ack("rejected")
        self._close(user, "cancelled by the user")
        return ServiceAnswer.ack("accepted")

    def _close(self, user: str, why: str) -> None:
        route = self.routes.pop(user, None)
        if route is None:
            return
        route.incoming.close()
        route.outgoing.close()
        self.closed_routes[user] = self.clock.seconds()
        while len(self.closed_routes) > self.limits.closed_routes_kept:
            self.closed_routes.popitem(last=False)
        self.counters["routes_closed"] += 1
        log.info("route of {user} closed: {why}", user=user, why=why)

    # -- sessions

    def _session(self, route: Route) -> Session | None:
        """The route's connection, or another its user opened since; None when it has none."""
        if route.session is not None and route.session.usable:
            return route.session
        others = self.sessions_of(route.idurl)
        route.session = others[0] if others else None
        if route.session is None and route.orphaned_at is None:
            route.orphaned_at = self.clock.seconds()
        elif route.session is not None:
            route.orphaned_at = None
        return route.session

    def sweep(self) -> None:
        """Close routes whose user has had no connection for the grace period."""
        now = self.clock.seconds()
        for route in list(self.routes.values()):
            if self._session(route) is None and route.orphaned_at is not None:
                if now - route.orphaned_at >= self.limits.session_grace:
                    self._close(route.idurl, "its user's connection is gone")

    def identity_received(self, inbound: Inbound) -> None:
        """A routed user's identity to me says where it is now: its newest connection, and its new IDURL when
        it moved to other identity servers (same key, newer revision)."""
        route = self._route(inbound.packet.creator_id)
        if route is not None and inbound.for_me and inbound.session is not None and inbound.session.usable:
            route.session, route.orphaned_at = inbound.session, None

    def _route(self, idurl: str) -> Route | None:
        """The route of the user known by `idurl`, also by an IDURL it has moved from or to (matched by key); a
        route found by a newer identity follows the move."""
        route = self.routes.get(idurl)
        if route is not None:
            return route
        known = self.cache.get(idurl)
        if known is None:
            return None
        route = next((r for r in self.routes.values() if r.identity.publickey == known.publickey), None)
        if route is not None and known.revision > route.identity.revision and known.sources[0] != route.idurl:
            log.info("routed user {old} moved to {new}: its route follows", old=route.idurl, new=known.sources[0])
            del self.routes[route.idurl]
            route.idurl, route.identity = known.sources[0], known
            self.routes[route.idurl] = route
            self.counters["routes_moved"] += 1
        return route

    def _allowed(self, route: Route, size: int) -> bool:
        if route.limiter.take(size) and self.total.take(size):
            return True
        route.refused += 1
        self.refusals["rate_limited"] += 1
        return False

    # -- inbound: anyone -> routed user (4.5)

    def forward(self, inbound: Inbound) -> bool:
        """Gateway hook for verified packets not addressed to me: RelayIn to a routed user, else a Fail."""
        packet = inbound.packet
        route = self._route(packet.remote_id)
        if route is None:
            if packet.command in _NOT_ANSWERED or packet.command == "Identity":
                return False  # Acks and pushed identities for others: dropped, as official nodes do
            self.refusals["no_route"] += 1
            self._fail_sender(inbound, self._no_route_text(packet.remote_id))
            return True
        if not self._allowed(route, file_size(inbound.raw)):
            self._fail_sender(inbound, relay.RATE_LIMITED)
            return True
        if self._stuck(route, route.incoming):
            self._fail_sender(inbound, relay.TRANSFER_FAILED)
            return True
        self._relay_in(route, packet.owner_id, packet.packet_id, inbound.raw).addErrback(
            self._relay_in_failed, _without_bytes(inbound))
        self._hold_back(route.incoming, inbound.session)
        return True

    def _stuck(self, route: Route, window: RelayWindow) -> bool:
        """A window that has not drained for too long takes nothing more (counted)."""
        if not window.stuck:
            return False
        route.refused += 1
        self.refusals["window_stuck"] += 1
        return True

    def _on_its_way(self, window: RelayWindow, size: int, held: Claim | None = None) -> Callable[[], None]:
        """`size` bytes relayed through `window` and all routes' together (and `held` of the budget); the call that
        gives them back once they no longer wait in this node (written into the next hop's socket): what
        releases a window never waits for a connection to be read, so holding connections cannot lock up."""
        for_route, for_all = window.take(size), self.relaying.take(size)

        def handed_on() -> None:
            for_route()
            for_all()
            if held is not None:
                held.release()

        return handed_on

    def _hold_back(self, window: RelayWindow, source: Session | None) -> None:
        """A full window (the route's, or all routes' together): the connection that filled it is not read until
        there is room (what it brought is relayed, as what was read of it meanwhile will be)."""
        self.relaying.limit = self.budget.total // RELAYING_PART  # the budget may have been resized
        if source is None or not source.usable:
            return
        for full in (w for w in (window, self.relaying) if w.full):
            self.counters["senders_held"] += 1
            source.hold_reading(full.room())

    def _relay_in_failed(self, failure: Any, inbound: Inbound) -> None:
        self.refusals["relay_in_failed"] += 1
        log.info("relay to {user} failed: {why}", user=inbound.packet.remote_id, why=failure.getErrorMessage())
        if inbound.packet.command not in _NOT_ANSWERED:
            self._fail_sender(inbound, relay.TRANSFER_FAILED)

    def _hold(self, route: Route, size: int) -> Claim | None:
        """`size` bytes of the receive budget while a packet to or from `route`'s user is on its way; None (counted)
        when its part is used up."""
        # never taken from others' unfinished files: senders are held back before it comes to that
        held = self.budget.claim("route:" + route.idurl, size, "relayed", evict=False)
        if held is None:
            route.refused += 1
            self.refusals["receive_budget"] += 1
        return held

    def _relay_in(self, route: Route, owner_id: str, packet_id: str, raw: FileBytes) -> defer.Deferred[None]:
        """The packet as it came (whole or in the pieces it was parsed into), encrypted to the routed user, on its
        connection to me; fires on the user's `o`."""
        session = self._session(route)
        if session is None:
            return defer.fail(BitDustError(f"{route.idurl} has no connection to this router"))
        size = file_size(raw)
        # what the connection queues: the packet in base64 in a block in a packet
        held = self._hold(route, size * 4 // 3 + RELAY_OVERHEAD)
        if held is None:
            return defer.fail(BitDustError(f"no room to hold a packet for {route.idurl}"))
        try:
            data = relay_in_parts(raw, owner_id, packet_id, self.me.require(), route.idurl, route.public_key,
                                  wire.packet_date(self.clock.seconds()))
        except (BitDustError, ValueError) as err:  # no identity of mine any more, a key that cannot wrap
            held.release()
            return defer.fail(BitDustError(f"no RelayIn made for {route.idurl}: {err}"))
        route.bytes_out += size
        route.packets_out += 1
        self.counters["relayed_in"] += 1
        self.counters["bytes_relayed"] += size
        return session.send_file(data, self._on_its_way(route.incoming, file_size(data), held))

    def _no_route_text(self, idurl: str) -> str:
        return relay.ROUTE_CLOSED if idurl in self.closed_routes else relay.ROUTE_NOT_EXIST

    def _fail_sender(self, inbound: Inbound, text: str) -> None:
        """Fail, PacketID copied, to the packet's owner (4.6): on its connection, or to its contacts."""
        self.gateway.reply(inbound, "Fail", text.encode("utf-8"), wide=True)

    # -- outbound: routed user -> anyone (4.4)

    async def relay_out_received(self, inbound: Inbound) -> None:
        if not inbound.for_me:
            return
        packet = inbound.packet
        route = self._route(packet.creator_id) or self._route(packet.owner_id)
        if route is None:
            self.refusals["relay_out_no_route"] += 1
            self._fail_sender(inbound, self._no_route_text(packet.creator_id))
            return
        if inbound.session is not None and inbound.session.usable:
            route.session, route.orphaned_at = inbound.session, None
        if not self._allowed(route, file_size(inbound.raw)):
            await self._result(route, inbound, None, relay.RATE_LIMITED)
            return
        me = self.me.require()
        try:
            envelope = relay.decode_envelope(relay.unseal(packet.payload, me.key, relay.ROUTED_OUTGOING))
            inner = packet_fast.parse(envelope.packet)
        except (relay.RelayFormatError, wire.PacketFormatError) as err:
            self.refusals["relay_out_invalid"] += 1
            log.info("RelayOut from {user} refused: {why}", user=route.idurl, why=str(err))
            await self._result(route, inbound, None, relay.INVALID_PACKET)
            return
        if self._route(inner.creator_id) is not route or not packet_signature_valid(inner, route.public_key):
            self.refusals["relay_out_bad_signature"] += 1
            await self._result(route, inbound, envelope, relay.SIGNATURE_INVALID, inner.command)
            return
        if self._stuck(route, route.outgoing):
            await self._result(route, inbound, envelope, relay.DELIVERY_FAILED, inner.command)
            return
        route.bytes_in += len(envelope.packet)
        route.packets_in += 1
        self.counters["relayed_out"] += 1
        self.counters["bytes_relayed"] += len(envelope.packet)
        handed_on = self._on_its_way(route.outgoing, len(envelope.packet))
        self._hold_back(route.outgoing, inbound.session)
        command, source = inner.command, inbound.session
        delivering = self._deliver(route, envelope, inner, source, handed_on)
        # the packet's bytes go once written to the next hop, when the window lets them go, not on its `o`
        inbound, envelope = _without_bytes(inbound), attrs.evolve(envelope, packet=b"")
        del packet, inner
        try:
            error = await delivering
        finally:
            handed_on()
        await self._result(route, inbound, envelope, error, command)

    async def _deliver(
        self, route: Route, envelope: relay.Envelope, inner: wire.Packet, source: Session | None,
        handed_on: Callable[[], None],
    ) -> str:
        """Send the user's packet on (its connection, `source`, held back when the next hop is another route whose
        window is full; `handed_on` once it is written to the next hop); the error text of the result ("" when
        delivered)."""
        receiver = envelope.receiver
        try:
            if self.me.answers_to(receiver):
                # for me: taken in as if it came on the user's connection, so answers go back on it
                handed_on()
                await self.gateway.file_received(envelope.packet, self._session(route))
                return ""
            other = self._route(receiver)
            if other is not None:
                if not self._allowed(other, len(envelope.packet)):
                    return relay.RATE_LIMITED
                if self._stuck(other, other.incoming):
                    return relay.DELIVERY_FAILED
                relayed = self._relay_in(other, inner.owner_id, inner.packet_id, envelope.packet)
                del envelope, inner  # the RelayIn made holds what is still needed until it is written
                handed_on()  # the RelayIn is on the other route's windows now
                self._hold_back(other.incoming, source)
                await relayed
                return ""
            target = await self._identity(receiver, refresh=envelope.retry)
            if target is None:
                return relay.IDURL_NOT_FOUND
            held = self._hold(route, len(envelope.packet))
            if held is None:
                return relay.DELIVERY_FAILED

            def written() -> None:
                handed_on()
                held.release()

            sending = self.gateway.send_data(envelope.packet, target, envelope.wide, written)
            del envelope, inner  # the connection holds the bytes until they are written
            await sending
            return ""
        except BitDustError as err:
            log.info("routed packet to {to} not delivered: {why}", to=receiver, why=str(err))
            return relay.DELIVERY_FAILED

    async def _identity(self, idurl: str, refresh: bool) -> Identity | None:
        known = None if refresh else self.cache.get(idurl)
        if known is not None:
            return known
        try:
            fetching = defer.ensureDeferred(self.cache.fetch(idurl))
            fetching.addTimeout(self.limits.identity_fetch_timeout, self.clock)
            return await fetching
        except (BitDustError, defer.TimeoutError, ValueError):
            return self.cache.get(idurl)

    async def _result(
        self, route: Route, inbound: Inbound, envelope: relay.Envelope | None, error: str, inner_command: str = "",
    ) -> None:
        """RelayAck (no error) or RelayFail to the user, encrypted to it, PacketID and Owner of its RelayOut."""
        packet = inbound.packet
        if envelope is None:
            envelope = relay.Envelope(route.idurl, "", b"")
        command = "RelayFail" if error else "RelayAck"
        # `command` names what was relayed (the inner packet's command), as official routers write it
        result = relay.result_for(envelope, inner_command or packet.command, packet.packet_id, error)
        me = self.me.require()
        payload = relay.seal(relay.encode_result(result), relay.ROUTED_INCOMING, me.idurl, route.public_key, me.key)
        answer = self.gateway.outbox(command, route.idurl, payload, packet_id=packet.packet_id,
                                     owner_id=packet.owner_id)
        self.counters[command] += 1
        session = self._session(route)
        try:
            if session is not None:
                await session.send_file(packet_fast.serialize_parts(answer))
        except BitDustError as err:
            log.info("{cmd} to {user} not delivered: {why}", cmd=command, user=route.idurl, why=str(err))

    # -- status

    def status(self) -> RouterStatus:
        me = self.me.current
        return RouterStatus(
            acks=self.counters["RelayAck"],
            closed_routes=tuple(list(self.closed_routes.items())[-CLOSED_ROUTES_SHOWN:]),
            hosts=me.identity.contacts if me is not None else (),
            routes=tuple(route.describe() for route in self.routes.values()),
            routes_limit=self.limits.routes,
            counters=dict(self.counters),
            refused=dict(self.refusals),
        )


def _without_bytes(inbound: Inbound) -> Inbound:
    """What answering a relayed packet needs of it (its ids, creator and connection), without its bytes: held
    while its relay awaits the next hop's `o`, after the bytes were written and their room given back."""
    return attrs.evolve(inbound, raw=b"", packet=attrs.evolve(inbound.packet, payload=b""))
