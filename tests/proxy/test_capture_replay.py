"""The official routed user (bob) and sender (carol) replayed, frame by frame as captured, into our router
(alice, with the capture's identity and throwaway key): our router grants bob's route, wraps carol's packets
for bob as RelayIn holding her bytes unchanged, forwards what bob's RelayOut carries to carol byte for byte,
and answers bob with the same RelayAck text the official router did. And the captured RelayIn, replayed into
our routed user, is opened and taken in as carol's packet."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import TestCase

from bitdust_node.crypto import keys
from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.identity.my_identity import MyIdentity
from bitdust_node.net.http import CappedHttp
from bitdust_node.proxy import relay
from bitdust_node.proxy.relayed import RelayedRoute
from bitdust_node.proxy.router import ProxyRouter
from bitdust_node.transport.connection import TcpConnection
from bitdust_node.transport.gateway import Gateway
from bitdust_node.transport.hookups import Hookups
from bitdust_node.transport.tcp import TcpNode
from bitdust_node.wire import identity_xml, tcp_frames
from bitdust_node.wire import packet as wire
from tests.identity.vectors import VECTORS

PROXY = VECTORS / "proxy"
SIGNED_AT = 1_796_154_300.0


def me(name: str) -> MyIdentity:
    return MyIdentity(identity_xml.parse((PROXY / "identity" / f"{name}.xml").read_bytes()),
                      keys.read_private_key(PROXY / "keys" / f"{name}.THROWAWAY_TEST_KEY.pem"))


def captured(number: int) -> bytes:
    path = next((PROXY / "packets").glob(f"{number:03d}_*.json"))
    return str(json.loads(path.read_text())["raw_utf8"]).encode()


def frames_of(stream: str) -> list[dict[str, Any]]:
    return list(json.loads((PROXY / f"{stream}.frames.json").read_text())["c2s"])


def files_written(transport: StringTransport) -> list[bytes]:
    """The whole files our side wrote on a connection (every file here fits one chunk)."""
    found = []
    for frame in tcp_frames.FrameDecoder().feed(transport.value()):
        if frame.command == tcp_frames.DATA:
            found.append(tcp_frames.decode_data(frame.payload).chunk)
    return found


class Side:
    """One of our nodes with the identity of a captured one, its connections on StringTransports."""

    def __init__(self, test: TestCase, name: str) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(SIGNED_AT)
        home = Path(test.mktemp())
        self.me = me(name)
        self.holder = MyIdentityHolder(home, self.me)
        self.cache = IdentityCache(home / "cache", CappedHttp(self.reactor))
        self.gateway = Gateway(self.reactor, self.holder, self.cache)
        self.hookups = Hookups(self.gateway, self.holder, self.cache, self.reactor, lambda name: "ON")
        self.tcp = TcpNode(self.reactor, lambda: ("127.0.0.1", 7771), lambda: self.me.idurl,
                           lambda connection, data: self.gateway.file_received(data, connection))
        self.gateway.attach(self.tcp)

    def accept(self, hello: dict[str, Any]) -> tuple[TcpConnection, StringTransport]:
        connection = self.tcp.track(TcpConnection(self.tcp), "127.0.0.1")
        transport = StringTransport()
        connection.makeConnection(transport)
        connection.dataReceived(bytes.fromhex(hello["hex"]))
        transport.clear()
        return connection, transport


class RouterReplayTests(TestCase):
    def test_official_users_through_our_router(self) -> None:
        alice = Side(self, "alice")
        router = ProxyRouter(alice.gateway, alice.holder, alice.cache, alice.reactor, alice.tcp.sessions_of)
        router.start()
        self.addCleanup(router.stop)
        alice.hookups.accept_requests("service_proxy_server", router)
        bob_frames, carol_frames = frames_of("stream000_port7771"), frames_of("stream001_port7771")
        bob, to_bob = alice.accept(bob_frames[0])
        carol, to_carol = alice.accept(carol_frames[0])

        def replay(connection: TcpConnection, frames: list[dict[str, Any]], number: int) -> None:
            frame = next(f for f in frames if f.get("packet_file", "").startswith(f"packets/{number:03d}_"))
            connection.dataReceived(bytes.fromhex(frame["hex"]))

        replay(bob, bob_frames, 1)  # bob's Identity: Acked on his connection
        replay(bob, bob_frames, 3)  # RequestService service_proxy_server
        answers = [wire.parse(f) for f in files_written(to_bob)]
        self.assertEqual([(a.command, a.payload) for a in answers], [("Ack", b""), ("Ack", b"accepted")])
        self.assertEqual([a.packet_id for a in answers], [wire.parse(captured(n)).packet_id for n in (1, 3)])
        self.assertEqual(list(router.routes), ["http://127.0.0.1:8084/bob.xml"])
        to_bob.clear()
        # carol pings bob at the router's address: bob gets it as RelayIn, her bytes inside unchanged
        replay(carol, carol_frames, 5)
        (relay_in,) = [wire.parse(f) for f in files_written(to_bob)]
        official = wire.parse(captured(6))
        fields = ("command", "owner_id", "creator_id", "packet_id", "remote_id", "key_id")
        self.assertEqual([getattr(relay_in, f) for f in fields], [getattr(official, f) for f in fields])
        opened = relay.unseal(relay_in.payload, me("bob").key, relay.ROUTED_INCOMING)
        self.assertEqual(opened, captured(5))
        to_bob.clear()
        # bob's Ack to carol in a RelayOut: carol gets bob's Ack byte for byte, bob the RelayAck of the capture
        replay(bob, bob_frames, 7)
        self.assertEqual(files_written(to_carol), [captured(8)])
        self.assertEqual(files_written(to_bob), [], "RelayAck before carol's side took the packet")
        (sent,) = [f for f in tcp_frames.FrameDecoder().feed(to_carol.value()) if f.command == tcp_frames.DATA]
        carol.dataReceived(tcp_frames.encode_ok(tcp_frames.decode_data(sent.payload).file_id))
        (relay_ack,) = [wire.parse(f) for f in files_written(to_bob)]
        self.assertEqual(relay_ack.command, "RelayAck")
        ours = relay.unseal(relay_ack.payload, me("bob").key, relay.ROUTED_INCOMING)
        theirs = relay.unseal(wire.parse(captured(9)).payload, me("bob").key, relay.ROUTED_INCOMING)
        self.assertEqual(ours, theirs)
        self.assertEqual((relay_ack.owner_id, relay_ack.packet_id), (official.remote_id, official.packet_id))
        self.assertEqual(dict(router.refusals), {})


class RoutedUserReplayTests(TestCase):
    def test_captured_relay_in_is_taken_in_by_our_routed_user(self) -> None:
        bob = Side(self, "bob")
        taken: list[wire.Packet] = []
        # first in line: the hookups' Ack to carol waits on a connection this replay never opens
        bob.gateway.handlers["Identity"].insert(0, lambda inbound: taken.append(inbound.packet))
        counters: collections.Counter[str] = collections.Counter()
        lost: list[str] = []
        # bob's route through alice, as the receiver sets it up in LISTEN
        route = RelayedRoute(bob.gateway, bob.holder, me("alice").identity, bob.reactor, counters, lost.append)
        bob.gateway.register("RelayIn", route.relay_in_received)
        router_frames = json.loads((PROXY / "stream000_port7771.frames.json").read_text())["s2c"]
        connection = bob.tcp.track(TcpConnection(bob.tcp, dialed=("127.0.0.1", 7771)), "127.0.0.1")
        connection.makeConnection(StringTransport())
        # the router's wazap, then its RelayIn 006 (alice's identity is known from her own Ack 002)
        bob.cache.keep("http://127.0.0.1:8084/alice.xml", me("alice").identity, me("alice").xml)
        connection.dataReceived(bytes.fromhex(router_frames[0]["hex"]))
        frame = next(f for f in router_frames if f.get("packet_file", "").startswith("packets/006_"))
        connection.dataReceived(bytes.fromhex(frame["hex"]))
        self.assertEqual((counters["relayed_in"], lost), (1, []))
        self.assertEqual(dict(bob.gateway.dropped), {})
        self.assertEqual([(p.command, p.creator_id) for p in taken], [("Identity", "http://127.0.0.1:8084/carol.xml")])
        self.assertEqual(wire.serialize(taken[0]), captured(5))
