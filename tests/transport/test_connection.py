"""The TCP connection and node without sockets: handshake deadline, idle timeout and keep-alive on a
Clock, back-pressure from the socket, the bounded send queue, and dial backoff with jitter."""

from __future__ import annotations

import random
from typing import Any

from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.transport.connection import State, TcpConnection, parse_hello
from bitdust_node.transport.errors import SendQueueFull, Unreachable
from bitdust_node.transport.limits import TcpLimits
from bitdust_node.transport.tcp import TcpNode
from bitdust_node.wire import tcp_frames

HELLO = tcp_frames.encode_frame(tcp_frames.HELLO, b"127.0.0.2:7771 http://h/bob.xml")


class Harness:
    def __init__(self, limits: TcpLimits | None = None) -> None:
        self.reactor = MemoryReactorClock()
        self.files: list[bytes] = []
        self.node = TcpNode(self.reactor, lambda: ("127.0.0.1", 7771), lambda: "http://h/alice.xml",
                            lambda _c, data: self.files.append(b"".join(data)), limits, rng=random.Random(7))

    def incoming(self) -> tuple[TcpConnection, StringTransport]:
        connection = self.node.track(TcpConnection(self.node), "127.0.0.2")
        transport = StringTransport()
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

    def test_a_closed_connection_fails_what_was_queued(self) -> None:
        h = Harness()
        connection, _transport = h.incoming()
        connection.dataReceived(HELLO)
        pending = connection.send_file(b"data")
        connection.connectionLost()
        self.failureResultOf(pending)
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

    def test_sending_to_myself_is_refused(self) -> None:
        h = Harness()
        self.failureResultOf(h.node.send(("127.0.0.1", 7771), b"x"), Unreachable)


class _Reason:
    def __init__(self, text: str) -> None:
        self.text = text

    def getErrorMessage(self) -> str:
        return self.text
