"""Small fakes for the proxy room's unit tests: a PacketNetwork in memory, a DHT layer that answers from a list,
identity servers that serve from a dict, a TCP link with connections the test opens and closes, a publisher.
The captured network's identities and throwaway keys stand for bob (the routed user) and his routers."""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.task import Clock

from bitdust_node.crypto import keys
from bitdust_node.crypto.packet_signing import sign_packet
from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.identity.my_identity import MyIdentity
from bitdust_node.net.http import CappedHttp, Reply, Unreachable
from bitdust_node.proxy import relay
from bitdust_node.transport.errors import TransportError
from bitdust_node.transport.interfaces import Forwarder, Handler, Inbound, OutboundRoute, Session, Timeout
from bitdust_node.transport.pending import Awaited, PendingReplies
from bitdust_node.wire import identity_xml, packet_fast
from bitdust_node.wire import packet as wire
from bitdust_node.wire.identity_xml import Identity
from bitdust_node.wire.packet import Packet
from bitdust_node.wire.tcp_frames import Chunks, FileBytes, joined
from tests.identity.vectors import VECTORS

PROXY = VECTORS / "proxy"
# the captured packets' time, so dates look as official ones do
NOW = 1_796_154_300.0


def captured_me(name: str) -> MyIdentity:
    """A node of the captured proxy network (alice, bob, carol) with its throwaway key."""
    return MyIdentity(identity_xml.parse((PROXY / "identity" / f"{name}.xml").read_bytes()),
                      keys.read_private_key(PROXY / "keys" / f"{name}.THROWAWAY_TEST_KEY.pem"))


@attrs.define(eq=False)
class Sent:
    """A packet a room handed to the network, and where it went."""

    packet: Packet
    remote: Identity
    wide: bool
    # True when my outbound route took it, False when it went to the peer's contacts
    routed: bool


class FakeNetwork:
    """A PacketNetwork in memory. Requests are awaited with the gateway's own mechanism (so they time out on the
    clock); what goes out is recorded; `deliver` hands an inbound packet to the handlers as the gateway does."""

    def __init__(self, clock: Clock, me: MyIdentityHolder) -> None:
        self.clock = clock
        self.me = me
        self._ids = itertools.count(1)
        self.pending: PendingReplies[Packet] = PendingReplies(clock, 100, self._timed_out, "too many requests")
        self.handlers: dict[str, list[Handler]] = collections.defaultdict(list)
        self.route: OutboundRoute | None = None
        self.sent: list[Sent] = []
        # serialized packets sent straight to a peer (a RelayOut to the router)
        self.data_sent: list[tuple[bytes, Identity]] = []
        self.taken_in: list[bytes] = []
        # what the next direct send does: None delivers, an exception fails it
        self.direct_failure: Exception | None = None

    def _timed_out(self, awaited: Awaited[Packet]) -> Exception:
        return Timeout(f"no answer to {awaited.command}({awaited.packet_id}) in {awaited.timeout:g} s")

    def new_packet_id(self) -> str:
        return f"test:{next(self._ids)}"

    def outbox(
        self, command: str, remote_id: str, payload: bytes, packet_id: str | None = None,
        owner_id: str | None = None, payload_is_base64: bool = False,
    ) -> Packet:
        me = self.me.require()
        unsigned = Packet(command, owner_id or me.idurl, me.idurl, packet_id or self.new_packet_id(),
                          wire.packet_date(self.clock.seconds()), payload, remote_id, me.key_id)
        return sign_packet(unsigned, me.key)

    def send(
        self, packet: Packet, remote: Identity, wide: bool = False, timeout: float | None = None,
    ) -> defer.Deferred[None]:
        if self.route is not None:
            routed = self.route.send(packet, packet_fast.serialize_parts(packet), remote, wide, timeout)
            if routed is not None:
                self.sent.append(Sent(packet, remote, wide, routed=True))
                return routed
        self.sent.append(Sent(packet, remote, wide, routed=False))
        return defer.fail(self.direct_failure) if self.direct_failure else defer.succeed(None)

    def send_data(self, data: FileBytes, remote: Identity, wide: bool = False) -> defer.Deferred[None]:
        self.data_sent.append((joined(data), remote))
        return defer.fail(self.direct_failure) if self.direct_failure else defer.succeed(None)

    def request(
        self, packet: Packet, remote: Identity, wide: bool = False, timeout: float = 20.0,
    ) -> defer.Deferred[Packet]:
        answer = self.pending.wait(packet.packet_id, packet.remote_id, packet.command, timeout)
        self.send(packet, remote, wide, timeout).addErrback(lambda f: None if answer.called else answer.errback(f))
        return answer

    def reply(
        self, request: Inbound, command: str, payload: bytes = b"", wide: bool = False,
        packet_id: str | None = None, owner_id: str | None = None,
    ) -> defer.Deferred[None]:
        answer = self.outbox(command, request.packet.owner_id, payload, packet_id or request.packet.packet_id, owner_id)
        return self.send(answer, request.creator, wide)

    def register(self, command: str, handler: Handler) -> Callable[[], None]:
        self.handlers[command].append(handler)
        return lambda: self.handlers[command].remove(handler)

    def file_received(self, data: bytes | Chunks, session: Session | None = None) -> defer.Deferred[None]:
        self.taken_in.append(data if isinstance(data, bytes) else b"".join(data))
        return defer.succeed(None)

    def fail_pending(self, packet_id: str, remote_id: str, error: Exception) -> bool:
        return self.pending.fail(packet_id, error, asked=remote_id) > 0

    def fail_pending_to(self, remote_id: str, error: Exception) -> int:
        return self.pending.fail_to(remote_id, error)

    def add_forwarder(self, forwarder: Forwarder) -> Callable[[], None]:
        raise NotImplementedError("the routed user forwards nothing")

    def use_route(self, route: OutboundRoute) -> Callable[[], None]:
        self.route = route

        def leave() -> None:
            if self.route is route:
                self.route = None

        return leave

    # -- the test's side

    def requests(self, command: str) -> list[Packet]:
        """The requests of this command still awaiting an answer, oldest first."""
        return [s.packet for s in self.sent if s.packet.command == command and self.pending.awaits(
            s.packet.packet_id, s.packet.remote_id)]

    def answer(self, request: Packet, by: MyIdentity, command: str = "Ack", payload: bytes = b"") -> None:
        """`by` answers the request, as the gateway matches answers."""
        answer = self.inbound(by, command, payload, packet_id=request.packet_id)
        if not self.pending.answer(answer.packet.packet_id, (by.idurl,), command, answer.packet):
            raise AssertionError("nobody waits for it")

    def inbound(self, by: MyIdentity, command: str, payload: bytes, packet_id: str = "in:1") -> Inbound:
        """A packet from `by` to me, signed as the gateway would have verified it."""
        me = self.me.require()
        unsigned = Packet(command, by.idurl, by.idurl, packet_id, wire.packet_date(self.clock.seconds()), payload,
                          me.idurl, by.key_id)
        packet = sign_packet(unsigned, by.key)
        return Inbound(packet, by.identity, True, wire.serialize(packet))

    def deliver(self, inbound: Inbound) -> None:
        for handler in list(self.handlers.get(inbound.packet.command, [])):
            handler(inbound)

    def relay_result(self, router: MyIdentity, relayed: bytes, error: str = "") -> Inbound:
        """The router's RelayAck (or RelayFail with `error`) to a RelayOut it was sent."""
        me = self.me.require()
        wrapped = wire.parse(relayed)
        envelope = relay.decode_envelope(relay.unseal(wrapped.payload, router.key, relay.ROUTED_OUTGOING))
        inner = wire.parse(envelope.packet)
        result = relay.result_for(envelope, inner.command, wrapped.packet_id, error)
        sealed = relay.seal(relay.encode_result(result), relay.ROUTED_INCOMING, router.idurl,
                            keys.public_key_from_openssh(me.identity.publickey), router.key)
        return self.inbound(router, "RelayFail" if error else "RelayAck", sealed, packet_id=wrapped.packet_id)


class ServedIdentities(CappedHttp):
    """Identity servers that serve what the test put in `served` (and are unreachable for the rest)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.served: dict[str, bytes] = {}

    async def get(self, url: str) -> Reply:
        if url not in self.served:
            raise Unreachable(f"GET {url}: connection refused")
        return Reply(200, self.served[url])


def identity_cache(folder: Path, clock: Clock, *served: MyIdentity) -> IdentityCache:
    http = ServedIdentities(clock)
    http.served.update({node.idurl: node.xml for node in served})
    return IdentityCache(folder, http)


@attrs.define
class FakeLookup:
    """DHT layer 2 as a list of routers; `answers` False makes a lookup fail."""

    routers: list[Identity] = attrs.field(factory=list)
    answers: bool = True
    asked: int = 0

    async def random_nodes(self, layer_id: int, count: int = 1) -> list[Identity]:
        self.asked += 1
        if not self.answers:
            raise TransportError("no DHT node answered")
        return list(self.routers[:count])


@attrs.define
class FakePublisher:
    """Records the contacts published in place of mine (None: mine again)."""

    published: list[tuple[str, ...] | None] = attrs.field(factory=list)

    def use_contacts(self, contacts: tuple[str, ...] | None) -> defer.Deferred[Any]:
        self.published.append(contacts)
        return defer.succeed(None)


@attrs.define(eq=False)
class FakeConnection:
    address: tuple[str, int]
    usable: bool = True
    bytes_in: int = 0
    bytes_out: int = 0


@attrs.define
class FakeLink:
    """The TCP transport's side the client sees: connections by address, keep-alives, closes."""

    connections: dict[tuple[str, int], FakeConnection] = attrs.field(factory=dict)
    keep_alives: list[tuple[str, int]] = attrs.field(factory=list)
    watchers: list[Callable[[Any], None]] = attrs.field(factory=list)

    def open(self, address: tuple[str, int]) -> FakeConnection:
        connection = self.connections[address] = FakeConnection(address)
        return connection

    def close(self, address: tuple[str, int]) -> None:
        connection = self.connections.pop(address)
        connection.usable = False
        for watcher in list(self.watchers):
            watcher(connection)

    def keep_alive(self, address: tuple[str, int]) -> None:
        self.keep_alives.append(address)

    def connection_to(self, address: tuple[str, int]) -> FakeConnection | None:
        return self.connections.get(address)

    def watch_closed(self, watcher: Callable[[Any], None]) -> Callable[[], None]:
        self.watchers.append(watcher)
        return lambda: self.watchers.remove(watcher)
