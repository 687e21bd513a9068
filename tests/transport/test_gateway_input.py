"""The gateway on what peers send, without sockets: a handler's bug or a crash on a packet is a counted drop with
no line above info and no traceback unless debugging; packets waiting for an identity hold their bytes against
the receive budget, shared by address, while packets from known peers go straight through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.crypto.packet_signing import sign_packet
from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.identity.my_identity import MyIdentity
from bitdust_node.net.budget import ReceiveBudget
from bitdust_node.net.http import CappedHttp
from bitdust_node.transport.gateway import IDENTITY_FETCH_TIMEOUT, Gateway, GatewayLimits
from bitdust_node.transport.interfaces import Inbound
from bitdust_node.wire import packet as wire
from tests.identity.vectors import identity, identity_bytes, private_key

GHOST = "http://127.0.0.77:8084/ghost{n}.xml"


@attrs.frozen
class FromAddress:
    """A session as the gateway sees it here: only where it comes from."""

    peer_host: str
    peer_idurl: str = ""
    usable: bool = False


class GatewayInputTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        home = Path(self.mktemp())
        me = MyIdentityHolder(home, MyIdentity(identity("bob"), private_key("bob")))
        cache = IdentityCache(home / "cache", CappedHttp(self.clock))
        cache.load()
        self.alice = cache.accept(identity("alice").sources[0], identity_bytes("alice"))
        self.budget = ReceiveBudget(100_000)
        self.gateway = Gateway(self.clock, me, cache, budget=self.budget)
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def packet(self, command: str = "Message", payload: bytes = b"hi", creator: str | None = None) -> bytes:
        creator = creator or self.alice.sources[0]
        unsigned = wire.Packet(command, creator, creator, "p1", "d", payload, identity("bob").sources[0], "k")
        return wire.serialize(sign_packet(unsigned, private_key("alice")))

    def loud(self) -> list[dict[str, Any]]:
        """Events above info, and any with a traceback above debug."""
        return [e for e in self.events if e["log_level"] > LogLevel.info
                or ("log_failure" in e and e["log_level"] > LogLevel.debug)]

    def test_a_handler_that_fails_is_a_counted_drop_without_a_traceback(self) -> None:
        def broken(inbound: Inbound) -> None:
            raise KeyError("a field the handler expected")

        self.gateway.register("Message", broken)
        self.successResultOf(self.gateway.file_received(self.packet()))
        self.assertEqual(self.gateway.dropped["handler_error"], 1)
        self.assertEqual(self.loud(), [])

    def test_a_crash_on_a_packet_is_a_counted_drop_without_a_traceback(self) -> None:
        def broken(inbound: Inbound) -> bool:
            raise RuntimeError("a bug met by what a peer sent")

        self.gateway.add_forwarder(broken)
        unsigned = wire.Packet("Data", self.alice.sources[0], self.alice.sources[0], "p2", "d", b"x", "http://h/x.xml",
                               "k")
        self.successResultOf(self.gateway.file_received(wire.serialize(sign_packet(unsigned, private_key("alice")))))
        self.assertEqual(self.gateway.dropped["crashed"], 1)
        self.assertEqual(self.loud(), [])

    def test_packets_waiting_for_an_identity_are_bounded_by_the_budget_shared_by_address(self) -> None:
        taken: list[Inbound] = []
        self.gateway.register("Message", taken.append)
        big = b"x" * 20_000  # some 40 KB held a packet: its bytes and its payload

        def stranger(n: int, host: str) -> Any:
            return self.gateway.file_received(self.packet(payload=big, creator=GHOST.format(n=n)), FromAddress(host))

        # strangers' packets from one address: their identities never come; the budget fills, then refuses
        first = [stranger(n, "10.0.0.1") for n in range(8)]
        self.assertEqual(self.gateway.dropped["over_budget"], 6)
        self.assertEqual([d.called for d in first], [False, False, *[True] * 6])
        # another address gets room: the first one's newest waiting packet gives it back
        second = stranger(100, "10.0.0.2")
        self.assertEqual(self.gateway.dropped["evicted"], 1)
        self.assertTrue(first[1].called)
        self.assertEqual([self.budget.held_by(h) > 40_000 for h in ("10.0.0.1", "10.0.0.2")], [True, True])
        self.assertLessEqual(self.budget.held, self.budget.total)
        # a known peer's packet does not wait: it goes through at once, budget or not
        self.successResultOf(self.gateway.file_received(self.packet(payload=big), FromAddress("10.0.0.1")))
        self.assertEqual(len(taken), 1)
        self.clock.advance(IDENTITY_FETCH_TIMEOUT + 1)
        for done in (*first, second):
            self.successResultOf(done)
        self.assertEqual((self.budget.held, self.gateway.dropped["creator_unknown"]), (0, 2))
        self.assertEqual(self.budget.status()["refused"], {"verifying": 6})
        self.assertEqual(self.budget.status()["evicted"], {"verifying": 1})
        self.assertEqual(self.loud(), [])

    def test_the_places_of_waiting_packets_are_shared_by_address_too(self) -> None:
        gateway = Gateway(self.clock, self.gateway.me, self.gateway.cache, GatewayLimits(max_verifying=8),
                          budget=ReceiveBudget(8_000))
        tiny = [gateway.file_received(self.packet(creator=GHOST.format(n=n)), FromAddress("10.0.0.1"))
                for n in range(9)]
        self.assertEqual((gateway.dropped["over_budget"], gateway.dropped["busy"]), (1, 0))
        other = gateway.file_received(self.packet(creator=GHOST.format(n=99)), FromAddress("10.0.0.2"))
        self.assertEqual(gateway.dropped["evicted"], 1)
        self.assertEqual(gateway.budget.held_by("10.0.0.2"), 1_000)
        self.clock.advance(IDENTITY_FETCH_TIMEOUT + 1)
        for done in (*tiny, other):
            self.successResultOf(done)
        self.assertEqual(gateway.budget.held, 0)
