"""A router's relay buffers on the receive budget, without sockets: a routed user who stops reading makes the
router hold at most its part of the budget; past it, senders get the official Fail and the refusal is counted,
and once the user reads again (what waited is written to it) relaying goes on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import attrs
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.crypto.packet_signing import sign_packet
from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.identity.my_identity import MyIdentity
from bitdust_node.net.budget import ReceiveBudget
from bitdust_node.net.http import CappedHttp
from bitdust_node.proxy import relay
from bitdust_node.proxy.router import ProxyRouter, RouterLimits
from bitdust_node.transport.gateway import Gateway
from bitdust_node.transport.interfaces import Inbound
from bitdust_node.wire import packet as wire
from bitdust_node.wire.tcp_frames import FileBytes
from tests.identity.vectors import identity, private_key


@attrs.define
class StoppedReading:
    """A routed user's connection whose user reads nothing: every file it is given stays queued, unwritten."""

    peer_idurl: str = ""
    waiting: list[tuple[defer.Deferred[None], Callable[[], None] | None]] = attrs.field(factory=list)

    @property
    def usable(self) -> bool:
        return True

    def send_file(self, data: FileBytes, on_written: Callable[[], None] | None = None) -> defer.Deferred[None]:
        self.waiting.append((defer.Deferred(), on_written))
        return self.waiting[-1][0]

    def hold_reading(self, until: defer.Deferred[object]) -> None:
        pass


@attrs.define
class Contacts:
    """The TCP transport as the gateway sees it: what is sent to a peer's contacts is recorded."""

    proto: str = "tcp"
    sent: list[FileBytes] = attrs.field(factory=list)

    def send_to(
        self, contact: str, data: FileBytes, on_written: Callable[[], None] | None = None,
    ) -> defer.Deferred[None]:
        self.sent.append(data)
        if on_written is not None:
            on_written()
        return defer.succeed(None)


class RouterBudgetTests(SynchronousTestCase):
    def test_a_user_who_stops_reading_gets_its_part_then_senders_get_fail(self) -> None:
        clock = Clock()
        home = Path(self.mktemp())
        me = MyIdentityHolder(home, MyIdentity(identity("bob"), private_key("bob")))
        cache = IdentityCache(home / "cache", CappedHttp(clock))
        gateway = Gateway(clock, me, cache)
        contacts = Contacts()
        gateway.attach(contacts)
        budget = ReceiveBudget(2 * 1024 * 1024)
        router = ProxyRouter(gateway, me, cache, clock, lambda idurl: [], RouterLimits(route_rate=0), budget=budget)
        carol = identity("carol")
        session = StoppedReading(carol.sources[0])
        router.open_route(carol.sources[0], carol, session)
        alice = identity("alice")

        def send_to_carol(n: int) -> None:
            unsigned = wire.Packet("Data", alice.sources[0], alice.sources[0], f"p{n}", "d", b"x" * 100_000,
                                   carol.sources[0], "k")
            packet = sign_packet(unsigned, private_key("alice"))
            self.assertTrue(router.forward(Inbound(packet, alice, False, wire.serialize(packet))))

        for n in range(6):
            send_to_carol(n)
        # a quarter of 2 MiB holds three such packets on their way to carol; the others are refused
        self.assertEqual((len(session.waiting), router.counters["relayed_in"]), (3, 3))
        self.assertEqual(router.refusals["receive_budget"], 3)
        self.assertEqual(router.refusals["relay_in_failed"], 3)
        fails = [wire.parse(b"".join(data) if isinstance(data, tuple) else data) for data in contacts.sent]
        self.assertEqual([(f.command, f.payload) for f in fails], [("Fail", relay.TRANSFER_FAILED.encode())] * 3)
        self.assertLessEqual(budget.held, budget.total // 4)
        self.assertEqual(budget.status()["held_by_kind"], {"relayed": budget.held})
        # carol reads again: what was written to her is let go, and relaying goes on
        for waiting, written in session.waiting:
            assert written is not None
            written()
            waiting.callback(None)
        self.assertEqual(budget.held, 0)
        send_to_carol(7)
        self.assertEqual(len(session.waiting), 4)
