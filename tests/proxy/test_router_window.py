"""A route's windows, without sockets: past what a route has on its way, the connections that bring more for it
are held (not read) until its next hop acknowledges, in both directions; a route that does not drain releases its
senders after a while and what comes for it is refused with the official texts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.crypto import keys
from bitdust_node.crypto.packet_signing import sign_packet
from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.identity.my_identity import MyIdentity
from bitdust_node.net.budget import ReceiveBudget
from bitdust_node.net.http import CappedHttp
from bitdust_node.proxy import relay
from bitdust_node.proxy.router import ProxyRouter, RouterLimits
from bitdust_node.proxy.window import RelayWindow
from bitdust_node.transport.gateway import Gateway
from bitdust_node.transport.interfaces import Inbound
from bitdust_node.wire import packet as wire
from bitdust_node.wire.tcp_frames import FileBytes, joined
from tests.identity.vectors import identity, identity_bytes, private_key

WINDOW = 300_000
PAYLOAD = 100_000


@attrs.define(eq=False)
class Outgoing:
    """A file sent: written into the socket when the test says (`write`), acknowledged when it says (`done`)."""

    data: FileBytes
    on_written: Callable[[], None] | None
    done: defer.Deferred[None] = attrs.field(factory=defer.Deferred)

    def write(self) -> None:
        told, self.on_written = self.on_written, None
        if told is not None:
            told()

    def acknowledge(self) -> None:
        self.write()
        if not self.done.called:
            self.done.callback(None)


@attrs.define
class Connection:
    """A connection as the router sees it: files sent on it wait for the test to write them; reading held is
    recorded."""

    peer_idurl: str = ""
    sent: list[Outgoing] = attrs.field(factory=list)
    holds: list[defer.Deferred[Any]] = attrs.field(factory=list)

    @property
    def usable(self) -> bool:
        return True

    @property
    def reading(self) -> bool:
        return all(hold.called for hold in self.holds)

    def send_file(self, data: FileBytes, on_written: Callable[[], None] | None = None) -> defer.Deferred[None]:
        self.sent.append(Outgoing(data, on_written))
        return self.sent[-1].done

    def hold_reading(self, until: defer.Deferred[Any]) -> None:
        self.holds.append(until)

    def write(self) -> None:
        """The peer reads: every file sent so far is written into its socket (its `o` is not read yet)."""
        for each in self.sent:
            each.write()

    def acknowledge(self) -> None:
        for each in self.sent:
            each.acknowledge()


@attrs.define
class Contacts:
    """The TCP transport as the gateway sees it: each send to a peer's contacts waits for the test (`sent`)."""

    proto: str = "tcp"
    sent: list[Outgoing] = attrs.field(factory=list)

    def send_to(
        self, contact: str, data: FileBytes, on_written: Callable[[], None] | None = None,
    ) -> defer.Deferred[None]:
        self.sent.append(Outgoing(data, on_written))
        return self.sent[-1].done


class RelayWindowTests(SynchronousTestCase):
    def test_room_comes_with_acknowledgements_or_after_the_wait(self) -> None:
        clock = Clock()
        window = RelayWindow(clock, 100, 10.0)
        first = window.take(60)
        self.assertTrue(window.room().called)  # room still: nobody waits
        second = window.take(60)
        self.assertTrue(window.full)
        waiting = window.room()
        self.assertFalse(waiting.called)
        first()
        first()  # given back once only
        self.assertTrue(waiting.called)
        self.assertEqual(window.held, 60)
        third = window.take(60)
        late = window.room()
        clock.advance(9.9)
        self.assertFalse(window.stuck or late.called)
        clock.advance(0.1)
        self.assertTrue(late.called and window.stuck)
        second()  # an acknowledgement while still full: it drains, so it is not stuck
        self.assertFalse(window.stuck)
        third()
        self.assertEqual((window.held, window.full_since), (0, None))


class RouterWindowTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        home = Path(self.mktemp())
        self.me = MyIdentityHolder(home, MyIdentity(identity("bob"), private_key("bob")))
        self.cache = IdentityCache(home / "cache", CappedHttp(self.clock))
        self.alice, self.carol = identity("alice"), identity("carol")
        self.cache.keep(self.alice.sources[0], self.alice, identity_bytes("alice"))
        gateway = Gateway(self.clock, self.me, self.cache)
        self.contacts = Contacts()
        gateway.attach(self.contacts)
        self.router = ProxyRouter(gateway, self.me, self.cache, self.clock, lambda idurl: [],
                                  RouterLimits(route_rate=0, window=WINDOW, window_wait=10.0),
                                  budget=ReceiveBudget(64 * 1024 * 1024))
        self.carol_line = Connection(self.carol.sources[0])
        self.router.open_route(self.carol.sources[0], self.carol, self.carol_line)
        self.alice_line = Connection(self.alice.sources[0])

    def alice_to_carol(self, number: int) -> None:
        unsigned = wire.Packet("Data", self.alice.sources[0], self.alice.sources[0], f"p{number}", "d",
                               b"x" * PAYLOAD, self.carol.sources[0], "k")
        packet = sign_packet(unsigned, private_key("alice"))
        inbound = Inbound(packet, self.alice, False, wire.serialize(packet), session=self.alice_line)
        self.assertTrue(self.router.forward(inbound))

    def test_a_slow_user_holds_its_senders_back_and_nothing_is_refused(self) -> None:
        for number in range(3):
            self.alice_to_carol(number)
        # three RelayIns of about 133 KB fill a window of 300 KB: alice's connection is read no more
        self.assertEqual(len(self.carol_line.sent), 3)
        self.assertFalse(self.alice_line.reading)
        self.alice_to_carol(3)  # what was read already is relayed all the same
        self.assertEqual(len(self.carol_line.sent), 4)
        self.carol_line.write()  # carol reads: her `o`s need not have been read for alice to be read again
        self.assertTrue(self.alice_line.reading)
        self.assertEqual(self.router.routes[self.carol.sources[0]].incoming.held, 0)
        self.assertEqual((dict(self.router.refusals), self.alice_line.sent), ({}, []))
        self.assertEqual(self.router.counters["senders_held"], 2)
        self.alice_to_carol(4)  # with room, alice is not held
        self.assertEqual((self.alice_line.reading, self.router.counters["senders_held"]), (True, 2))

    def test_a_user_who_stops_reading_releases_its_senders_then_they_get_fail(self) -> None:
        for number in range(3):
            self.alice_to_carol(number)
        self.assertFalse(self.alice_line.reading)
        self.clock.advance(10)
        self.assertTrue(self.alice_line.reading)
        self.alice_to_carol(3)
        self.assertEqual(len(self.carol_line.sent), 3)
        self.assertEqual(self.router.refusals["window_stuck"], 1)
        # back on the connection it came on
        fails = [wire.parse(joined(each.data)) for each in self.alice_line.sent]
        self.assertEqual([(f.command, f.payload) for f in fails], [("Fail", relay.TRANSFER_FAILED.encode())])
        # carol reads again: the route takes packets again
        self.carol_line.write()
        self.alice_to_carol(4)
        self.assertEqual(len(self.carol_line.sent), 4)

    def relay_out(self, number: int) -> defer.Deferred[None]:
        """carol's RelayOut of a Data packet for alice, on carol's connection."""
        inner = sign_packet(wire.Packet("Data", self.carol.sources[0], self.carol.sources[0], f"q{number}", "d",
                                        b"y" * PAYLOAD, self.alice.sources[0], "k"), private_key("carol"))
        envelope = relay.Envelope(self.carol.sources[0], self.alice.sources[0], wire.serialize(inner))
        router_key = keys.public_key_from_openssh(self.me.require().identity.publickey)
        payload = relay.seal(relay.encode_envelope(envelope), relay.ROUTED_OUTGOING, self.carol.sources[0],
                             router_key, private_key("carol"))
        packet = sign_packet(wire.Packet("RelayOut", self.carol.sources[0], self.carol.sources[0], f"q{number}",
                                         "d", payload, self.me.require().idurl, "k"), private_key("carol"))
        inbound = Inbound(packet, self.carol, True, wire.serialize(packet), session=self.carol_line)
        return defer.ensureDeferred(self.router.relay_out_received(inbound))

    def test_a_user_sending_faster_than_the_next_hop_takes_is_held_back(self) -> None:
        handled = [self.relay_out(number) for number in range(4)]
        self.assertEqual(len(self.contacts.sent), 4)
        self.assertFalse(self.carol_line.reading)  # three packets of 100 KB and more fill 300 KB
        self.assertFalse(any(done.called for done in handled))
        for each in self.contacts.sent:
            each.write()  # alice reads
        self.assertTrue(self.carol_line.reading)
        self.assertFalse(any(done.called for done in handled))  # RelayAck once delivered: alice's `o`
        for each in self.contacts.sent:
            each.acknowledge()
        self.carol_line.acknowledge()  # carol's `o` for the RelayAcks
        self.assertTrue(all(done.called for done in handled))
        results = [wire.parse(joined(each.data)).command for each in self.carol_line.sent]
        self.assertEqual(results, ["RelayAck"] * 4)
        self.assertEqual(self.router.routes[self.carol.sources[0]].outgoing.held, 0)
