"""The routed user (PROTOCOL-P2P.md 4.2, 4.4, 4.5): machine `proxy_receiver` and the outbound route.

States: AT_STARTUP -> FIND_NODE? (a router from `preferred-routers`, else a random one of DHT layer 2)
-> ACK? (my identity to it, Ack awaited) -> SERVICE? (RequestService `service_proxy_server`) -> LISTEN
(my identity republished with the router's contacts; keep-alives every 10 s). A router that refuses,
times out or dies sends the machine back to FIND_NODE? with that router set aside for a while; with no
router found it waits in OFFLINE (backoff) and publishes my own contacts again. Any -> CLOSED on stop.

While the machine looks for a router my outgoing packets wait in a bounded queue, each for a bounded
time; in LISTEN each one travels as RelayOut to the router, which answers RelayAck or RelayFail. In
OFFLINE (no router to be had) they go out directly: official nodes hold them until a router appears,
which leaves a node that is reachable anyway unable to talk at all.
"""

from __future__ import annotations

import collections
import json
import random
from collections.abc import Callable
from typing import Any, Protocol

import attrs
from automat import TypeMachineBuilder
from cryptography.hazmat.primitives.asymmetric import rsa
from twisted.internet import defer
from twisted.logger import Logger

from bitdust_node.crypto import keys
from bitdust_node.errors import BitDustError
from bitdust_node.fsm import MachineEntry, trace
from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.identity.my_identity import MyIdentity
from bitdust_node.net.clock import DelayedCall, TimeSource
from bitdust_node.proxy import relay
from bitdust_node.transport.errors import TransportError
from bitdust_node.transport.interfaces import Inbound, PacketNetwork
from bitdust_node.transport.tcp import parse_tcp_contact
from bitdust_node.wire import packet as wire
from bitdust_node.wire.identity_xml import Identity
from bitdust_node.wire.packet import Packet
from bitdust_node.wire.tcp_frames import FileBytes, joined

log = Logger()
ROUTERS_LAYER = 2
ROUTE_SERVICE = "service_proxy_server"


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


class RouterLookup(Protocol):
    async def random_nodes(self, layer_id: int, count: int = 1) -> list[Identity]: ...


class RouterLink(Protocol):
    """What the client asks of the TCP transport about its router's connection."""

    def keep_alive(self, address: tuple[str, int]) -> None: ...

    def connection_to(self, address: tuple[str, int]) -> Any: ...

    def watch_closed(self, watcher: Callable[[Any], None]) -> Callable[[], None]: ...


class ContactsPublisher(Protocol):
    def use_contacts(self, contacts: tuple[str, ...] | None) -> defer.Deferred[Any]: ...


class ReceiverInputs(Protocol):
    def start(self) -> None:
        "The proxy transport starts."

    def found(self, router: Identity) -> None:
        "A router to ask was chosen."

    def none_found(self, why: str) -> None:
        "No router could be found now."

    def retry(self) -> None:
        "The offline wait is over."

    def acked(self) -> None:
        "The router acknowledged my identity."

    def accepted(self) -> None:
        "The router accepted my route request."

    def refused(self, why: str) -> None:
        "The router did not answer, refused, or could not be reached."

    def lost(self, why: str) -> None:
        "The router of my route is gone."

    def stop(self) -> None:
        "The proxy transport stops."


@attrs.define(eq=False)
class _Queued:
    packet: Packet
    data: FileBytes
    remote: Identity
    wide: bool
    timeout: float | None
    done: defer.Deferred[None]
    timer: DelayedCall | None = None


@attrs.define(eq=False)
class ReceiverCore:
    client: ProxyClient
    attempt: int = 0
    offline_delay: float = 2.0
    timer: DelayedCall | None = None

    def cancel_timer(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None


class ProxyClient:
    """Finds and keeps a router, and carries my packets through it (the gateway's OutboundRoute)."""

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
        self.cache = cache
        self.clock = clock
        self.lookup = lookup
        self.link = link
        self.publisher = publisher
        self.preferred = preferred
        self.limits = limits or ClientLimits()
        self.rng = rng or random.Random()
        # the router being asked or routing me, its key and the address of its tcp contact
        self.router: Identity | None = None
        self.router_key: rsa.RSAPublicKey | None = None
        self.router_address: tuple[str, int] | None = None
        self.listening = False
        self.since: float | None = None
        # my identity with my own contacts: what a router is given to reach me
        self.original: MyIdentity | None = None
        self.set_aside: dict[str, float] = {}
        # routers found in DHT layer 2, by IDURL (when found); candidates for the next move
        self.known_routers: dict[str, float] = {}
        self.history: collections.deque[dict[str, Any]] = collections.deque(maxlen=20)
        self.counters: collections.Counter[str] = collections.Counter()
        self._queue: collections.deque[_Queued] = collections.deque()
        self._awaiting: dict[tuple[str, str], defer.Deferred[None]] = {}
        self._keeper: DelayedCall | None = None
        self._checking = False
        self._unregister: list[Callable[[], None]] = []
        self.core = ReceiverCore(self, offline_delay=self.limits.offline_first)
        self.machine: ReceiverInputs = ReceiverMachine(self.core)
        trace(self.machine, entry)

    # -- life

    def start(self) -> None:
        self._unregister = [
            self.gateway.use_route(self),
            self.gateway.register("RelayIn", self.relay_in_received),
            self.gateway.register("RelayAck", self.relay_result_received),
            self.gateway.register("RelayFail", self.relay_result_received),
            self.gateway.register("Fail", self.fail_received),
            self.link.watch_closed(self._connection_closed),
        ]
        self.machine.start()

    def stop(self) -> defer.Deferred[Any]:
        """Cancel the route (if any), give my own contacts back, fail what waits."""
        cancelling = self._cancel_route() if self.listening else defer.succeed(None)
        self.machine.stop()
        for unregister in self._unregister:
            unregister()
        self._fail_queue(TransportError("the proxy transport stopped"))
        for waiting in list(self._awaiting.values()):
            if not waiting.called:
                waiting.errback(TransportError("the proxy transport stopped"))
        self._awaiting.clear()
        cancelling.addBoth(lambda _: self.publisher.use_contacts(None))
        return cancelling

    @property
    def state(self) -> str:
        return self.entry.state

    # -- finding a router (FIND_NODE?)

    def find(self, attempt: int) -> None:
        defer.ensureDeferred(self._find()).addCallbacks(
            lambda router: self._fire(attempt, "found", router) if router is not None else None,
            lambda failure: self._fire(attempt, "none_found", failure.getErrorMessage()),
        )

    async def _find(self) -> Identity | None:
        now = self.clock.seconds()
        aside = {idurl for idurl, until in self.set_aside.items() if until > now}
        mine = self.me.require().idurl
        choices = [u for u in self.preferred() if u != mine and u not in aside]
        if choices:
            return await self._router_identity(self.rng.choice(choices))
        # routers an earlier lookup found come first: failing over must not wait for DHT timeouts on the dead one
        known = [idurl for idurl in self.known_routers if idurl not in aside]
        if known:
            return await self._router_identity(self.rng.choice(known))
        found = await self.lookup.random_nodes(ROUTERS_LAYER, self.limits.lookup_candidates)
        usable = [i for i in found if i.sources[0] != mine and _tcp_contact(i) is not None]
        for identity in usable[: self.limits.lookup_candidates]:
            self.known_routers[identity.sources[0]] = now
        fresh = [i for i in usable if i.sources[0] not in aside]
        if not fresh:
            # every router refused or failed lately: wait (OFFLINE, with backoff) instead of asking again at once
            raise BitDustError(f"no proxy router to ask in DHT layer 2 ({len(usable)} found, all set aside)")
        return self.rng.choice(fresh)

    async def _router_identity(self, idurl: str) -> Identity:
        """The router's identity fresh from its server, or the cached one while the server cannot be reached."""
        try:
            return await self.cache.fetch(idurl)
        except BitDustError:
            cached = self.cache.get(idurl)
            if cached is None:
                raise
            return cached

    def _fire(self, attempt: int, name: str, *args: Any) -> None:
        """Feed a result to the machine unless it belongs to an attempt the machine moved on from."""
        if attempt != self.core.attempt:
            return
        getattr(self.machine, name)(*args)

    def choose(self, router: Identity) -> None:
        contact = _tcp_contact(router)
        assert contact is not None
        self.router = router
        self.router_key = keys.public_key_from_openssh(router.publickey)
        self.router_address = parse_tcp_contact(contact)

    def set_router_aside(self, why: str) -> None:
        if self.router is not None:
            idurl = self.router.sources[0]
            self.set_aside[idurl] = self.clock.seconds() + self.limits.set_aside_for
            self.history.append({"router": idurl, "left": self.clock.seconds(), "why": why})
            log.info("proxy router {router} set aside: {why}", router=idurl, why=why)
        self.router = self.router_key = self.router_address = None

    # -- ACK? and SERVICE?

    def send_identity(self, attempt: int) -> None:
        router = self.router
        assert router is not None
        me = self.me.require()
        packet = self.gateway.outbox("Identity", router.sources[0], me.xml,
                                     packet_id="proxy_receiver:" + self.gateway.new_packet_id())
        d = self.gateway.request(packet, router, wide=True, timeout=self.limits.ack_timeout)
        d.addCallbacks(
            lambda answer: self._fire(attempt, "acked") if answer.command == "Ack" else self._fire(
                attempt, "refused", "Fail to my identity: " + answer.payload.decode("utf-8", "replace")),
            lambda failure: self._fire(attempt, "refused", failure.getErrorMessage()),
        )

    def request_route(self, attempt: int) -> None:
        router = self.router
        assert router is not None
        original = self.original or self.me.require()
        body = {"name": ROUTE_SERVICE, "payload": {"identity": original.xml.decode("utf-8")}}
        payload = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
        packet = self.gateway.outbox("RequestService", router.sources[0], payload)
        d = self.gateway.request(packet, router, timeout=self.limits.service_timeout)

        def answered(answer: Packet) -> None:
            text = answer.payload.decode("utf-8", "replace")
            if answer.command == "Ack" and not text.startswith("rejected"):
                self._fire(attempt, "accepted")
            else:
                self._fire(attempt, "refused", f"{answer.command} {text[:200]}")

        d.addCallbacks(answered, lambda failure: self._fire(attempt, "refused", failure.getErrorMessage()))

    # -- LISTEN

    def listen(self) -> None:
        router = self.router
        assert router is not None
        self.listening = True
        self.since = self.clock.seconds()
        self.counters["routes"] += 1
        log.info("routed through {router}", router=router.sources[0])
        self.publisher.use_contacts(router.contacts).addErrback(
            lambda f: log.info("routed identity not published: {why}", why=f.getErrorMessage()))
        self._keep_alive_later()
        self._flush_queue()

    def leave(self) -> None:
        self.listening = False
        self.since = None
        if self._keeper is not None and self._keeper.active():
            self._keeper.cancel()
        self._keeper = None

    def _keep_alive_later(self) -> None:
        self._keeper = self.clock.callLater(self.limits.keep_alive_interval, self._keep_alive)

    def _keep_alive(self) -> None:
        self._keeper = None
        if not self.listening or self.router_address is None:
            return
        connection = self.link.connection_to(self.router_address)
        if connection is not None and connection.usable:
            self.link.keep_alive(self.router_address)
        else:
            self._check_router("no connection to the router")
        self._keep_alive_later()

    def _connection_closed(self, connection: Any) -> None:
        if self.listening and self.router_address is not None and connection.address == self.router_address:
            other = self.link.connection_to(self.router_address)
            if other is None or not other.usable:
                self._check_router("the connection to the router closed")

    def _check_router(self, why: str) -> None:
        """Dial the router again with my identity: an answer keeps the route, none means it is lost."""
        if self._checking or self.router is None:
            return
        self._checking = True
        attempt = self.core.attempt
        router = self.router
        me = self.me.require()
        packet = self.gateway.outbox("Identity", router.sources[0], me.xml,
                                     packet_id="proxy_receiver:" + self.gateway.new_packet_id())
        d = self.gateway.request(packet, router, timeout=self.limits.check_timeout)

        def done(_: Any) -> None:
            self._checking = False

        def gone(failure: Any) -> None:
            self._fire(attempt, "lost", f"{why}; {failure.getErrorMessage()}")

        d.addErrback(gone)
        d.addBoth(done)

    def _cancel_route(self) -> defer.Deferred[Any]:
        router = self.router
        if router is None:
            return defer.succeed(None)
        body = json.dumps({"name": ROUTE_SERVICE, "payload": {}}, sort_keys=True, separators=(",", ":"))
        packet = self.gateway.outbox("CancelService", router.sources[0], body.encode())
        d = self.gateway.request(packet, router, timeout=5.0)
        return d.addErrback(lambda _f: None)

    # -- the outbound route (gateway.OutboundRoute)

    def send(
        self, packet: Packet, data: FileBytes, remote: Identity, wide: bool, timeout: float | None,
    ) -> defer.Deferred[None] | None:
        if self.router is not None and remote.sources[0] == self.router.sources[0]:
            return None  # to the router itself: straight on my connection to it
        if self.listening:
            return self._relay_out(packet, data, remote, wide, timeout)
        if self.state in ("OFFLINE", "CLOSED"):
            return None  # no router to be had: my own contacts are published, so try directly
        if len(self._queue) >= self.limits.max_queued:
            self.counters["queue_full"] += 1
            return defer.fail(TransportError("no proxy router yet and the queue of waiting packets is full"))
        item = _Queued(packet, data, remote, wide, timeout, defer.Deferred())
        item.timer = self.clock.callLater(self.limits.queue_wait, self._queue_expired, item)
        self._queue.append(item)
        self.counters["queued"] += 1
        return item.done

    def _queue_expired(self, item: _Queued) -> None:
        if item in self._queue:
            self._queue.remove(item)
            self.counters["queue_expired"] += 1
            item.done.errback(TransportError(f"no proxy router within {self.limits.queue_wait:g} s"))

    def _flush_queue(self) -> None:
        while self._queue and self.listening:
            item = self._queue.popleft()
            if item.timer is not None and item.timer.active():
                item.timer.cancel()
            relayed = self._relay_out(item.packet, item.data, item.remote, item.wide, item.timeout)
            relayed.chainDeferred(item.done)

    def _fail_queue(self, error: Exception) -> None:
        while self._queue:
            item = self._queue.popleft()
            if item.timer is not None and item.timer.active():
                item.timer.cancel()
            item.done.errback(error)

    def _relay_out(
        self, packet: Packet, data: FileBytes, remote: Identity, wide: bool, timeout: float | None,
    ) -> defer.Deferred[None]:
        """The packet in a RelayOut to my router; fires on its RelayAck, fails on RelayFail or silence."""
        router, router_key = self.router, self.router_key
        assert router is not None and router_key is not None
        receiver = remote.sources[0]
        key = (packet.packet_id.lower(), receiver)
        if key in self._awaiting or len(self._awaiting) >= self.limits.max_awaiting:
            return defer.fail(TransportError("too many relayed packets await their RelayAck"))
        me = self.me.require()
        # joined only when it is relayed: it is encrypted then
        envelope = relay.Envelope(me.idurl, receiver, joined(data), wide, timeout)
        payload = relay.seal(relay.encode_envelope(envelope), relay.ROUTED_OUTGOING, me.idurl, router_key, me.key)
        wrapped = self.gateway.outbox("RelayOut", router.sources[0], payload, packet_id=packet.packet_id,
                                      owner_id=packet.owner_id)
        result: defer.Deferred[None] = defer.Deferred()
        self._awaiting[key] = result
        wait = (timeout or self.limits.relay_timeout) + 10.0
        timer = self.clock.callLater(wait, self._relay_timed_out, key, wait)

        def forget(outcome: Any) -> Any:
            if timer.active():
                timer.cancel()
            if self._awaiting.get(key) is result:
                del self._awaiting[key]
            return outcome

        result.addBoth(forget)
        self.counters["relayed_out"] += 1
        sent = self.gateway.send_data(wire.serialize(wrapped), router)
        sent.addErrback(lambda failure: result.errback(failure) if not result.called else None)
        return result

    def _relay_timed_out(self, key: tuple[str, str], wait: float) -> None:
        waiting = self._awaiting.get(key)
        if waiting is not None and not waiting.called:
            self.counters["relay_timed_out"] += 1
            waiting.errback(TransportError(f"no RelayAck from the router in {wait:g} s"))

    # -- from the router

    def _from_router(self, inbound: Inbound) -> bool:
        return inbound.for_me and self.router is not None and inbound.packet.creator_id == self.router.sources[0]

    def relay_in_received(self, inbound: Inbound) -> defer.Deferred[None] | None:
        """A packet someone sent me through my router: opened and taken in as if it came directly."""
        if not self._from_router(inbound):
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

    def relay_result_received(self, inbound: Inbound) -> None:
        if not self._from_router(inbound):
            return
        try:
            result = relay.decode_result(relay.unseal(inbound.packet.payload, self.me.require().key,
                                                      relay.ROUTED_INCOMING))
        except relay.RelayFormatError as err:
            log.info("relay result from my router not read: {why}", why=str(err))
            return
        waiting = self._awaiting.get((result.packet_id.lower(), result.receiver))
        if inbound.packet.command == "RelayAck":
            if waiting is not None and not waiting.called:
                waiting.callback(None)
            return
        self.counters["relay_failed"] += 1
        error = TransportError(f"the router could not deliver {result.command}({result.packet_id}): {result.error}")
        if waiting is not None and not waiting.called:
            waiting.errback(error)
        self.gateway.fail_pending(result.packet_id, result.receiver, error)
        if self.listening and result.error in (relay.ROUTE_NOT_EXIST, relay.ROUTE_CLOSED):
            self._fire(self.core.attempt, "lost", "the router says " + result.error)

    def fail_received(self, inbound: Inbound) -> None:
        """The router's Fail `route not exist` to a RelayOut: it forgot my route."""
        text = inbound.packet.payload.decode("utf-8", "replace")
        if self.listening and self._from_router(inbound) and text in (relay.ROUTE_NOT_EXIST, relay.ROUTE_CLOSED):
            waiting = [k for k in self._awaiting if k[0] == inbound.packet.packet_id.lower()]
            for key in waiting:
                self._awaiting[key].errback(TransportError("the router says " + text))
            self._fire(self.core.attempt, "lost", "the router says " + text)

    # -- status

    def status(self) -> dict[str, Any]:
        router = self.router
        connection = self.link.connection_to(self.router_address) if self.router_address else None
        session: dict[str, Any] = {
            "id": "proxy_receiver",
            "name": "ProxyReceiver",
            "state": self.state,
            "proto": "tcp",
        }
        if router is not None:
            session.update({
                "idurl": router.sources[0],
                "router": router.global_id,
                "host": f"{self.router_address[0]}:{self.router_address[1]}" if self.router_address else "",
                "connected": connection is not None and connection.usable,
                "bytes_sent": getattr(connection, "bytes_out", 0),
                "bytes_received": getattr(connection, "bytes_in", 0),
                "routed_for": round(self.clock.seconds() - self.since, 1) if self.since is not None else 0,
            })
        return {
            "sessions": [session],
            "queued": len(self._queue),
            "awaiting_relay_ack": len(self._awaiting),
            "counters": dict(self.counters),
            "past_routers": list(self.history),
        }


def _tcp_contact(identity: Identity) -> str | None:
    return next((c for c in identity.contacts if c.startswith("tcp://")), None)


# -- the machine


builder = TypeMachineBuilder(ReceiverInputs, ReceiverCore)
AT_STARTUP = builder.state("AT_STARTUP")
FIND_NODE = builder.state("FIND_NODE?")
ACK = builder.state("ACK?")
SERVICE = builder.state("SERVICE?")
LISTEN = builder.state("LISTEN")
OFFLINE = builder.state("OFFLINE")
CLOSED = builder.state("CLOSED")


def _next_attempt(core: ReceiverCore) -> int:
    core.attempt += 1
    return core.attempt


@AT_STARTUP.upon(ReceiverInputs.start).to(FIND_NODE)
def _start(inputs: ReceiverInputs, core: ReceiverCore) -> None:
    client = core.client
    client.original = client.me.require()
    client.find(_next_attempt(core))


@FIND_NODE.upon(ReceiverInputs.found).to(ACK)
def _found(inputs: ReceiverInputs, core: ReceiverCore, router: Identity) -> None:
    core.client.choose(router)
    core.client.send_identity(_next_attempt(core))


@FIND_NODE.upon(ReceiverInputs.none_found).to(OFFLINE)
def _none_found(inputs: ReceiverInputs, core: ReceiverCore, why: str) -> None:
    log.info("no proxy router now ({why}); looking again in {delay:g} s", why=why, delay=core.offline_delay)
    # nobody routes me: peers should find me at my own address, if it is reachable at all
    core.client.publisher.use_contacts(None).addErrback(lambda _f: None)
    core.timer = core.client.clock.callLater(core.offline_delay, inputs.retry)
    core.offline_delay = min(core.offline_delay * 2, core.client.limits.offline_max)


@OFFLINE.upon(ReceiverInputs.retry).to(FIND_NODE)
def _retry(inputs: ReceiverInputs, core: ReceiverCore) -> None:
    core.timer = None
    core.client.find(_next_attempt(core))


@ACK.upon(ReceiverInputs.acked).to(SERVICE)
def _acked(inputs: ReceiverInputs, core: ReceiverCore) -> None:
    core.client.request_route(_next_attempt(core))


for _asking in (ACK, SERVICE):

    @_asking.upon(ReceiverInputs.refused).to(FIND_NODE)
    def _refused(inputs: ReceiverInputs, core: ReceiverCore, why: str) -> None:
        core.client.set_router_aside(why)
        core.client.find(_next_attempt(core))


@SERVICE.upon(ReceiverInputs.accepted).to(LISTEN)
def _accepted(inputs: ReceiverInputs, core: ReceiverCore) -> None:
    core.offline_delay = core.client.limits.offline_first
    _next_attempt(core)
    core.client.listen()


@LISTEN.upon(ReceiverInputs.lost).to(FIND_NODE)
def _lost(inputs: ReceiverInputs, core: ReceiverCore, why: str) -> None:
    client = core.client
    client.leave()
    client.set_router_aside(why)
    client.find(_next_attempt(core))


for _state in (AT_STARTUP, FIND_NODE, ACK, SERVICE, LISTEN, OFFLINE):

    @_state.upon(ReceiverInputs.stop).to(CLOSED)
    def _stop(inputs: ReceiverInputs, core: ReceiverCore) -> None:
        core.cancel_timer()
        _next_attempt(core)
        core.client.leave()


ReceiverMachine = builder.build()
