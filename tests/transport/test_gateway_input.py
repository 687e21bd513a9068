"""The gateway on what peers send, without sockets: a handler's bug or a crash on a packet is a counted drop with
no line above info and no traceback unless debugging; packets waiting for an identity hold their bytes against
the receive budget, shared by address, while packets from known peers go straight through."""

from __future__ import annotations

import base64
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

    def data_in_reads(self, creator: str | None = None) -> tuple[bytes, list[bytes], tuple[memoryview, ...]]:
        """A Data packet for me of some 400 KB in three reads that hold bytes of other frames around it, and its
        chunks: views of the reads, as a connection hands a file on."""
        data = self.packet("Data", base64.b64encode(bytes(range(256)) * 1200), creator)
        reads = [b"<" * 1000 + data[:100_000], data[100_000:250_000], data[250_000:] + b">" * 5000]
        chunks = (memoryview(reads[0])[1000:], memoryview(reads[1]), memoryview(reads[2])[:-5000])
        return data, reads, chunks

    def test_a_data_packet_for_raw_takers_is_handed_on_as_views_and_to_others_joined(self) -> None:
        taken: list[Inbound] = []
        # verified where it arrives (a test has no threads)
        gateway = Gateway(self.clock, self.gateway.me, self.gateway.cache, GatewayLimits(thread_verify_from=1 << 62))
        gateway.register("Data", taken.append, raw_payload=True)
        data, reads, chunks = self.data_in_reads()
        self.successResultOf(gateway.file_received(chunks))
        unjoined = taken.pop()
        payload = wire.parse(data).payload
        self.assertEqual((unjoined.packet.payload, unjoined.payload_size), (b"", len(payload)))
        assert unjoined.payload_pieces is not None
        self.assertEqual(b"".join(unjoined.payload_pieces), payload)
        self.assertTrue(all(piece.obj in reads for piece in unjoined.payload_pieces))  # nothing copied
        self.assertEqual(b"".join(unjoined.raw), data)
        # one handler that wants the payload joined: every one gets the packet as today
        gateway.register("Data", lambda inbound: None)
        self.successResultOf(gateway.file_received(self.data_in_reads()[2]))
        joined = taken.pop()
        self.assertEqual((joined.packet.payload, joined.payload_pieces, joined.payload_size),
                         (payload, None, len(payload)))
        self.assertEqual(b"".join(joined.raw), data)
        self.assertEqual(gateway.counters["payloads_unjoined"], 1)

    def test_a_data_packet_held_as_views_claims_the_reads_they_keep(self) -> None:
        budget = ReceiveBudget(10 << 20)
        gateway = Gateway(self.clock, self.gateway.me, self.gateway.cache, budget=budget)
        gateway.register("Data", lambda inbound: None, raw_payload=True)
        data, reads, chunks = self.data_in_reads(GHOST.format(n=1))
        waiting = gateway.file_received(chunks, FromAddress("10.0.0.1"))
        # the reads whole (the bytes of other frames in them too), and the copies of the JSON around the payload
        held = budget.held_by("10.0.0.1")
        self.assertTrue(sum(len(read) for read in reads) < held < sum(len(read) for read in reads) + 1000, held)
        self.clock.advance(IDENTITY_FETCH_TIMEOUT + 1)
        self.successResultOf(waiting)
        self.assertEqual((budget.held, gateway.counters["payloads_unjoined"]), (0, 1))
        # joined (another handler wants the payload): the file's bytes, as before
        gateway.register("Data", lambda inbound: None)
        data, _, chunks = self.data_in_reads(GHOST.format(n=2))
        waiting = gateway.file_received(chunks, FromAddress("10.0.0.1"))
        self.assertEqual(budget.held_by("10.0.0.1"), len(data))
        self.clock.advance(IDENTITY_FETCH_TIMEOUT + 1)
        self.successResultOf(waiting)

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
