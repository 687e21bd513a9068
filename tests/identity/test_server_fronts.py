"""The identity server's two fronts without sockets: the TCP receiver over StringTransport and iosim,
its deadline on a Clock, and the HTTP resource through StubTreq. The real-socket tests stay in test_server."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from treq.testing import StubTreq
from twisted.internet import protocol
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bitdust_node.identity.server import IdServer
from bitdust_node.identity.server_http import NOT_FOUND_BODY, IdServerResource, make_plain_site
from bitdust_node.identity.server_http_fast import MAX_FAST_HEAD, PREPARED_HEAD, PreparedReplies, make_site
from bitdust_node.identity.server_store import IdentityStore, StoredIdentity
from bitdust_node.identity.server_tcp import IdentityReceiver, make_receiver
from bitdust_node.net.budget import ReceiveBudget
from bitdust_node.wire import tcp_frames
from bitdust_node.wire.identity_xml import MAX_IDENTITY_BYTES
from tests.identity import hostile, vectors


def make_idserver(root: Path, clock: Clock) -> IdServer:
    store = IdentityStore(root)
    store.load()
    return IdServer(host="127.0.0.1", store=store, clock=clock, expire_days=60)


def frames_of(data: bytes) -> list[tcp_frames.Frame]:
    return tcp_frames.FrameDecoder().feed(data)


def upload(file_id: int, xml: bytes) -> bytes:
    return tcp_frames.encode_frame(tcp_frames.HELLO, b"127.0.0.1:7771 x") + b"".join(
        tcp_frames.encode_data(file_id, xml)
    )


class ReceiverOverStringTransportTests(TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.idserver = make_idserver(Path(self.mktemp()), self.clock)
        self.receiver = IdentityReceiver(self.idserver)
        self.transport = StringTransport()
        self.receiver.makeConnection(self.transport)

    def test_hello_is_answered_with_the_server_name(self) -> None:
        self.receiver.dataReceived(tcp_frames.encode_frame(tcp_frames.HELLO, b"127.0.0.1:7771 x"))
        [answer] = frames_of(self.transport.value())
        self.assertEqual((answer.command, answer.payload), (tcp_frames.WAZAP, b"id-server:127.0.0.1"))

    def test_upload_fed_one_byte_at_a_time_is_stored_and_ok(self) -> None:
        xml = vectors.identity_bytes("alice")
        for byte in upload(77, xml):
            self.receiver.dataReceived(bytes([byte]))
        answers = frames_of(self.transport.value())
        self.assertEqual([f.command for f in answers], [tcp_frames.WAZAP, tcp_frames.OK])
        self.assertEqual(struct.unpack("<I", answers[1].payload)[0], 77)
        self.assertEqual(self.idserver.store.get("alice").xml, xml)  # type: ignore[union-attr]

    def test_refused_identity_is_aborted_and_not_stored(self) -> None:
        self.receiver.dataReceived(upload(5, hostile.billion_laughs(vectors.identity_bytes("alice"))))
        answers = frames_of(self.transport.value())
        self.assertEqual(answers[-1].command, tcp_frames.ABORT)
        self.assertEqual(len(self.idserver.store), 0)
        self.assertEqual(self.idserver.uploads_refused, 1)

    def test_garbage_closes_the_connection(self) -> None:
        self.receiver.dataReceived(b"\xff\xff\xff\xff" + b"x" * 10)
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(len(self.idserver.store), 0)


class ReceiverDeadlineTests(TestCase):
    def test_a_client_silent_after_connecting_is_dropped_at_the_deadline(self) -> None:
        clock = Clock()
        factory = make_receiver(make_idserver(Path(self.mktemp()), clock), clock, deadline=20.0)
        proto: Any = factory.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        clock.advance(19.0)
        self.assertFalse(transport.disconnecting)
        clock.advance(1.5)
        self.assertEqual(factory.timeouts, 1)

    def test_an_answered_hello_restarts_the_deadline(self) -> None:
        clock = Clock()
        factory = make_receiver(make_idserver(Path(self.mktemp()), clock), clock, deadline=20.0)
        proto: Any = factory.buildProtocol(None)
        proto.makeConnection(StringTransport())
        clock.advance(15.0)
        proto.dataReceived(tcp_frames.encode_frame(tcp_frames.HELLO, b"127.0.0.1:7771 x"))
        clock.advance(15.0)
        self.assertEqual(factory.timeouts, 0)


class _Uploader(protocol.Protocol):
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.received = b""

    def connectionMade(self) -> None:
        self.transport.write(self.data)  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self.received += data


class ReceiverOverIosimTests(TestCase):
    def test_client_and_server_talk_through_an_in_memory_connection(self) -> None:
        clock = Clock()
        idserver = make_idserver(Path(self.mktemp()), clock)
        xml = vectors.identity_bytes("bob")
        client = _Uploader(upload(9, xml))
        _server, _client, pump = iosim.connectedServerAndClient(
            lambda: IdentityReceiver(idserver), lambda: client, greet=True
        )
        pump.flush()
        self.assertEqual([f.command for f in frames_of(client.received)], [tcp_frames.WAZAP, tcp_frames.OK])
        self.assertEqual(idserver.store.get("bob").xml, xml)  # type: ignore[union-attr]


class ResourceThroughStubTreqTests(TestCase):
    def setUp(self) -> None:
        self.idserver = make_idserver(Path(self.mktemp()), Clock())
        self.treq = StubTreq(IdServerResource(self.idserver, ("127.0.0.2:8084",)))

    async def test_post_then_get(self) -> None:
        xml = vectors.identity_bytes("alice")
        response = await self.treq.post("http://127.0.0.1:8084/", data=xml)
        self.assertEqual((response.code, await response.content()), (200, b""))
        response = await self.treq.get("http://127.0.0.1:8084/alice.xml")
        self.assertEqual(response.code, 200)
        self.assertEqual(await response.content(), xml)
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["application/xml"])

    async def test_missing_identity_is_the_official_404(self) -> None:
        response = await self.treq.get("http://127.0.0.1:8084/nobody.xml")
        self.assertEqual((response.code, await response.content()), (404, NOT_FOUND_BODY))

    async def test_refused_upload_is_400_with_the_reason_and_nothing_stored(self) -> None:
        bomb = hostile.billion_laughs(vectors.identity_bytes("alice"))
        response = await self.treq.post("http://127.0.0.1:8084/", data=bomb)
        self.assertEqual(response.code, 400)
        self.assertTrue(await response.content())
        self.assertEqual(len(self.idserver.store), 0)

    async def test_index_links_the_other_servers(self) -> None:
        await self.treq.post("http://127.0.0.1:8084/", data=vectors.identity_bytes("carol"))
        page = (await (await self.treq.get("http://127.0.0.1:8084/")).content()).decode()
        self.assertIn("Identities on 127.0.0.1", page)
        self.assertIn('href="/carol.xml"', page)
        self.assertIn("http://127.0.0.2:8084/", page)


def responses(raw: bytes) -> list[tuple[bytes, dict[bytes, bytes], bytes]]:
    """Status line, headers and body of each response in `raw`, in order."""
    out = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        status, *lines = head.split(b"\r\n")
        headers = dict(line.split(b": ", 1) for line in lines)
        headers = {name.lower(): value for name, value in headers.items()}
        length = int(headers[b"content-length"])
        out.append((status, headers, rest[:length]))
        raw = rest[length:]
    return out


GET = b"GET /alice.xml HTTP/1.1\r\nHost: 127.0.0.1:8084\r\nUser-Agent: wrk\r\n\r\n"
CLOSING = b"GET /alice.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


class ChannelFastGetTests(TestCase):
    """The site's channel answers a lone keep-alive GET itself and leaves everything else to twisted.web."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.idserver = make_idserver(Path(self.mktemp()), self.clock)
        self.idserver.receive(vectors.identity_bytes("alice"))
        self.factory = make_site(self.idserver, self.clock)
        self.requests_made = 0

    def connect(self) -> tuple[Any, StringTransport]:
        proto: Any = self.factory.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        channel = proto.wrappedProtocol
        made = channel.requestFactory

        def counting(*args: Any) -> Any:
            self.requests_made += 1
            return made(*args)

        channel.requestFactory = counting
        return proto, transport

    def test_lone_get_is_answered_without_a_request_object(self) -> None:
        proto, transport = self.connect()
        for _ in range(3):
            proto.dataReceived(GET)
        answers = responses(transport.value())
        self.assertEqual(self.requests_made, 0)
        self.assertEqual(len(answers), 3)
        for status, headers, body in answers:
            self.assertEqual((status, body), (b"HTTP/1.1 200 OK", vectors.identity_bytes("alice")))
            self.assertEqual(headers[b"content-type"], b"application/xml")
        self.assertFalse(transport.disconnecting)

    def test_fast_answer_has_the_general_paths_headers(self) -> None:
        proto, transport = self.connect()
        proto.dataReceived(GET)
        proto.dataReceived(CLOSING)
        fast, general = responses(transport.value())
        self.assertEqual(self.requests_made, 1)
        self.assertEqual(fast[2], general[2])
        for name in (b"content-type", b"last-modified", b"content-length", b"server"):
            self.assertEqual(fast[1][name], general[1][name], name)
        # twisted.web dates its replies by the wall clock, the prepared ones by the server's clock
        self.assertRegex(fast[1][b"date"].decode(), r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$")
        self.assertEqual(general[1][b"connection"], b"close")
        self.assertTrue(transport.disconnecting)

    def test_head_in_single_bytes_is_answered_once_whole(self) -> None:
        proto, transport = self.connect()
        for byte in GET[:-1]:
            proto.dataReceived(bytes([byte]))
        self.assertEqual(transport.value(), b"")
        proto.dataReceived(GET[-1:])
        [(status, _, body)] = responses(transport.value())
        self.assertEqual((status, body, self.requests_made), (b"HTTP/1.1 200 OK", vectors.identity_bytes("alice"), 0))

    def test_pipelined_requests_go_to_twisted_web_in_order(self) -> None:
        proto, transport = self.connect()
        proto.dataReceived(GET + b"GET /nobody.xml HTTP/1.1\r\nHost: x\r\n\r\n" + CLOSING)
        statuses = [status for status, _, _ in responses(transport.value())]
        self.assertEqual(statuses, [b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found", b"HTTP/1.1 200 OK"])
        self.assertEqual(self.requests_made, 3)

    def test_anything_unusual_takes_the_general_path(self) -> None:
        unusual = (
            b"GET /nobody.xml HTTP/1.1\r\nHost: x\r\n\r\n",  # not hosted: the official 404
            b"GET /alice.xml HTTP/1.0\r\nHost: x\r\n\r\n",
            b"HEAD /alice.xml HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /alice.xml?x=1 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /alice.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            b"GET /alice.xml HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"GET /alice.xml HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            b"GET /alice.xml HTTP/1.1\r\nHost: \xe9\r\n\r\n",
            b"GET /alice.xml HTTP/1.1\r\nConnection: Upgrade\r\n\r\n",
        )
        for request in unusual:
            self.requests_made = 0
            proto, transport = self.connect()
            proto.dataReceived(request)
            self.assertEqual(self.requests_made, 1, request)
            self.assertTrue(transport.value().startswith(b"HTTP/1."), request)

    def test_after_the_general_path_the_connection_stays_there(self) -> None:
        proto, transport = self.connect()
        proto.dataReceived(b"GET /nobody.xml HTTP/1.1\r\nHost: x\r\n\r\n")
        proto.dataReceived(GET)
        statuses = [status for status, _, _ in responses(transport.value())]
        self.assertEqual(statuses, [b"HTTP/1.1 404 Not Found", b"HTTP/1.1 200 OK"])
        self.assertEqual(self.requests_made, 2)

    def test_an_endless_head_is_refused_by_twisted_web(self) -> None:
        proto, transport = self.connect()
        proto.dataReceived(b"GET /alice.xml HTTP/1.1\r\n")
        while not transport.disconnecting:
            proto.dataReceived(b"X-Filler: " + b"a" * (MAX_FAST_HEAD // 2) + b"\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 400 "))
        self.assertTrue(transport.disconnecting)

    def test_the_plain_front_answers_every_request_alike(self) -> None:
        """The reference (make_plain_site, all twisted.web) and the fast site agree but for the Date header."""
        requests = (
            GET, CLOSING, GET + GET, b"GET /nobody.xml HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /alice.xml HTTP/1.0\r\nHost: x\r\n\r\n", b"HEAD /alice.xml HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        plain = make_plain_site(self.idserver, self.clock)
        for request in requests:
            answers = []
            for factory in (self.factory, plain):
                proto: Any = factory.buildProtocol(None)
                transport = StringTransport()
                proto.makeConnection(transport)
                proto.dataReceived(request)
                answers.append([(status, {k: v for k, v in headers.items() if k != b"date"}, body)
                                for status, headers, body in responses(transport.value())])
            self.assertEqual(answers[0], answers[1], request)

    def test_a_head_that_never_ends_is_dropped_at_the_deadline(self) -> None:
        proto, transport = self.connect()
        proto.dataReceived(GET[:20])
        self.clock.advance(21)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"")


def chunked_upload(file_id: int, xml: bytes, chunk: int) -> list[bytes]:
    """An upload whose file comes in `chunk`-byte `d` frames (official senders cut at 16 KiB)."""
    header = struct.Struct("<ii")
    return [tcp_frames.encode_frame(tcp_frames.HELLO, b"127.0.0.1:7771 x")] + [
        tcp_frames.encode_frame(tcp_frames.DATA, header.pack(file_id, len(xml)) + xml[at : at + chunk])
        for at in range(0, len(xml), chunk)
    ]


def fill(budget: ReceiveBudget) -> None:
    """All but 100 bytes of the budget held by others, for good (what cannot be taken back: packets being relayed)."""
    for n in range(4):
        size = budget.total // 4 - (100 if n == 3 else 0)
        if budget.claim(f"10.0.1.{n}", size, "relayed") is None:
            raise AssertionError("the budget refused its first holders")


class ReceiverBudgetTests(TestCase):
    """An identity coming in chunks holds its bytes against the node's receive budget until it is whole."""

    def setUp(self) -> None:
        self.budget = ReceiveBudget(total=64 * 1024)
        self.idserver = make_idserver(Path(self.mktemp()), Clock())
        self.receiver = IdentityReceiver(self.idserver, self.budget)
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.7", 40000))
        self.receiver.makeConnection(self.transport)
        self.xml = vectors.identity_bytes("alice")

    def test_an_unfinished_upload_holds_its_size_and_lets_go_once_stored(self) -> None:
        first, *chunks = chunked_upload(3, self.xml, 300)
        self.receiver.dataReceived(first + chunks[0])
        self.assertEqual(self.budget.held_by("10.0.0.7"), len(self.xml))
        for frame in chunks[1:]:
            self.receiver.dataReceived(frame)
        self.assertEqual(self.budget.held, 0)
        self.assertEqual(frames_of(self.transport.value())[-1].command, tcp_frames.OK)
        self.assertIsNotNone(self.idserver.store.get("alice"))

    def test_a_connection_lost_mid_upload_lets_go(self) -> None:
        first, *chunks = chunked_upload(3, self.xml, 300)
        self.receiver.dataReceived(first + chunks[0])
        self.assertGreater(self.budget.held, 0)
        self.receiver.connectionLost(None)
        self.assertEqual(self.budget.held, 0)

    def test_no_room_closes_the_connection_and_stores_nothing(self) -> None:
        fill(self.budget)
        for frame in chunked_upload(3, self.xml, 300):
            self.receiver.dataReceived(frame)
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.budget.refused["identity_upload"], 1)
        self.assertIsNone(self.idserver.store.get("alice"))
        self.assertEqual(self.budget.held_by("10.0.0.7"), 0)


class SiteBudgetTests(TestCase):
    """A POST body holds its bytes against the node's receive budget while it is read: 503 without room."""

    def setUp(self) -> None:
        self.budget = ReceiveBudget(total=64 * 1024)
        self.idserver = make_idserver(Path(self.mktemp()), Clock())
        self.factory = make_site(self.idserver, Clock(), budget=self.budget)
        self.xml = vectors.identity_bytes("alice")

    def post(self, body: bytes, length: int | None = None) -> tuple[Any, StringTransport]:
        proto: Any = self.factory.buildProtocol(IPv4Address("TCP", "10.0.0.7", 40000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.7", 40000))
        proto.makeConnection(transport)
        size = len(body) if length is None else length
        proto.dataReceived(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size + body)
        return proto, transport

    def test_a_body_read_in_parts_holds_its_length_then_lets_go(self) -> None:
        proto, transport = self.post(self.xml[:100], length=len(self.xml))
        self.assertEqual(self.budget.held_by("10.0.0.7"), len(self.xml))
        proto.dataReceived(self.xml[100:])
        self.assertEqual(self.budget.held, 0)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200"))
        self.assertIsNotNone(self.idserver.store.get("alice"))

    def test_a_client_gone_mid_body_lets_go(self) -> None:
        proto, _transport = self.post(self.xml[:100], length=len(self.xml))
        proto.connectionLost(None)
        self.assertEqual(self.budget.held, 0)

    def test_no_room_is_503_and_nothing_stored(self) -> None:
        fill(self.budget)
        _proto, transport = self.post(self.xml)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 503"))
        self.assertTrue(transport.disconnecting)
        self.assertIsNone(self.idserver.store.get("alice"))
        self.assertEqual(self.budget.refused["identity_upload"], 1)

    def connect(self) -> tuple[Any, StringTransport]:
        proto: Any = self.factory.buildProtocol(IPv4Address("TCP", "10.0.0.7", 40000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.7", 40000))
        proto.makeConnection(transport)
        return proto, transport

    def test_a_get_holds_nothing(self) -> None:
        fill(self.budget)
        proto, transport = self.connect()
        proto.dataReceived(b"GET /nobody.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 404"))  # not 503: a GET takes no room
        self.assertEqual(self.budget.refused["identity_upload"], 0)

    def test_pipelined_posts_on_one_connection_each_let_go(self) -> None:
        proto, transport = self.connect()
        bob = vectors.identity_bytes("bob")
        proto.dataReceived(b"".join(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(x), x)
                                    for x in (self.xml, bob)))
        self.assertEqual(transport.value().count(b"HTTP/1.1 200"), 2)
        self.assertEqual(self.budget.held, 0)
        self.assertIsNotNone(self.idserver.store.get("bob"))

    def test_a_chunked_body_holds_the_cap_while_read(self) -> None:
        proto, transport = self.connect()
        proto.dataReceived(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           + b"%x\r\n%s\r\n" % (100, self.xml[:100]))
        self.assertEqual(self.budget.held_by("10.0.0.7"), MAX_IDENTITY_BYTES)
        rest = self.xml[100:]
        proto.dataReceived(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest))
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200"))
        self.assertEqual(self.budget.held, 0)

    def test_no_room_with_expect_continue_is_a_503_alone(self) -> None:
        fill(self.budget)
        proto, transport = self.connect()
        proto.dataReceived(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
                           % len(self.xml))
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 503"))
        self.assertNotIn(b"100 Continue", transport.value())

    def test_a_body_whose_room_is_taken_back_drops_the_connection(self) -> None:
        budget = self.budget
        proto, transport = self.connect()
        proto.dataReceived(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 40000\r\n\r\n<identity")
        # a smaller holder needs the room: the largest evictable holder (this body) gives it back
        for n in range(3):
            self.assertIsNotNone(budget.claim(f"10.0.2.{n}", budget.total // 4, "relayed"))
        self.assertIsNotNone(budget.claim("10.0.3.1", 10_000, "verifying", on_evicted=lambda: None))
        self.assertTrue(transport.disconnected or transport.disconnecting)
        proto.connectionLost(None)
        self.assertEqual(budget.held_by("10.0.0.7"), 0)


class PreparedRepliesBoundTests(SynchronousTestCase):
    def test_the_prepared_replies_hold_at_most_their_bytes(self) -> None:
        prepared = PreparedReplies(max_bytes=10_000)
        for n in range(50):
            stored = StoredIdentity(b"x" * 1_000, vectors.identity("alice"), 0.0)
            prepared.reply(f"user{n}", stored, 0.0)
            self.assertLessEqual(prepared.held_bytes(), 10_000 + PREPARED_HEAD * len(prepared) + 2_000)
        self.assertLess(len(prepared), 12)
