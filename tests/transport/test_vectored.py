"""Frames sent from their pieces: straight into a real loopback socket while nothing waits in the transport, the
rest through it, in order; and never around what already waits in it."""

from __future__ import annotations

import os
from socket import SO_SNDBUF, SOL_SOCKET
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import defer, protocol, reactor
from twisted.internet.task import deferLater
from twisted.test.proto_helpers import StringTransport
from twisted.trial import unittest

from bitdust_node.transport import vectored
from bitdust_node.wire import tcp_frames


class Collecting(protocol.Protocol):
    def __init__(self) -> None:
        self.received = bytearray()

    def dataReceived(self, data: bytes) -> None:
        self.received += data


class RestTests(unittest.TestCase):
    @given(st.lists(st.binary(max_size=40), max_size=8), st.integers(0, 400))
    def test_the_rest_is_what_follows_the_bytes_sent(self, pieces: list[bytes], sent: int) -> None:
        whole = b"".join(pieces)
        sent = min(sent, len(whole))
        self.assertEqual(vectored.rest_of(pieces, sent), whole[sent:])

    def test_a_transport_other_than_tcp_takes_nothing_directly(self) -> None:
        self.assertEqual(vectored.send_pieces(StringTransport(), [b"abc"]), 0)

    def test_one_send_takes_no_more_pieces_than_the_system_allows(self) -> None:
        self.assertGreaterEqual(vectored.MAX_PIECES, 16)
        self.assertLessEqual(vectored.MAX_PIECES, 1024)


class LoopbackTests(unittest.TestCase):
    """A real TCP connection on 127.0.0.1: the client sends, the server collects."""

    @defer.inlineCallbacks
    def setUp(self) -> Any:
        self.server = Collecting()
        factory = protocol.Factory.forProtocol(lambda: self.server)
        self.port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(self.port.stopListening)
        connected: defer.Deferred[Any] = protocol.ClientCreator(reactor, protocol.Protocol).connectTCP(
            "127.0.0.1", self.port.getHost().port)
        self.client = yield connected
        self.addCleanup(self.client.transport.loseConnection)
        yield deferLater(reactor, 0.05, lambda: None)  # the server's side accepted

    @defer.inlineCallbacks
    def received(self, size: int) -> Any:
        for _ in range(400):
            if len(self.server.received) >= size:
                break
            yield deferLater(reactor, 0.01, lambda: None)
        return bytes(self.server.received)

    def send(self, pieces: list[bytes | memoryview]) -> int:
        sent = vectored.send_pieces(self.client.transport, pieces)
        size = sum(len(piece) for piece in pieces)
        if sent < size:
            self.client.transport.write(vectored.rest_of(pieces, sent))
        return sent

    @defer.inlineCallbacks
    def test_a_file_goes_straight_into_an_idle_socket_byte_for_byte(self) -> Any:
        data = os.urandom(300_000)
        pieces = tcp_frames.file_frames(7, data)
        self.assertEqual(self.send(pieces), sum(len(piece) for piece in pieces))
        got = yield self.received(len(tcp_frames.encode_file(7, data)))
        self.assertEqual(got, tcp_frames.encode_file(7, data))

    @defer.inlineCallbacks
    def test_a_step_of_more_pieces_than_one_send_takes_arrives_whole(self) -> Any:
        data = os.urandom(40 * 1024)
        pieces: list[bytes | memoryview] = [memoryview(data)[at : at + 16] for at in range(0, len(data), 16)]
        self.assertGreater(len(pieces), vectored.MAX_PIECES)
        sent = self.send(pieces)
        self.assertGreater(sent, 0)
        got = yield self.received(len(data))
        self.assertEqual(got, data)

    @defer.inlineCallbacks
    def test_an_aborted_or_tls_transport_is_never_written_around(self) -> Any:
        self.client.transport.TLS = True  # what startTLS sets: its writes go through the TLS layer
        self.assertEqual(vectored.send_pieces(self.client.transport, [b"plain"]), 0)
        self.client.transport.TLS = False
        # aborted: still `connected` until the reactor's next turn, yet nothing may go out any more
        self.client.transport.abortConnection()
        self.assertTrue(self.client.transport.connected)
        self.assertEqual(vectored.send_pieces(self.client.transport, [b"after the abort"]), 0)
        yield deferLater(reactor, 0.1, lambda: None)
        self.assertEqual(bytes(self.server.received), b"")

    @defer.inlineCallbacks
    def test_what_a_full_socket_leaves_follows_through_the_transport_and_nothing_passes_it(self) -> Any:
        self.client.transport.getHandle().setsockopt(SOL_SOCKET, SO_SNDBUF, 16 * 1024)
        self.server.transport.pauseProducing()  # read nothing: the socket fills
        first, second = os.urandom(3 * 1024 * 1024), os.urandom(200_000)
        pieces = tcp_frames.file_frames(1, first)
        sent = self.send(pieces)
        self.assertLess(sent, sum(len(piece) for piece in pieces))
        # the transport holds the rest now: the next file waits behind it, not beside it
        self.assertEqual(self.send(tcp_frames.file_frames(2, second)), 0)
        self.server.transport.resumeProducing()
        expected = tcp_frames.encode_file(1, first) + tcp_frames.encode_file(2, second)
        got = yield self.received(len(expected))
        self.assertEqual(got, expected)
