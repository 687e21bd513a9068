"""The TCP connection and node without sockets: handshake deadline, idle timeout and keep-alive on a
Clock, back-pressure from the socket, the bounded send queue, and dial backoff with jitter."""

from __future__ import annotations

import random
from typing import Any

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.net.budget import ReceiveBudget
from bitdust_node.transport.connection import State, TcpConnection, parse_hello
from bitdust_node.transport.errors import ConnectionClosed, SendQueueFull, SendTimeout, Unreachable
from bitdust_node.transport.limits import TcpLimits
from bitdust_node.transport.tcp import TcpNode
from bitdust_node.wire import tcp_frames

HELLO = tcp_frames.encode_frame(tcp_frames.HELLO, b"127.0.0.2:7771 http://h/bob.xml")


class Harness:
    def __init__(self, limits: TcpLimits | None = None, budget: ReceiveBudget | None = None) -> None:
        self.reactor = MemoryReactorClock()
        self.files: list[bytes] = []
        self.node = TcpNode(self.reactor, lambda: ("127.0.0.1", 7771), lambda: "http://h/alice.xml",
                            lambda _c, data: self.files.append(b"".join(data)), limits, rng=random.Random(7),
                            budget=budget)

    def incoming(self, host: str = "127.0.0.2") -> tuple[TcpConnection, StringTransport]:
        connection = self.node.track(TcpConnection(self.node), host)
        transport = StringTransport(peerAddress=IPv4Address("TCP", host, 40000))
        connection.makeConnection(transport)
        return connection, transport


def frames(transport: StringTransport) -> list[tcp_frames.Frame]:
    return tcp_frames.FrameDecoder(max_frame=1 << 20).feed(transport.value())


class HandshakeTests(SynchronousTestCase):
    def test_hello_forms(self) -> None:
        self.assertEqual(parse_hello(b"127.0.0.1:7771 http://x/a.xml"), (("127.0.0.1", 7771), "http://x/a.xml"))
        for bad in (b"127.0.0.1:7771", b"a b c", b"127.0.0.1:0 x", b"127.0.0.1:99999 x", b"host x"):
            self.assertIsNone(parse_hello(bad))

    def test_silent_peer_is_dropped_at_the_deadline(self) -> None:
        h = Harness()
        _connection, transport = h.incoming()
        h.reactor.advance(9.9)
        self.assertFalse(transport.disconnecting)
        h.reactor.advance(0.2)
        self.assertEqual(h.node.counters["refused_timeout_no_handshake"], 1)

    def test_idle_connection_closes_and_keep_alive_keeps_it(self) -> None:
        h = Harness(TcpLimits(idle_timeout=30.0))
        connection, transport = h.incoming()
        connection.dataReceived(HELLO)
        self.assertEqual(connection.state, State.CONNECTED)
        for _ in range(5):
            h.reactor.advance(20.0)
            connection.dataReceived(tcp_frames.encode_frame(tcp_frames.WAZAP, b"http://h/bob.xml"))
        self.assertFalse(transport.disconnecting)
        h.reactor.advance(31.0)
        self.assertEqual(h.node.counters["refused_timeout_idle"], 1)

    def test_a_connected_session_idles_out_after_300_seconds_of_silence(self) -> None:
        h = Harness()
        connection, transport = h.incoming()
        connection.dataReceived(HELLO)
        h.reactor.advance(299.0)
        connection.dataReceived(tcp_frames.encode_frame(tcp_frames.WAZAP, b"http://h/bob.xml"))  # moves the deadline
        h.reactor.advance(299.0)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(connection.state, State.CONNECTED)
        h.reactor.advance(1.5)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(h.node.counters["refused_timeout_idle"], 1)

    def test_a_file_left_half_sent_drops_the_peer_after_the_stall_timeout(self) -> None:
        budget = ReceiveBudget(1 << 20)
        h = Harness(budget=budget)
        connection, transport = h.incoming()
        connection.dataReceived(HELLO)
        h.reactor.advance(200.0)
        first = tcp_frames.encode_data(9, b"s" * 50_000)[0]
        connection.dataReceived(first)
        self.assertGreater(budget.held, 0)
        h.reactor.advance(59.0)
        self.assertFalse(transport.disconnecting)
        h.reactor.advance(1.5)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(h.node.counters["refused_timeout_stalled_file"], 1)
        connection.connectionLost()
        self.assertEqual(budget.held, 0)

    def test_a_peer_this_side_keeps_waiting_is_not_stalled(self) -> None:
        h = Harness()
        connection, transport = h.incoming()
        connection.dataReceived(HELLO + tcp_frames.encode_data(9, b"s" * 50_000)[0])
        disk = defer.Deferred[None]()
        connection.hold_reading(disk)
        h.reactor.advance(200.0)
        self.assertFalse(transport.disconnecting)
        disk.callback(None)
        h.reactor.advance(59.0)
        self.assertFalse(transport.disconnecting)
        h.reactor.advance(1.5)
        self.assertTrue(transport.disconnecting)

    def test_keep_alive_sends_a_wazap_with_my_idurl(self) -> None:
        h = Harness()
        connection, transport = h.incoming()
        connection.dataReceived(HELLO)
        transport.clear()
        connection.keep_alive()
        self.assertEqual([(f.command, f.payload) for f in frames(transport)], [(b"w", b"http://h/alice.xml")])


class SendingTests(SynchronousTestCase):
    def test_socket_push_back_pauses_writing_and_resume_goes_on(self) -> None:
        h = Harness()
        connection, transport = h.incoming()
        connection.dataReceived(HELLO)
        transport.clear()
        connection.pauseProducing()
        done = connection.send_file(b"x" * 100_000)
        self.assertEqual(transport.value(), b"")  # paused: nothing written
        connection.resumeProducing()
        chunks = [tcp_frames.decode_data(f.payload) for f in frames(transport)]
        self.assertEqual(sum(len(c.chunk) for c in chunks), 100_000)
        self.assertNoResult(done)
        connection.dataReceived(tcp_frames.encode_ok(chunks[0].file_id))
        self.successResultOf(done)

    def test_a_large_file_goes_out_a_step_at_a_time_and_the_next_one_after_it(self) -> None:
        h = Harness(TcpLimits(socket_buffer=2 * tcp_frames.MAX_CHUNK))
        connection, transport = h.incoming()
        connection.dataReceived(HELLO)
        transport.clear()
        writes: list[bytes] = []
        original = transport.write

        def pushing_back(data: bytes) -> None:  # a socket whose buffer is full after every write
            writes.append(data)
            original(data)
            connection.pauseProducing()

        transport.write = pushing_back  # type: ignore[method-assign]
        first, second = b"a" * 100_000, b"b" * 10
        sends = [connection.send_file(first), connection.send_file(second)]
        for _ in range(10):
            connection.resumeProducing()
        chunk_counts = [len(tcp_frames.FrameDecoder().feed(w)) for w in writes]
        self.assertEqual(chunk_counts, [2, 2, 2, 1, 1])  # 32 KiB steps of the first file, then the second
        decoded = [tcp_frames.decode_data(f.payload) for f in frames(transport)]
        self.assertEqual(b"".join(c.chunk for c in decoded if c.file_id == decoded[0].file_id), first)
        self.assertEqual(decoded[-1].chunk, second)
        self.assertEqual({c.total_size for c in decoded[:-1]}, {100_000})
        for file_id in (decoded[0].file_id, decoded[-1].file_id):
            connection.dataReceived(tcp_frames.encode_ok(file_id))
        for done in sends:
            self.successResultOf(done)

    def test_reading_is_held_until_every_hold_is_released(self) -> None:
        h = Harness()
        connection, transport = h.incoming()
        connection.dataReceived(HELLO)
        first, second = defer.Deferred[None](), defer.Deferred[None]()
        connection.hold_reading(first)
        connection.hold_reading(second)
        self.assertEqual(transport.producerState, "paused")
        first.callback(None)
        self.assertEqual(transport.producerState, "paused")
        second.callback(None)
        self.assertEqual(transport.producerState, "producing")

    def test_the_send_queue_is_bounded(self) -> None:
        h = Harness(TcpLimits(max_queue_bytes=50_000))
        connection, _transport = h.incoming()
        connection.dataReceived(HELLO)
        connection.pauseProducing()
        first = connection.send_file(b"x" * 40_000)
        self.failureResultOf(connection.send_file(b"y" * 20_000), SendQueueFull)
        self.assertNoResult(first)

    def test_a_file_never_acknowledged_fails_and_frees_its_place(self) -> None:
        h = Harness(TcpLimits(max_unacked_files=1))
        connection, transport = h.incoming()
        connection.dataReceived(HELLO)
        transport.clear()
        refused, after = connection.send_file(b"refused"), connection.send_file(b"after")
        self.assertEqual(len(frames(transport)), 1)
        h.reactor.advance(119.0)
        self.assertNoResult(refused)
        h.reactor.advance(1.5)
        self.assertIn("did not acknowledge", str(self.failureResultOf(refused, SendTimeout).value))
        self.assertEqual(len(frames(transport)), 2)  # the next one went out in its place
        connection.dataReceived(tcp_frames.encode_ok(tcp_frames.decode_data(frames(transport)[1].payload).file_id))
        self.successResultOf(after)
        self.assertEqual(h.node.counters["files_not_acknowledged"], 1)

    def test_the_ack_is_awaited_from_when_a_slow_socket_last_drained(self) -> None:
        h = Harness(TcpLimits(write_stall_timeout=1000.0))
        connection, _transport = h.incoming()
        connection.dataReceived(HELLO)
        sent = connection.send_file(b"on a slow link")
        connection.pauseProducing()  # the socket's buffer is full: what was written is still on its way
        h.reactor.advance(300.0)
        self.assertNoResult(sent)
        h.reactor.advance(100.0)
        connection.resumeProducing()  # drained at last
        h.reactor.advance(119.0)
        self.assertNoResult(sent)
        h.reactor.advance(121.0)
        self.failureResultOf(sent, SendTimeout)

    def test_a_peer_that_reads_nothing_is_dropped_and_what_waited_for_it_fails(self) -> None:
        h = Harness()
        connection, transport = h.incoming()
        connection.dataReceived(HELLO)
        told: list[str] = []
        sent = connection.send_file(b"x" * 100_000, lambda: told.append("written"))
        connection.pauseProducing()  # the socket's buffers are full and stay full
        queued = connection.send_file(b"y" * 100_000, lambda: told.append("gone"))
        for _ in range(11):  # its keep-alives say it lives; it reads nothing
            h.reactor.advance(10.0)
            connection.dataReceived(tcp_frames.encode_frame(tcp_frames.WAZAP, b"http://h/bob.xml"))
        self.assertFalse(transport.disconnecting)
        h.reactor.advance(10.5)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(h.node.counters["refused_timeout_peer_not"], 1)
        connection.connectionLost()
        self.failureResultOf(sent)
        self.failureResultOf(queued)
        self.assertEqual(told, ["written", "gone"])
        self.assertEqual(h.reactor.getDelayedCalls(), [])

    def test_a_socket_that_drains_now_and_then_is_not_stalled(self) -> None:
        h = Harness()
        connection, transport = h.incoming()
        connection.dataReceived(HELLO)
        for _ in range(5):
            connection.pauseProducing()
            h.reactor.advance(100.0)
            connection.resumeProducing()
            connection.dataReceived(tcp_frames.encode_frame(tcp_frames.WAZAP, b"http://h/bob.xml"))
        self.assertFalse(transport.disconnecting)

    def test_at_most_twenty_files_await_their_ok(self) -> None:
        h = Harness()
        connection, transport = h.incoming()
        connection.dataReceived(HELLO)
        transport.clear()
        sends = [connection.send_file(b"%d" % n) for n in range(25)]
        self.assertEqual(len(frames(transport)), 20)
        first_id = tcp_frames.decode_data(frames(transport)[0].payload).file_id
        connection.dataReceived(tcp_frames.encode_ok(first_id))
        self.successResultOf(sends[0])
        self.assertEqual(len(frames(transport)), 21)

    def test_while_its_reading_is_held_more_files_may_await_their_unread_ok(self) -> None:
        h = Harness()
        connection, transport = h.incoming()
        connection.dataReceived(HELLO)
        transport.clear()
        for n in range(25):
            connection.send_file(b"%d" % n)
        self.assertEqual(len(frames(transport)), 20)
        # this side reads nothing for a while: the peer's `o`s wait unread, the files behind need not
        held = defer.Deferred[None]()
        connection.hold_reading(held)
        self.assertEqual(len(frames(transport)), 25)
        held.callback(None)

    def test_written_is_told_once_the_file_is_in_the_socket_not_on_its_ok(self) -> None:
        h = Harness()
        connection, _transport = h.incoming()
        connection.dataReceived(HELLO)
        told: list[str] = []
        connection.pauseProducing()  # the socket's buffer is full
        done = connection.send_file(b"x" * 100_000, lambda: told.append("written"))
        self.assertEqual(told, [])
        connection.resumeProducing()
        self.assertEqual(told, ["written"])
        self.assertNoResult(done)
        connection.connectionLost()
        self.failureResultOf(done)
        self.assertEqual(told, ["written"])  # once
        refused = connection.send_file(b"late", lambda: told.append("failed"))
        self.failureResultOf(refused)
        self.assertEqual(told, ["written", "failed"])

    def test_a_closed_connection_fails_what_was_queued(self) -> None:
        h = Harness()
        connection, _transport = h.incoming()
        connection.dataReceived(HELLO)
        pending = connection.send_file(b"data")
        connection.connectionLost()
        self.failureResultOf(pending)
        self.assertEqual(h.node.by_address, {})

    def test_a_connection_being_closed_takes_no_new_file_before_it_is_lost(self) -> None:
        h = Harness()
        connection, _transport = h.incoming()
        connection.dataReceived(HELLO)
        self.assertIs(h.node.connection_to(("127.0.0.2", 7771)), connection)
        # an abort says connectionLost only on the reactor's next turn: until then nothing new goes its way
        connection.close("refused", abort=True)
        self.assertEqual((connection.state, connection.usable), (State.CONNECTED, False))
        self.assertIsNone(h.node.connection_to(("127.0.0.2", 7771)))
        self.failureResultOf(connection.send_file(b"late"), ConnectionClosed)
        connection.connectionLost()
        self.assertEqual(h.node.by_address, {})

    def test_incoming_file_is_acknowledged_and_delivered(self) -> None:
        h = Harness()
        connection, transport = h.incoming()
        connection.dataReceived(HELLO + b"".join(tcp_frames.encode_data(42, b"z" * 40_000)))
        self.assertEqual(h.files, [b"z" * 40_000])
        self.assertEqual(frames(transport)[-1], tcp_frames.Frame(b"o", tcp_frames.encode_ok(42)[6:]))


class BackoffTests(SynchronousTestCase):
    def test_failed_dials_back_off_with_jitter_then_retry(self) -> None:
        h = Harness()
        target = ("127.0.0.9", 7771)
        attempt: Any = h.node.send(target, b"data")
        _host, _port, factory, _timeout, _bind = h.reactor.tcpClients[-1]
        factory.clientConnectionFailed(None, _Reason("refused"))
        self.failureResultOf(attempt, Unreachable)
        # inside the backoff: refused at once, no new dial
        self.failureResultOf(h.node.send(target, b"data"), Unreachable)
        self.assertEqual(len(h.reactor.tcpClients), 1)
        h.reactor.advance(1.3)  # first delay is 1 s, +-25 %
        again = h.node.send(target, b"data")
        self.assertEqual(len(h.reactor.tcpClients), 2)
        factory = h.reactor.tcpClients[-1][2]
        factory.clientConnectionFailed(None, _Reason("refused"))
        self.assertIn("cannot connect to 127.0.0.9:7771", str(self.failureResultOf(again, Unreachable).value))
        failures, until = h.node._backoff[target]
        self.assertEqual(failures, 2)
        self.assertTrue(1.5 <= until - h.reactor.seconds() <= 2.5)

    def fail_dial(self, h: Harness, target: tuple[str, int]) -> None:
        attempt = h.node.send(target, b"data")
        h.reactor.tcpClients[-1][2].clientConnectionFailed(None, _Reason("refused"))
        self.failureResultOf(attempt, Unreachable)

    def test_addresses_are_forgotten_once_their_backoff_is_long_over(self) -> None:
        h = Harness()
        for n in range(100):
            self.fail_dial(h, (f"10.0.{n}.1", 7771))
        self.assertEqual(len(h.node._backoff), 100)
        # over after at most 1.25 s, and forgotten a minute later: a scan a minute takes them all
        h.reactor.advance(61.3)
        self.fail_dial(h, ("10.1.0.1", 7771))
        self.assertEqual(list(h.node._backoff), [("10.1.0.1", 7771)])
        # one dialed again after that starts over at 1 s: the jitter's +-25 % of 1 s
        self.fail_dial(h, ("10.0.0.1", 7771))
        failures, until = h.node._backoff[("10.0.0.1", 7771)]
        self.assertEqual(failures, 1)
        self.assertTrue(0.75 <= until - h.reactor.seconds() <= 1.25)

    def test_a_peer_still_failing_keeps_its_growing_backoff(self) -> None:
        h = Harness()
        target = ("127.0.0.9", 7771)
        for failures in range(1, 9):
            if failures > 1:  # dialed again within a minute of its backoff's end
                h.reactor.advance(h.node._backoff[target][1] - h.reactor.seconds() + 30.0)
            self.fail_dial(h, target)
            self.assertEqual(h.node._backoff[target][0], failures)
        self.assertTrue(45.0 <= h.node._backoff[target][1] - h.reactor.seconds() <= 75.0)  # 60 s, +-25 %

    def test_the_table_keeps_the_latest_failures_within_its_cap(self) -> None:
        h = Harness(TcpLimits(max_backoff_addresses=50))
        for n in range(200):
            self.fail_dial(h, (f"10.0.{n}.1", 7771))
        self.assertEqual(len(h.node._backoff), 50)
        self.assertEqual(next(iter(h.node._backoff)), ("10.0.150.1", 7771))
        self.assertEqual(h.node.counters["backoff_forgotten"], 150)
        # the latest still back off: no new dial
        self.failureResultOf(h.node.send(("10.0.199.1", 7771), b"data"), Unreachable)
        self.assertEqual(len(h.reactor.tcpClients), 200)

    def test_addresses_refused_by_the_connection_cap_leave_nothing_behind(self) -> None:
        h = Harness(TcpLimits(max_connections=1))
        h.incoming()
        for n in range(100):
            refused = h.node.send((f"10.0.{n}.1", 7771), b"data")
            self.assertIn("no room for another connection", str(self.failureResultOf(refused, Unreachable).value))
        self.assertEqual(h.node.counters["connection_refused_cap"], 100)
        self.assertEqual(h.node._backoff, {})
        self.assertEqual(h.reactor.tcpClients, [])

    def test_sending_to_myself_is_refused(self) -> None:
        h = Harness()
        self.failureResultOf(h.node.send(("127.0.0.1", 7771), b"x"), Unreachable)


class _Reason:
    def __init__(self, text: str) -> None:
        self.text = text

    def getErrorMessage(self) -> str:
        return self.text


class ReceiveBudgetTests(SynchronousTestCase):
    """Unfinished files take their room from the node's receive budget, shared by the addresses peers come from."""

    def connected(self, h: Harness, host: str) -> tuple[TcpConnection, StringTransport]:
        connection, transport = h.incoming(host)
        connection.dataReceived(HELLO)
        transport.clear()
        return connection, transport

    def test_a_file_without_room_waits_unread_and_goes_in_once_room_is_back(self) -> None:
        budget = ReceiveBudget(400_000)  # files that can wait take half of it
        h = Harness(budget=budget)
        holder, holder_wire = self.connected(h, "10.0.0.1")
        connection, transport = self.connected(h, "10.0.0.2")
        first, second = b"1" * 100_000, b"2" * 100_000
        holder.dataReceived(tcp_frames.encode_data(1, first)[0])  # takes 200,000: its size and slack
        connection.dataReceived(tcp_frames.encode_file(2, second) + tcp_frames.encode_file(3, b"a ping"))
        # no room for the second: the connection is not read, what came after it waits with it
        self.assertEqual((h.files, transport.producerState), ([], "paused"))
        self.assertEqual(h.node.counters["refused_receive_budget"], 0)
        h.reactor.advance(5)
        self.assertEqual(h.files, [])
        holder.dataReceived(b"".join(tcp_frames.encode_data(1, first)[1:]))
        h.reactor.advance(0)  # the first let its room go: the second goes in, then the ping
        self.assertEqual(h.files, [first, second, b"a ping"])
        self.assertEqual([tcp_frames.decode_ok(f.payload) for f in frames(holder_wire)], [1])
        self.assertEqual([tcp_frames.decode_ok(f.payload) for f in frames(transport)], [2, 3])
        self.assertEqual(transport.producerState, "producing")
        self.assertEqual((budget.held, budget.status()["refused"], budget.waiting_reads), (0, {}, 0))

    def test_a_connection_whose_own_unfinished_file_holds_the_room_does_not_wait_on_itself(self) -> None:
        # pausing it would stop the very file whose end frees the room: its next file is taken as after a wait
        budget = ReceiveBudget(400_000)
        h = Harness(budget=budget)
        connection, transport = self.connected(h, "10.0.0.1")
        first, second = b"1" * 100_000, b"2" * 100_000
        connection.dataReceived(tcp_frames.encode_data(1, first)[0])
        connection.dataReceived(tcp_frames.encode_data(2, second)[0])
        self.assertEqual(transport.producerState, "producing")
        self.assertEqual(h.node.counters["waited_for_room"], 0)
        connection.dataReceived(b"".join(tcp_frames.encode_data(1, first)[1:] + tcp_frames.encode_data(2, second)[1:]))
        self.assertEqual(h.files, [first, second])
        self.assertEqual(budget.held, 0)

    def test_a_connection_closed_while_it_waits_for_room_lets_its_read_go(self) -> None:
        budget = ReceiveBudget(400_000)
        h = Harness(budget=budget)
        connection, _transport = self.connected(h, "10.0.0.1")
        other, _ = self.connected(h, "10.0.0.2")
        other.dataReceived(tcp_frames.encode_data(1, bytes(100_000))[0])
        connection.dataReceived(tcp_frames.encode_data(2, bytes(100_000))[0])
        self.assertGreater(budget.waiting_reads, 0)
        connection.connectionLost()
        self.assertEqual((budget.waiting_reads, budget.status()["waiting"]), (0, 0))
        other.connectionLost()
        h.reactor.advance(TcpLimits().admission_wait)
        self.assertEqual(budget.held, 0)

    def test_past_the_budget_a_file_is_followed_to_its_end_not_kept_nor_acknowledged(self) -> None:
        budget = ReceiveBudget(300_000)
        h = Harness(budget=budget)
        connection, transport = self.connected(h, "10.0.0.1")
        kept, refused = b"k" * 100_000, b"r" * 100_000
        connection.dataReceived(tcp_frames.encode_data(1, kept)[0])  # takes 200,000: its size and slack
        self.assertEqual(budget.held, tcp_frames.file_allowance(100_000))
        stream = tcp_frames.encode_file(2, refused) + tcp_frames.encode_file(3, b"a ping")
        connection.dataReceived(stream)
        h.reactor.advance(TcpLimits().admission_wait)  # no room came in the time a file may wait
        self.assertEqual(h.files, [b"a ping"])  # a packet in one chunk needs no room
        self.assertEqual(h.node.counters["refused_receive_budget"], 1)
        self.assertEqual([tcp_frames.decode_ok(f.payload) for f in frames(transport)], [3])
        connection.dataReceived(b"".join(tcp_frames.encode_data(1, kept)[1:]))
        self.assertEqual(h.files, [b"a ping", kept])
        self.assertEqual((budget.held, budget.status()["refused"]), (0, {"unfinished_file": 1}))

    def test_another_address_takes_room_back_from_the_one_holding_most(self) -> None:
        budget = ReceiveBudget(4 * tcp_frames.file_allowance(100_000))
        h = Harness(budget=budget)
        attackers = [self.connected(h, "10.0.0.1")[0] for _ in range(4)]
        for n, attacker in enumerate(attackers):
            attacker.dataReceived(tcp_frames.encode_data(n, bytes(100_000))[0])
        h.reactor.advance(TcpLimits().admission_wait)  # past half the budget, the last two waited for room first
        self.assertEqual(budget.held_by("10.0.0.1"), budget.total)
        # a fifth file from the same address: refused once it waited, nothing taken from its own
        attackers[0].dataReceived(tcp_frames.encode_data(4, bytes(100_000))[0])
        h.reactor.advance(TcpLimits().admission_wait)
        self.assertEqual(h.node.counters["refused_receive_budget"], 1)
        peer, transport = self.connected(h, "10.0.0.2")
        wanted = b"w" * 150_000
        peer.dataReceived(tcp_frames.encode_file(7, wanted))
        self.assertEqual(h.files, [])  # it waits for room first
        h.reactor.advance(TcpLimits().admission_wait)
        self.assertEqual(h.files, [wanted])
        self.assertEqual(tcp_frames.decode_ok(frames(transport)[-1].payload), 7)
        # its 300,000 came from the two newest files of the address that held everything
        self.assertEqual(h.node.counters["files_evicted"], 2)
        self.assertEqual(budget.held, 2 * tcp_frames.file_allowance(100_000))
        # an evicted file's rest is read and let go; the oldest ones still hold their room and come out whole
        for n, attacker in enumerate(attackers):
            attacker.dataReceived(b"".join(tcp_frames.encode_data(n, bytes(100_000))[1:]))
        self.assertEqual(h.files, [wanted, bytes(100_000), bytes(100_000)])
        self.assertEqual(budget.held, 0)
        for attacker in attackers:
            attacker.connectionLost()
        self.assertEqual(budget.status()["evicted"], {"unfinished_file": 2})
