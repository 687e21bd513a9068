"""The identity server on real loopback sockets: serving, uploads over HTTP and TCP, and refusals."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

from twisted.internet import defer
from twisted.trial import unittest

from bitdust_node.crypto import keys
from bitdust_node.identity.server_store import NAME_SLOT
from bitdust_node.wire import tcp_frames
from tests.identity import hostile, vectors
from tests.identity.support import (
    RunningServer,
    exchange,
    http_request,
    make_identity,
    paced,
    split_response,
    start_server,
)


class ServingTests(unittest.TestCase):
    def setUp(self) -> None:
        self.root = Path(self.mktemp())
        self.server: RunningServer = start_server(self.root)
        self.addCleanup(self.server.stop)

    async def test_registration_like_an_official_client(self) -> None:
        status, _, body = await self.server.get("/")
        self.assertEqual(status, 200)
        status, headers, body = await self.server.get("/alice.xml")
        self.assertEqual((status, headers["content-type"]), (404, "text/html; charset=utf-8"))
        self.assertEqual(body, (vectors.VECTORS / "identity" / "id_server_missing.body").read_bytes())
        xml = vectors.identity_bytes("alice.rev0")
        status, _, body = await self.server.post(xml)
        self.assertEqual((status, body), (200, b""))
        status, headers, body = await self.server.get("/alice.xml")
        self.assertEqual((status, body), (200, xml))
        self.assertEqual(headers["content-type"], "application/xml")
        self.assertRegex(headers["last-modified"], r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$")
        # the next revision replaces it, on disk too
        await self.server.post(vectors.identity_bytes("alice"))
        _, _, body = await self.server.get("/alice.xml")
        self.assertEqual(body, vectors.identity_bytes("alice"))
        self.assertEqual((self.root / "alice.xml").read_bytes(), vectors.identity_bytes("alice"))

    async def test_keep_alive_reads_get_the_same_answer_as_the_general_path(self) -> None:
        await self.server.post(vectors.identity_bytes("alice.rev0"))
        keep_alive = b"GET /alice.xml HTTP/1.1\r\nHost: x\r\n\r\n"
        closing = b"GET /alice.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        # two prepared answers on one connection, then the general path's, in order
        raw = await exchange(self.server.web_port, keep_alive + keep_alive + closing)
        answers = []
        while raw:
            head, _, rest = raw.partition(b"\r\n\r\n")
            status, headers, _ = split_response(head + b"\r\n\r\n")
            length = int(headers["content-length"])
            answers.append((status, headers, rest[:length]))
            raw = rest[length:]
        self.assertEqual(len(answers), 3)
        xml = vectors.identity_bytes("alice.rev0")
        general = answers[2][1]
        for status, headers, body in answers:
            self.assertEqual((status, body), (200, xml))
            for name in ("content-type", "last-modified", "content-length", "server"):
                self.assertEqual(headers[name], general[name], name)
            self.assertRegex(headers["date"], r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$")
        self.assertEqual(general["connection"], "close")
        self.assertNotIn("connection", answers[0][1])
        # a new revision is prepared afresh
        await self.server.post(vectors.identity_bytes("alice"))
        raw = await exchange(self.server.web_port, keep_alive + closing)
        self.assertEqual(raw.count(vectors.identity_bytes("alice")), 2)
        # a name not hosted still gets the official 404 page
        raw = await exchange(self.server.web_port, b"GET /nobody.xml HTTP/1.1\r\nHost: x\r\n\r\n" + closing)
        self.assertTrue(raw.startswith(b"HTTP/1.1 404 "))

    async def test_post_as_curl_sends_it(self) -> None:
        # `curl --data-binary @alice.xml` labels the body as a form; it must still be read raw
        xml = vectors.identity_bytes("bob")
        head = b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n" % len(xml)
        raw = await exchange(
            self.server.web_port, head + b"Content-Type: application/x-www-form-urlencoded\r\n\r\n" + xml
        )
        self.assertEqual(split_response(raw)[0], 200)
        self.assertEqual(self.server.idserver.store.get("bob").xml, xml)  # type: ignore[union-attr]

    async def test_index_lists_grouped_and_counted(self) -> None:
        for name in ("alice", "bob", "carol"):
            await self.server.post(vectors.identity_bytes(name))
        _, headers, body = await self.server.get("/")
        page = body.decode()
        self.assertEqual(headers["content-type"], "text/html")
        self.assertIn("<title>Identities on 127.0.0.1</title>", page)
        self.assertIn('<h3>A</h3>\n<p><a href="/alice.xml"><nobr>alice</nobr></a></p>', page)
        self.assertIn('<h3>C</h3>\n<p><a href="/carol.xml">', page)
        self.assertIn('Total identities on "127.0.0.1": 3', page)
        self.assertRegex(page, r"<!--CLIENT_HOST=127\.0\.0\.\d+:\d+-->")

    async def test_tcp_receiver_replays_the_capture(self) -> None:
        capture = json.loads((vectors.VECTORS / "dht_probe" / "idserver_tcp_6661.json").read_text())
        request = b"".join(bytes.fromhex(step["request_hex"]) for step in capture)
        expected = b"".join(bytes.fromhex(step["response_hex"]) for step in capture)
        received = await exchange(self.server.tcp_port, request + tcp_frames.encode_frame(tcp_frames.ABORT))
        self.assertEqual(received, expected)
        _, _, body = await self.server.get("/carol.xml")
        self.assertEqual(body, vectors.identity_bytes("carol"))

    async def test_tcp_upload_in_several_chunks(self) -> None:
        key = vectors.private_key("bob")
        xml = make_identity("chunky", key)
        head = struct.pack("<II", 7, len(xml))
        frames = b"".join(
            tcp_frames.encode_frame(tcp_frames.DATA, head + xml[i : i + 300]) for i in range(0, len(xml), 300)
        )
        received = await exchange(self.server.tcp_port, frames + tcp_frames.encode_frame(tcp_frames.ABORT))
        self.assertEqual(received, tcp_frames.encode_ok(7))
        self.assertEqual(self.server.idserver.store.get("chunky").xml, xml)  # type: ignore[union-attr]


class RefusalTests(unittest.TestCase):
    """Each bad upload is refused, nothing is stored, and the server keeps serving."""

    def setUp(self) -> None:
        self.root = Path(self.mktemp())
        self.server = start_server(self.root, deadline=2.0)
        self.addCleanup(self.server.stop)
        self.before: list[str] = []

    async def _with_alice(self) -> None:
        status, _, _ = await self.server.post(vectors.identity_bytes("alice"))
        self.assertEqual(status, 200)
        self.before = self.server.files()

    async def assertRefused(self, body: bytes, status: int = 400) -> None:
        got, _, reply = await self.server.post(body)
        self.assertEqual(got, status, reply)
        self.assertEqual(self.server.files(), self.before)
        got, _, served = await self.server.get("/alice.xml")
        self.assertEqual((got, served), (200, vectors.identity_bytes("alice")))

    async def test_billion_laughs(self) -> None:
        await self._with_alice()
        await self.assertRefused(hostile.billion_laughs(make_identity("laugh", vectors.private_key("bob"))))

    async def test_external_entity(self) -> None:
        await self._with_alice()
        await self.assertRefused(hostile.external_entity(make_identity("xxe", vectors.private_key("bob"))))

    async def test_ten_megabytes(self) -> None:
        await self._with_alice()
        raw = await exchange(self.server.web_port, http_request("POST", "/", b"<" * 10_000_000))
        self.assertEqual(split_response(raw)[0], 413)
        await self.assertRefused(b"x" * 50_001, status=413)

    async def test_chunked_body_over_cap(self) -> None:
        await self._with_alice()
        chunk = b"x" * 10_000
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(6)) + b"0\r\n\r\n"
        head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        raw = await exchange(self.server.web_port, head + body)
        self.assertEqual(split_response(raw)[0], 413)
        self.assertEqual(self.server.files(), self.before)

    async def test_empty_body(self) -> None:
        await self._with_alice()
        await self.assertRefused(b"")

    async def test_forged_signature(self) -> None:
        await self._with_alice()
        xml = vectors.identity_bytes("alice").replace(b"tcp://127.0.0.1:7771", b"tcp://10.6.6.6:7771")
        await self.assertRefused(xml.replace(b"<revision>1", b"<revision>2"))

    async def test_stale_revision(self) -> None:
        await self._with_alice()
        await self.assertRefused(vectors.identity_bytes("alice.rev0"))

    async def test_changed_public_key(self) -> None:
        await self._with_alice()
        await self.assertRefused(make_identity("alice", vectors.private_key("bob"), revision=5))

    async def test_dot_dot_name(self) -> None:
        await self._with_alice()
        xml = make_identity("alice", vectors.private_key("alice"), revision=5)
        await self.assertRefused(xml.replace(b"/alice.xml", b"/../alice.xml"))
        status, _, _ = await self.server.get("/../alice.xml")
        self.assertEqual(status, 404)
        status, _, _ = await self.server.get("/%2e%2e/alice.xml")
        self.assertEqual(status, 404)

    async def test_a_full_server_refuses_new_names_and_keeps_serving_the_hosted(self) -> None:
        await self._with_alice()
        idserver = self.server.idserver
        self.assertEqual(idserver.store.size(), len(vectors.identity_bytes("alice")))
        self.assertEqual(idserver.store.charged(), NAME_SLOT)  # a small identity counts a slot
        idserver.max_hosted_bytes = idserver.store.charged()  # full: no room for another name
        await self.assertRefused(make_identity("mallory", vectors.private_key("bob")))
        self.assertEqual(idserver.refused_full, 1)
        # a hosted user's new revision within its slot is taken even so
        newer = make_identity("alice", vectors.private_key("alice"), revision=5)
        status, _, _ = await self.server.post(newer)
        self.assertEqual(status, 200)
        self.assertEqual(idserver.store.size(), len(newer))
        idserver.store.remove("alice")
        self.assertEqual((idserver.store.size(), idserver.store.charged()), (0, 0))

    async def test_source_on_another_host(self) -> None:
        await self._with_alice()
        await self.assertRefused(make_identity("mallory", vectors.private_key("bob"), hosts=("host-b.com",)))

    async def test_refused_over_tcp(self) -> None:
        await self._with_alice()
        frames = b"".join(tcp_frames.encode_data(3, vectors.identity_bytes("alice.rev0")))
        received = await exchange(self.server.tcp_port, frames + tcp_frames.encode_frame(tcp_frames.ABORT))
        decoded = tcp_frames.FrameDecoder().feed(received)
        self.assertEqual([f.command for f in decoded], [tcp_frames.ABORT])
        self.assertEqual(self.server.files(), self.before)
        bad_length = b"\xff\xff\xff\xff1d"
        self.assertEqual(await exchange(self.server.tcp_port, bad_length), b"")

    async def test_slow_client_one_byte_per_second_times_out(self) -> None:
        await self._with_alice()
        request = http_request("POST", "/", make_identity("slowpoke", vectors.private_key("bob")))
        started = self.server.idserver.clock.seconds()
        raw = await exchange(self.server.web_port, request, trickle=1.0)
        self.assertEqual(raw, b"")
        self.assertLess(self.server.idserver.clock.seconds() - started, 6)
        raw = await exchange(
            self.server.tcp_port,
            tcp_frames.encode_data(1, vectors.identity_bytes("bob"))[0],
            trickle=1.0,
        )
        self.assertEqual(raw, b"")
        self.assertEqual(self.server.files(), self.before)
        status, _, _ = await self.server.get("/alice.xml")
        self.assertEqual(status, 200)

    async def test_expect_continue_does_not_free_a_slow_body(self) -> None:
        await self._with_alice()
        body = make_identity("slowbody", vectors.private_key("bob"))
        head = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        # headers at once, then the body one byte every half second
        raw = await paced(self.server.web_port, [head] + [body[i : i + 1] for i in range(len(body))], 0.5)
        self.assertNotIn(b"200 OK", raw)
        self.assertEqual(self.server.files(), self.before)
        self.assertEqual(self.server.idserver.store.get("slowbody"), None)

    async def test_keep_alive_client_gets_a_fresh_deadline_per_request(self) -> None:
        await self._with_alice()
        one = b"GET /alice.xml HTTP/1.1\r\nHost: x\r\n\r\n"
        last = b"GET /alice.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        raw = await paced(self.server.web_port, [one, one, last], 1.2)
        self.assertEqual(raw.count(b"HTTP/1.1 200 OK"), 3)

    async def test_thousand_concurrent_uploads(self) -> None:
        await self._with_alice()
        key = vectors.private_key("carol")
        good = [make_identity(f"user{i:04d}", key) for i in range(900)]
        bad = [make_identity(f"evil{i:03d}", key, hosts=("host-b.com",)) for i in range(50)]
        forged = [x.replace(b"<revision>0", b"<revision>9") for x in good[:50]]
        uploads = good + bad + forged
        replies = await defer.gatherResults(
            [exchange(self.server.web_port, http_request("POST", "/", body)) for body in uploads]
        )
        statuses = [split_response(r)[0] for r in replies]
        self.assertEqual(statuses.count(200), 900)
        self.assertEqual(statuses.count(400), 100)
        stored = self.server.files()
        self.assertEqual(len(stored), 901)
        self.assertFalse([n for n in stored if not re.fullmatch(r"(alice|user\d{4})\.xml", n)])
        for i in (0, 449, 899):
            self.assertEqual((self.root / f"user{i:04d}.xml").read_bytes(), good[i])

    async def test_concurrent_revisions_of_one_name_never_tear(self) -> None:
        key = keys.generate_key(1024)
        revisions = [make_identity("racer", key, revision=r, contact=f"tcp://127.0.0.1:{7000 + r}") for r in range(40)]
        await defer.gatherResults([exchange(self.server.web_port, http_request("POST", "/", x)) for x in revisions])
        on_disk = (self.root / "racer.xml").read_bytes()
        self.assertIn(on_disk, revisions)
        self.assertEqual(self.server.files(), ["racer.xml"])
