"""The official bob's bytes replayed into our alice (same identity and throwaway key as the capture):
our node answers as the official alice did, the signed Ack byte for byte, over the same connection."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import TestCase

from bitdust_node.crypto import keys
from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.identity.my_identity import MyIdentity
from bitdust_node.net.http import CappedHttp
from bitdust_node.transport.connection import TcpConnection
from bitdust_node.transport.gateway import Gateway
from bitdust_node.transport.hookups import Hookups
from bitdust_node.transport.tcp import TcpNode
from bitdust_node.wire import identity_xml, tcp_frames
from bitdust_node.wire import packet as wire
from tests.identity.vectors import VECTORS

P2P = VECTORS / "p2p"
# the moment the official alice signed her Ack (packet 002's Date)
ACK_SIGNED_AT = 1_796_154_998.0


def stream(name: str) -> tuple[bytes, bytes, dict[str, Any]]:
    c2s = bytes.fromhex((P2P / f"{name}.c2s.hex").read_text().strip())
    s2c = bytes.fromhex((P2P / f"{name}.s2c.hex").read_text().strip())
    return c2s, s2c, json.loads((P2P / f"{name}.frames.json").read_text())


def frame_bytes(raw: bytes, frame: dict[str, Any]) -> bytes:
    return raw[frame["offset"] : frame["offset"] + 4 + frame["length"]]


class ReplayTests(TestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(ACK_SIGNED_AT)
        home = Path(self.mktemp())
        alice = MyIdentity(
            identity_xml.parse((P2P / "identity" / "alice.xml").read_bytes()),
            keys.read_private_key(P2P / "keys" / "alice.THROWAWAY_TEST_KEY.pem"),
        )
        holder = MyIdentityHolder(home, alice)
        cache = IdentityCache(home / "cache", CappedHttp(self.reactor))
        cache.load()
        self.gateway = Gateway(self.reactor, holder, cache)
        self.hookups = Hookups(self.gateway, holder, cache, self.reactor, lambda name: "ON")
        self.tcp = TcpNode(self.reactor, lambda: ("127.0.0.1", 7771), lambda: alice.idurl,
                           lambda _c, data: self.gateway.file_received(data))
        self.gateway.attach(self.tcp)
        self.connection = self.tcp.track(TcpConnection(self.tcp), "127.0.0.1")
        self.wire = StringTransport()
        self.connection.makeConnection(self.wire)

    def test_identity_ping_is_answered_as_the_official_node_did(self) -> None:
        c2s, s2c, frames = stream("stream000_port7771")
        hello, ping = frames["c2s"][0], frames["c2s"][1]
        self.connection.dataReceived(frame_bytes(c2s, hello))
        wazap = frames["s2c"][0]
        self.assertEqual(self.wire.value(), frame_bytes(s2c, wazap))
        self.wire.clear()
        # the connection is filed under the address bob's hello announced: replies go back on it
        self.assertEqual(list(self.tcp.by_address), [("127.0.0.1", 7772)])
        self.connection.dataReceived(frame_bytes(c2s, ping))
        answer = tcp_frames.FrameDecoder().feed(self.wire.value())
        self.assertEqual([f.command for f in answer], [b"o", b"d"])
        self.assertEqual(tcp_frames.encode_ok(ping["file_id"]), frame_bytes(s2c, frames["s2c"][1]))
        self.assertEqual(answer[0].payload, struct.pack("<i", ping["file_id"]))
        ack = tcp_frames.decode_data(answer[1].payload).chunk
        captured = json.loads((P2P / "packets" / "002_alice_to_bob_Ack.json").read_text())["raw_utf8"].encode()
        self.assertEqual(ack, captured)
        parsed = wire.parse(ack)
        expected = ("Ack", b"", "api_user_ping:1:1:164179615499589")
        self.assertEqual((parsed.command, parsed.payload, parsed.packet_id), expected)

    def test_every_captured_packet_from_bob_is_accepted(self) -> None:
        c2s, _s2c, _frames = stream("stream000_port7771")
        self.connection.dataReceived(c2s)
        self.assertEqual(self.gateway.dropped.get("bad_signature", 0), 0)
        self.assertEqual(self.gateway.dropped.get("malformed", 0), 0)
        self.assertGreaterEqual(self.gateway.counters["packets_in"], 4)
