"""The routed user (PROTOCOL-P2P.md 4.2, 4.4, 4.5): the proxy transport's shell around the `proxy_receiver`
machine (proxy/receiver.py).

It builds the machine with its collaborators (which router next: proxy/choice.py; what is said to it:
proxy/handshake.py; my connection to it: proxy/line.py), carries my packets where the machine's state says
(waiting in a bounded queue, each for a bounded time: proxy/waiting.py; through the router as RelayOut, each
awaited until its RelayAck: proxy/relayed.py; or directly), hands what my router sends me to the route, and
reports its status. In OFFLINE (no router to be had) my packets go out directly: official nodes hold them until
a router appears, which leaves a node that is reachable anyway unable to talk at all.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Callable

import attrs
from twisted.internet import defer

from bitdust_node.fsm import MachineEntry, trace
from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.net.clock import TimeSource
from bitdust_node.proxy.choice import PastRouter, RouterChoice, RouterLookup
from bitdust_node.proxy.handshake import RouterHandshake
from bitdust_node.proxy.line import RouterLink, TcpRouterLine, router_address
from bitdust_node.proxy.receiver import (
    ContactsPublisher,
    ReceiverCore,
    ReceiverInputs,
    ReceiverMachine,
    ReceiverTimings,
)
from bitdust_node.proxy.relayed import RelayedRoute
from bitdust_node.proxy.waiting import HeldRoute, WaitingPackets
from bitdust_node.transport.connection import Address
from bitdust_node.transport.errors import TransportError
from bitdust_node.transport.interfaces import Inbound, PacketNetwork
from bitdust_node.wire.identity_xml import Identity


@attrs.define
class ClientLimits:
    ack_timeout: float = 15.0
    service_timeout: float = 15.0
    keep_alive_interval: float = 10.0
    # a router silent this long is asked again (an Identity ping); no answer = lost
    check_timeout: float = 10.0
    # a router that failed is not tried again for this long (unless it is the only one)
    set_aside_for: float = 60.0
    offline_first: float = 2.0
    offline_max: float = 60.0
    lookup_candidates: int = 5
    max_queued: int = 100
    queue_wait: float = 30.0
    max_awaiting: int = 10_000
    relay_timeout: float = 30.0


@attrs.frozen
class RouterSession:
    """The router being asked or routing me, and my connection to it."""

    idurl: str
    global_id: str
    address: Address | None
    connected: bool
    bytes_sent: int
    bytes_received: int
    # seconds since it routes me; None while it is only being asked
    routed_for: float | None


@attrs.frozen
class ClientStatus:
    state: str
    router: RouterSession | None
    queued: int
    awaiting_relay_ack: int
    counters: dict[str, int]
    past_routers: tuple[PastRouter, ...]


class ProxyClient:
    """Finds and keeps a router, and carries my packets through it (PacketCarrier of the receiver)."""

    def __init__(
        self,
        gateway: PacketNetwork,
        me: MyIdentityHolder,
        cache: IdentityCache,
        clock: TimeSource,
        lookup: RouterLookup,
        link: RouterLink,
        publisher: ContactsPublisher,
        preferred: Callable[[], list[str]],
        entry: MachineEntry,
        limits: ClientLimits | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.entry = entry
        self.gateway = gateway
        self.me = me
        self.clock = clock
        self.link = link
        self.publisher = publisher
        self.limits = limits = limits or ClientLimits()
        self.counters: collections.Counter[str] = collections.Counter()
        self.queue = WaitingPackets(clock, self.counters, limits.max_queued, limits.queue_wait)
        self.choice = RouterChoice(me, cache, lookup, preferred, clock, limits.set_aside_for, limits.lookup_candidates,
                                   rng)
        self.handshake = RouterHandshake(gateway, me, limits.ack_timeout, limits.service_timeout, limits.check_timeout)
        # where my packets go now: set by the machine's states through hold() and relay()
        self._route: HeldRoute | RelayedRoute | None = None
        self._unregister: list[Callable[[], None]] = []
        timings = ReceiverTimings(limits.keep_alive_interval, limits.offline_first, limits.offline_max)
        core = ReceiverCore(self.choice, self.handshake, TcpRouterLine(link), self, publisher, clock, timings)
        self.machine: ReceiverInputs = ReceiverMachine(core)
        trace(self.machine, entry)

    # -- life

    def start(self) -> None:
        self.handshake.remember_own_identity()
        self._unregister = [
            self.gateway.register("RelayIn", self._relay_in_received),
            self.gateway.register("RelayAck", self._relay_result_received),
            self.gateway.register("RelayFail", self._relay_result_received),
            self.gateway.register("Fail", self._fail_received),
        ]
        self.machine.start()

    def stop(self) -> defer.Deferred[None]:
        """Cancel the route (if any), give my own contacts back, fail what waits."""
        cancelling = self.machine.stop()
        for unregister in self._unregister:
            unregister()
        self.queue.fail_all(TransportError("the proxy transport stopped"))
        return cancelling.addBoth(lambda _: self.publisher.use_contacts(None)).addCallback(lambda _: None)

    @property
    def state(self) -> str:
        return self.entry.state

    @property
    def router(self) -> Identity | None:
        """The router being asked (ACK?, SERVICE?) or routing me (LISTEN)."""
        return self._route.router if self._route is not None else None

    @property
    def listening(self) -> bool:
        """A router routes me (the machine is in LISTEN)."""
        return isinstance(self._route, RelayedRoute)

    # -- where my packets go (PacketCarrier)

    def hold(self, router: Identity | None) -> Callable[[], None]:
        return self._use(HeldRoute(self.queue, router))

    def relay(self, router: Identity, lost: Callable[[str], None]) -> Callable[[], None]:
        route = RelayedRoute(self.gateway, self.me, router, self.clock, self.counters, lost, self.limits.max_awaiting,
                             self.limits.relay_timeout)
        self.counters["routes"] += 1
        leave = self._use(route)
        while self._route is route and (item := self.queue.next()) is not None:
            route.relay_out(item.packet, item.data, item.remote, item.wide, item.timeout).chainDeferred(item.done)
        return leave

    def _use(self, route: HeldRoute | RelayedRoute) -> Callable[[], None]:
        self._route = route
        leave_gateway = self.gateway.use_route(route)

        def leave() -> None:
            leave_gateway()
            if self._route is route:
                self._route = None
            route.close()

        return leave

    # -- from the router

    def _relay_in_received(self, inbound: Inbound) -> defer.Deferred[None] | None:
        if isinstance(self._route, RelayedRoute):
            return self._route.relay_in_received(inbound)
        self.counters["relay_in_not_from_router"] += 1
        return None

    def _relay_result_received(self, inbound: Inbound) -> None:
        if isinstance(self._route, RelayedRoute):
            self._route.result_received(inbound)

    def _fail_received(self, inbound: Inbound) -> None:
        if isinstance(self._route, RelayedRoute):
            self._route.fail_received(inbound)

    # -- status

    def status(self) -> ClientStatus:
        route = self._route
        session = None
        if route is not None and route.router is not None:
            router = route.router
            address = router_address(router)
            connection = self.link.connection_to(address) if address is not None else None
            session = RouterSession(
                idurl=router.sources[0],
                global_id=router.global_id,
                address=address,
                connected=connection is not None and connection.usable,
                bytes_sent=connection.bytes_out if connection is not None else 0,
                bytes_received=connection.bytes_in if connection is not None else 0,
                routed_for=self.clock.seconds() - route.since if isinstance(route, RelayedRoute) else None,
            )
        return ClientStatus(
            state=self.state,
            router=session,
            queued=len(self.queue),
            awaiting_relay_ack=route.awaiting if isinstance(route, RelayedRoute) else 0,
            counters=dict(self.counters),
            past_routers=tuple(self.choice.history),
        )
