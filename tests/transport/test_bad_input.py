"""Hostile peers against a real node over real sockets: each attack is refused, counted in the node's
status, and the node goes on answering pings."""

from __future__ import annotations

import json
import struct
from typing import Any

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.trial.unittest import TestCase

from bitdust_node.node import Node
from bitdust_node.services.gateway import GatewayService
from bitdust_node.wire import packet as wire
from bitdust_node.wire import tcp_frames
from tests.support.nodes import api, eventually
from tests.transport.support import USERS, start_server, start_user

ALICE = (USERS["alice"], 7771)


class RawPeer(protocol.Protocol):
    """A client that sends what it is told and records whether the node hung up."""

    def __init__(self) -> None:
        self.received = b""
        self.closed: defer.Deferred[None] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Any = None) -> None:
        self.closed.callback(None)


async def connect() -> RawPeer:
    peer = RawPeer()
    await connectProtocol(TCP4ClientEndpoint(reactor, *ALICE, timeout=5), peer)
    return peer


def hello() -> bytes:
    return tcp_frames.encode_frame(tcp_frames.HELLO, b"127.0.0.99:7771 http://127.0.0.40:8084/nobody.xml")


def status(node: Node, name: str) -> dict[str, Any]:
    assert node.graph is not None
    return node.graph.describe(name)


class BadInputTests(TestCase):
    timeout = 120

    async def setUp(self) -> None:
        await start_server(self)
        self.alice = await start_user(self, "alice")
        self.bob = await start_user(self, "bob")

    async def still_serving(self) -> None:
        code, reply = await api(self.bob, "GET", "/user/ping/v1?id=alice&timeout=10")
        self.assertEqual(code, 200, reply)

    async def hung_up(self, data: bytes, handshake: bool = True) -> RawPeer:
        peer = await connect()
        peer.transport.write((hello() if handshake else b"") + data)  # type: ignore[union-attr]
        closed = peer.closed
        closed.addTimeout(5, reactor)
        await closed
        return peer

    def refused(self) -> dict[str, int]:
        counters = status(self.alice, "tcp_connections")["counters"]
        return {k: v for k, v in counters.items() if k.startswith("refused")}

    async def test_broken_framing_is_refused_and_counted(self) -> None:
        attacks = {
            "garbage bytes": (b"\x13\x37" * 64, False),
            "a frame length of 2^31": (struct.pack(">I", 2**31) + b"1h", False),
            "a wrong version byte": (struct.pack(">I", 3) + b"2h ", False),
            "a chunk past the announced size": (
                tcp_frames.encode_frame(tcp_frames.DATA, struct.pack("<ii", 7, 10) + b"x" * 20), True),
            "a negative file size": (tcp_frames.encode_frame(tcp_frames.DATA, struct.pack("<ii", 7, -5)), True),
        }
        for what, (data, handshake) in attacks.items():
            before = sum(self.refused().values())
            await self.hung_up(data, handshake)
            await eventually(lambda before=before: sum(self.refused().values()) > before)
            with self.subTest(what):
                self.assertGreater(sum(self.refused().values()), before, what)
        await self.still_serving()

    async def test_forty_one_files_at_once_drop_the_peer(self) -> None:
        chunks = b"".join(
            tcp_frames.encode_frame(tcp_frames.DATA, struct.pack("<ii", file_id, 1000) + b"x" * 10)
            for file_id in range(1, 42)
        )
        await self.hung_up(chunks)
        self.assertIn("refused_more_than", self.refused())
        await self.still_serving()

    async def test_forged_and_unverifiable_packets_are_dropped(self) -> None:
        gateway = self.bob.graph.service("gateway").gateway  # type: ignore[union-attr]
        genuine = gateway.outbox("Ack", "http://127.0.0.40:8084/alice.xml", b"genuine")
        forged = wire.serialize(wire.Packet(**{**_fields(genuine), "payload": b"changed"}))
        # the creator's identity lives on a server nobody runs
        stranger = wire.serialize(wire.Packet(**{**_fields(genuine), "command": "Ack",
                                                 "creator_id": "http://127.0.0.77:8084/ghost.xml"}))
        peer = await connect()
        peer.transport.write(hello() + b"".join(tcp_frames.encode_data(5, forged))  # type: ignore[union-attr]
                             + b"".join(tcp_frames.encode_data(6, stranger)))
        dropped = lambda: status(self.alice, "gateway")["dropped"]  # noqa: E731
        await eventually(lambda: dropped().get("bad_signature") and dropped().get("creator_unknown"), timeout=20)
        self.assertFalse(peer.closed.called)  # the framing was fine: the connection stays
        peer.transport.loseConnection()  # type: ignore[union-attr]
        await self.still_serving()

    async def test_a_service_request_over_ten_kilobytes_gets_the_official_fail(self) -> None:
        gateway = self.bob.graph.service("gateway").gateway  # type: ignore[union-attr]
        alice_identity = await gateway.cache.fetch("http://127.0.0.40:8084/alice.xml")
        body = json.dumps({"name": "service_supplier", "payload": {"pad": "x" * 10_300}}).encode()
        request = gateway.outbox("RequestService", alice_identity.sources[0], body)
        answer = await gateway.request(request, alice_identity, timeout=10)
        self.assertEqual((answer.command, answer.payload), ("Fail", b"too long payload"))
        small = gateway.outbox("RequestService", alice_identity.sources[0],
                               json.dumps({"name": "service_nothing", "payload": {}}).encode())
        answer = await gateway.request(small, alice_identity, timeout=10)
        self.assertEqual((answer.command, answer.payload), ("Fail", b"service service_nothing not exist"))
        off = gateway.outbox("RequestService", alice_identity.sources[0],
                             json.dumps({"name": "service_identity_server", "payload": {}}).encode())
        answer = await gateway.request(off, alice_identity, timeout=10)
        self.assertEqual((answer.command, answer.payload), ("Fail", b"service service_identity_server is off"))
        bad = gateway.outbox("RequestService", alice_identity.sources[0], b"{not json")
        answer = await gateway.request(bad, alice_identity, timeout=10)
        self.assertEqual((answer.command, answer.payload), ("Fail", b"json payload invalid"))

    async def test_a_thousand_idle_connections_time_out_and_the_node_keeps_serving(self) -> None:
        peers, connecting = [], []
        for _ in range(1000):
            peer = RawPeer()
            peers.append(peer)
            connecting.append(connectProtocol(TCP4ClientEndpoint(reactor, *ALICE, timeout=5), peer))
        await self.still_serving()
        results = await defer.DeferredList(connecting, consumeErrors=True)
        connected = [peer for peer, (ok, _) in zip(peers, results, strict=True) if ok]
        # the per-host cap refuses most at once; the handshake deadline (10 s) closes the rest
        await eventually(lambda: all(p.closed.called for p in connected), timeout=20)
        counters = status(self.alice, "tcp_connections")["counters"]
        self.assertGreater(counters.get("connection_refused_cap", 0), 0)
        self.assertGreater(counters.get("refused_timeout_no_handshake", 0), 0)
        self.assertLessEqual(status(self.alice, "tcp_connections")["connections"], 2)
        await self.still_serving()


def _fields(packet: wire.Packet) -> dict[str, Any]:
    return {name: getattr(packet, name) for name in
            ("command", "owner_id", "creator_id", "packet_id", "date", "payload", "remote_id", "key_id", "signature")}


__all__ = ["GatewayService"]
