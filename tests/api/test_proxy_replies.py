"""The proxy part of /network/status/v1 and /service/info/v1, field by field, as the rooms' status values are
shaped into JSON: a router with one route, and a routed user in LISTEN."""

from __future__ import annotations

import random
from pathlib import Path

import attrs
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.api.endpoints.proxy import client_reply, router_reply
from bitdust_node.fsm import Registry
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.proxy.client import ProxyClient
from bitdust_node.proxy.line import router_address
from bitdust_node.proxy.router import ProxyRouter
from bitdust_node.wire.tcp_frames import FileBytes
from tests.proxy.fakes import NOW, FakeLink, FakeLookup, FakeNetwork, FakePublisher, captured_me, identity_cache

ALICE, BOB = captured_me("alice"), captured_me("bob")


@attrs.define(eq=False)
class UserSession:
    """Bob's connection as the router's TCP transport holds it."""

    peer_idurl: str = BOB.idurl
    address: tuple[str, int] = ("127.0.0.1", 7772)
    usable: bool = True

    def describe(self) -> str:
        return "127.0.0.1:58968"

    def send_file(self, data: FileBytes) -> defer.Deferred[None]:
        return defer.succeed(None)

    def hold_reading(self, until: defer.Deferred[object]) -> None:
        pass


class ProxyReplyTests(SynchronousTestCase):
    def test_the_routers_status(self) -> None:
        clock = Clock()
        clock.advance(NOW)
        home = Path(self.mktemp())
        holder = MyIdentityHolder(home, ALICE)
        network = FakeNetwork(clock, holder)
        router = ProxyRouter(network, holder, identity_cache(home / "cache", clock), clock, lambda idurl: [])
        # the captured bob asks alice (our router) for a route, on his connection to her
        request = attrs.evolve(network.inbound(BOB, "RequestService", b"{}"), session=UserSession())
        self.assertEqual(router.request_service(request, {"identity": BOB.xml.decode()}).command, "Ack")
        router.counters["RelayAck"] += 2
        self.assertEqual(router_reply(router.status()), {
            "acks": 2,
            "closed_routes": [],
            "hosts": "tcp://127.0.0.1:7771",
            "routes": [{
                "address": "tcp:127.0.0.1:7772",
                # as his identity names them (the capture's bob was routed by alice then)
                "contacts": "tcp:127.0.0.1:7771",
                "host": "127.0.0.1:58968",
                "idurl": BOB.idurl,
                "proto": "tcp",
                "bytes_in": 0,
                "bytes_out": 0,
                "packets_in": 0,
                "packets_out": 0,
                "refused": 0,
                "connected": True,
            }],
            "sessions": [],
            "routes_limit": 20,
            "counters": {"RelayAck": 2, "routes_opened": 1},
            "refused": {},
        })
        router.cancel_service(request, {})
        self.assertEqual(router_reply(router.status())["closed_routes"], [[BOB.idurl, NOW]])

    def test_the_routed_users_status(self) -> None:
        clock = Clock()
        clock.advance(NOW)
        home = Path(self.mktemp())
        holder = MyIdentityHolder(home, BOB)
        network = FakeNetwork(clock, holder)
        link = FakeLink()
        client = ProxyClient(network, holder, identity_cache(home / "cache", clock), clock,
                             FakeLookup([ALICE.identity]), link, FakePublisher(), list,
                             Registry().register("proxy_receiver", "AT_STARTUP"), rng=random.Random(7))
        client.start()
        self.assertEqual(client_reply(client.status())["sessions"][0]["routed_for"], 0)
        address = router_address(ALICE.identity)
        assert address is not None
        connection = link.open(address)
        connection.bytes_in, connection.bytes_out = 300, 200
        (introduced,) = network.requests("Identity")
        network.answer(introduced, ALICE)
        (asked,) = network.requests("RequestService")
        network.answer(asked, ALICE, payload=b"accepted")
        clock.advance(12.34)
        self.assertEqual(client_reply(client.status()), {
            "sessions": [{
                "id": "proxy_receiver",
                "name": "ProxyReceiver",
                "state": "LISTEN",
                "proto": "tcp",
                "idurl": ALICE.idurl,
                "router": "alice@127.0.0.1_8084",
                "host": "127.0.0.1:7771",
                "connected": True,
                "bytes_sent": 200,
                "bytes_received": 300,
                "routed_for": 12.3,
            }],
            "queued": 0,
            "awaiting_relay_ack": 0,
            "counters": {"routes": 1},
            "past_routers": [],
        })
        client.stop()
        self.assertEqual(client_reply(client.status()), {
            "sessions": [{"id": "proxy_receiver", "name": "ProxyReceiver", "state": "CLOSED", "proto": "tcp"}],
            "queued": 0,
            "awaiting_relay_ack": 0,
            "counters": {"routes": 1},
            "past_routers": [],
        })
