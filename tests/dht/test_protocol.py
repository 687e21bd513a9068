"""RPC framing: timeouts with retries, reply matching by id and address, counters."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.trial import unittest

from bitdust_node.dht import datagram, message
from bitdust_node.dht.errors import RemoteError, RpcTimeout
from bitdust_node.dht.message import RPC_METHODS, ErrorReply, Request, Response
from bitdust_node.dht.patience import STALL_MIN, RoundTrips
from bitdust_node.dht.protocol import DhtProtocol
from bitdust_node.net.budget import ReceiveBudget
from bitdust_node.net.ratelimit import RequestLimiter
from tests.dht.memnet import MemoryNetwork

ME = "a" * 40
PEER = ("10.0.0.2", 14441)


class FakeHandler:
    def __init__(self) -> None:
        self.failed: list[tuple[str | None, tuple[str, int], int]] = []
        self.seen: list[Response] = []

    def handle_request(self, request: Request, address: tuple[str, int]) -> message.Message:
        return Response(request.msg_id, ME, "pong", request.layer)

    def response_seen(self, response: Response, address: tuple[str, int]) -> None:
        self.seen.append(response)

    def rpc_failed(self, node_id: str | None, address: tuple[str, int], layer: int) -> None:
        self.failed.append((node_id, address, layer))


class RefusingHandler(FakeHandler):
    """Answers the known RPCs; refuses any other method as a node does, naming it."""

    def handle_request(self, request: Request, address: tuple[str, int]) -> message.Message:
        if request.method not in RPC_METHODS:
            return ErrorReply(request.msg_id, ME, "builtins.AttributeError", f"Invalid method: {request.method}")
        return super().handle_request(request, address)


class ProtocolTests(unittest.TestCase):
    @property
    def sent(self) -> list[bytes]:
        return [data for _source, _target, data in self.net.sent]

    def setUp(self) -> None:
        self.clock = Clock()
        self.net = MemoryNetwork(self.clock)
        self.protocol = DhtProtocol(self.clock, rpc_timeout=10.0, rpc_retries=1)
        self.handler = FakeHandler()
        self.protocol.handler = self.handler
        self.net.listen(("10.0.0.1", 14441), self.protocol)

    def test_silent_peer_retried_then_timeout(self) -> None:
        results: list[Any] = []
        self.protocol.call(PEER, ME, "ping", [], layer=2, node_id="b" * 40).addBoth(results.append)
        self.assertEqual(len(self.sent), 1)
        self.clock.advance(10)
        self.assertEqual(len(self.sent), 2)
        self.assertEqual(self.sent[0], self.sent[1])  # the same request, same rpc id
        self.assertEqual(results, [])
        self.clock.advance(10)
        assert isinstance(results[0], Failure)
        self.assertTrue(results[0].check(RpcTimeout))
        self.assertEqual(self.handler.failed, [("b" * 40, PEER, 2)])
        self.assertEqual(self.protocol.pending_calls(), 0)

    def _reply(self, reply: message.Message, source: tuple[str, int] = PEER) -> None:
        for part in datagram.split(reply.msg_id, message.encode(reply)):
            self.protocol.datagramReceived(part, source)

    def test_reply_matched_by_id_and_address(self) -> None:
        results: list[Any] = []
        self.protocol.call(PEER, ME, "findNode", [ME]).addBoth(results.append)
        msg_id = message.decode(datagram.unpack(self.sent[0])[1]).msg_id
        self._reply(Response(msg_id, "c" * 40, [], 0), source=("10.6.6.6", 14441))
        self.assertEqual((results, self.protocol.dropped["unexpected_reply"]), ([], 1))
        self._reply(Response(msg_id, "c" * 40, [], 0))
        self.assertEqual(results, [Response(msg_id, "c" * 40, [], 0)])
        self.assertEqual(self.protocol.layer_stats(0).rpc_responses["findNode"], 1)
        self._reply(Response(msg_id, "c" * 40, [], 0))  # a late duplicate
        self.assertEqual(self.protocol.dropped["unexpected_reply"], 2)
        self.clock.advance(30)
        self.assertEqual(self.handler.failed, [])

    def test_error_reply_fails_the_call(self) -> None:
        results: list[Any] = []
        self.protocol.call(PEER, ME, "nope", []).addBoth(results.append)
        msg_id = message.decode(datagram.unpack(self.sent[0])[1]).msg_id
        self._reply(ErrorReply(msg_id, "c" * 40, "builtins.AttributeError", "Invalid method: nope"))
        self.assertTrue(results[0].check(RemoteError))
        self.assertEqual(results[0].value.text, "Invalid method: nope")

    def test_requests_counted_and_answered(self) -> None:
        request = Request("d" * 40, "c" * 40, "ping", [], 3)
        self._reply(request)
        stats = self.protocol.layer_stats(3)
        self.assertEqual((stats.packets_received, stats.rpc_calls["ping"], stats.packets_sent), (1, 1, 1))
        self.assertEqual(self.protocol.bytes_received, len(datagram.split(request.msg_id, message.encode(request))[0]))
        self.assertGreater(self.protocol.bytes_sent, 0)

    def test_method_names_a_peer_makes_up_are_counted_under_one_key_and_logged_once(self) -> None:
        events: list[dict[str, object]] = []
        self.protocol.log = Logger(observer=events.append)  # type: ignore[arg-type]
        self.protocol.handler = RefusingHandler()
        # spoofed senders, each a fresh address and a fresh 7 KB method name (one datagram each)
        for n in range(500):
            request = Request(f"{n:040x}", "c" * 40, f"{n:07d}" * 1000, [], 0)
            self._reply(request, source=(f"10.{n // 250}.{n % 250}.1", 14441))
        self._reply(Request("e" * 40, "c" * 40, "ping", [], 0))
        stats = self.protocol.layer_stats(0)
        self.assertEqual(dict(stats.rpc_calls), {"unknown": 500, "ping": 1})
        self.assertEqual(dict(self.protocol.dropped), {"refused_unknown": 500})
        self.assertEqual([e["kind"] for e in events], ["refused_unknown"])
        self.assertLessEqual(len(str(events[0]["why"])), 200)
        # nothing the node keeps holds the names: a few short keys in all
        held = [*stats.rpc_calls, *stats.rpc_responses, *self.protocol.dropped]
        self.assertLess(sum(map(len, held)), 100)

    def test_cancel_all_on_stop(self) -> None:
        results: list[Any] = []
        self.protocol.call(PEER, ME, "ping", []).addBoth(results.append)
        self.protocol.cancel_all()
        self.assertTrue(results[0].check(RpcTimeout))
        self.clock.advance(1)  # the datagram in flight
        self.assertEqual(self.clock.getDelayedCalls(), [])  # no retry timer left


class PatienceTests(unittest.TestCase):
    """Round trips of answered calls set the stall time; an address silent that long is known as such."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.net = MemoryNetwork(self.clock)
        self.protocol = DhtProtocol(self.clock, rpc_timeout=10.0, rpc_retries=1)
        self.protocol.handler = FakeHandler()
        self.net.listen(("10.0.0.1", 14441), self.protocol)

    def _answer_after(self, seconds: float, attempts_first: float = 0.0) -> None:
        results: list[Any] = []
        self.protocol.call(PEER, ME, "ping", []).addBoth(results.append)
        self.clock.advance(attempts_first)
        msg_id = message.decode(datagram.unpack(self.net.sent[-1][2])[1]).msg_id
        self.clock.advance(seconds)
        for part in datagram.split(msg_id, message.encode(Response(msg_id, "c" * 40, "pong", 0))):
            self.protocol.datagramReceived(part, PEER)
        self.assertEqual(results, [Response(msg_id, "c" * 40, "pong", 0)])

    def test_the_stall_time_is_a_few_round_trips_at_least_a_second_at_most_the_rpc_timeout(self) -> None:
        self.assertEqual(self.protocol.stall_after(), STALL_MIN)  # nothing measured yet
        for _ in range(20):
            self._answer_after(0.002)  # loopback
        self.assertEqual(self.protocol.stall_after(), STALL_MIN)
        for _ in range(40):
            self._answer_after(0.8)  # a far continent, and a busy one
        self.assertAlmostEqual(self.protocol.stall_after(), 2.4, places=1)
        for _ in range(40):
            self._answer_after(6.0)
        self.assertEqual(self.protocol.stall_after(), 10.0)

    def test_an_answer_to_a_retried_call_is_not_timed(self) -> None:
        self._answer_after(0.01, attempts_first=10.0)  # answered after the retry: to which send?
        self.assertEqual(self.protocol.round_trips.samples, 0)
        self._answer_after(0.01)
        self.assertEqual(self.protocol.round_trips.samples, 1)

    def test_an_address_is_silent_from_the_stall_time_until_it_answers_or_times_out(self) -> None:
        self.protocol.call(PEER, ME, "ping", []).addErrback(lambda _f: None)
        self.clock.advance(0.5)
        self.protocol.call(PEER, ME, "ping", []).addErrback(lambda _f: None)
        self.assertFalse(self.protocol.silent(PEER))
        self.clock.advance(0.5)
        # the first call's age counts, not the last's
        self.assertTrue(self.protocol.silent(PEER))
        self.assertFalse(self.protocol.silent(("10.0.0.3", 14441)))
        patience = self.protocol.patience()
        self.assertEqual((patience.stall_after, patience.silent(PEER)), (STALL_MIN, True))
        self.net.run(18.9)
        self.assertTrue(self.protocol.silent(PEER))
        self.net.run(0.1)  # the first call times out: the contact is forgotten, and so is its silence
        self.assertEqual(len(self.protocol.handler.failed), 1)  # type: ignore[union-attr]
        self.assertFalse(self.protocol.silent(PEER))
        self.net.run(1.0)
        self.assertEqual(self.protocol.pending_calls(), 0)

    def test_an_answer_ends_the_silence(self) -> None:
        self.protocol.call(PEER, ME, "ping", []).addErrback(lambda _f: None)
        self.clock.advance(3.0)
        self.assertTrue(self.protocol.silent(PEER))
        self._answer_after(0.01)
        self.assertFalse(self.protocol.silent(PEER))
        self.clock.advance(30)


class RoundTripTests(unittest.TestCase):
    def test_smoothed_as_tcp_does(self) -> None:
        trips = RoundTrips()
        trips.sample(0.1)
        self.assertEqual((trips.smoothed, trips.variation), (0.1, 0.05))
        trips.sample(0.3)
        self.assertAlmostEqual(trips.smoothed or 0, 0.125)
        self.assertAlmostEqual(trips.variation, 0.0875)
        # round trips that vary a lot stall later than three of them: TCP's retransmission time
        jumpy = RoundTrips(smoothed=0.5, variation=0.5)
        self.assertAlmostEqual(jumpy.stall_after(10.0), 2.5)
        self.assertEqual(jumpy.stall_after(2.0), 2.0)


class LimiterTests(unittest.TestCase):
    def test_burst_then_rate(self) -> None:
        clock = Clock()
        limiter = RequestLimiter(clock, rate=10, burst=3, max_senders=2)
        self.assertEqual([limiter.allow("a") for _ in range(4)], [True, True, True, False])
        self.assertTrue(limiter.allow("b"))
        clock.advance(0.1)
        self.assertEqual([limiter.allow("a"), limiter.allow("a")], [True, False])
        limiter.allow("c")  # forgets "b", the least recently heard
        self.assertEqual(len(limiter), 2)
        self.assertTrue(limiter.allow("b"))  # back with a full allowance
        clock.advance(10)
        limiter.allow("d")
        self.assertEqual(len(limiter), 1)  # idle senders are forgotten

    def test_flood_from_one_address_is_dropped_others_served(self) -> None:
        clock = Clock()
        net = MemoryNetwork(clock)
        protocol = DhtProtocol(clock)
        protocol.handler = FakeHandler()
        net.listen(("10.0.0.1", 14441), protocol)
        for i in range(300):
            request = Request(f"{i:040x}", "c" * 40, "ping", [])
            protocol.datagramReceived(datagram.split(request.msg_id, message.encode(request))[0], PEER)
        self.assertEqual(protocol.dropped["rate_limited"], 100)
        # requests turned away by the limiter are counted as such, not as calls of their method
        self.assertEqual(protocol.layer_stats(0).rpc_calls["ping"], 200)
        other = Request("e" * 40, "c" * 40, "ping", [])
        protocol.datagramReceived(datagram.split(other.msg_id, message.encode(other))[0], ("10.0.0.3", 1))
        self.assertEqual(protocol.layer_stats(0).packets_sent, 201)


class PartialMessageFloodTests(unittest.TestCase):
    """First parts of multi-datagram messages that never finish, from many addresses: what they hold stays within
    the caps and the node's receive budget, single-datagram requests are still answered, and once the parts are too
    old a multi-datagram message gets through again."""

    def test_a_flood_of_unfinished_messages_is_bounded_and_ages_out(self) -> None:
        clock = Clock()
        net = MemoryNetwork(clock)
        budget = ReceiveBudget()
        protocol = DhtProtocol(clock, budget=budget)
        protocol.handler = FakeHandler()
        net.listen(("10.0.0.1", 14441), protocol)
        for sender in range(20):
            for n in range(16):
                for seq in range(8):  # 8 of 64 parts: never whole
                    part = datagram.pack(datagram.Header(64, seq, f"{sender:020x}{n:020x}"), b"j" * 8000)
                    protocol.datagramReceived(part, (f"10.9.0.{sender}", 14441))
        held = protocol.reassembler.held()
        self.assertLessEqual(held, datagram.MAX_PENDING_BYTES)
        most = max(budget.held_by(f"10.9.0.{s}") for s in range(20))
        self.assertLessEqual(most, datagram.MAX_PENDING_BYTES_PER_SENDER)
        self.assertEqual(budget.held, held)
        self.assertGreater(protocol.dropped["pending_bytes_full"] + protocol.dropped["sender_bytes_full"], 0)
        # a ping, one datagram, is answered meanwhile
        ping = Request("1" * 40, "b" * 40, "ping", [], 0)
        for part in datagram.split(ping.msg_id, message.encode(ping)):
            protocol.datagramReceived(part, PEER)
        self.assertTrue(any(source == ("10.0.0.1", 14441) and target == PEER for source, target, _ in net.sent))
        # once the parts are too old, a request in several datagrams gets through
        clock.advance(datagram.PENDING_TIMEOUT + 1)
        big = Request("2" * 40, "b" * 40, "ping", ["x" * 20000], 0)
        sent_before = len(net.sent)
        for part in datagram.split(big.msg_id, message.encode(big)):
            protocol.datagramReceived(part, ("10.0.0.3", 14441))
        self.assertEqual((protocol.reassembler.held(), budget.held), (0, 0))
        self.assertEqual(len(net.sent), sent_before + 1)
