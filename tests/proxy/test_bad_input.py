"""What a router refuses, each answered as section 4 says (or clearly, where official routers have no
answer), counted, and with the other routes undisturbed."""

from __future__ import annotations

import attrs
from twisted.trial.unittest import TestCase

from bitdust_node.crypto import keys
from bitdust_node.node import Node
from bitdust_node.proxy import relay
from bitdust_node.services.gateway import GatewayService
from bitdust_node.transport.gateway import Gateway
from bitdust_node.wire import packet as wire
from bitdust_node.wire.identity_xml import Identity
from tests.proxy.support import (
    ROUTERS,
    SERVER,
    USERS,
    client_of,
    routed,
    router_of,
    routers_known,
    start_named,
    start_server,
)
from tests.support.nodes import api, eventually


def gateway_of(node: Node) -> Gateway:
    assert node.graph is not None
    service = node.graph.service("gateway")
    assert isinstance(service, GatewayService) and isinstance(service.gateway, Gateway), "service_gateway is not ON"
    return service.gateway


def idurl(name: str) -> str:
    return f"http://{SERVER}:8084/{name}.xml"


async def relay_out(sender: Node, router: Identity, inner: wire.Packet, receiver: str) -> wire.Packet:
    """A RelayOut made by hand, as a routed user makes it, sent and its answer awaited."""
    gateway = gateway_of(sender)
    me = sender.identity.require()
    envelope = relay.Envelope(me.idurl, receiver, wire.serialize(inner), wide=True)
    sealed = relay.seal(relay.encode_envelope(envelope), relay.ROUTED_OUTGOING, me.idurl,
                        keys.public_key_from_openssh(router.publickey), me.key)
    packet = gateway.outbox("RelayOut", router.sources[0], sealed, packet_id=inner.packet_id)
    return await gateway.request(packet, router, timeout=10)


def opened_result(receiver: Node, answer: wire.Packet) -> relay.RelayResult:
    key = receiver.identity.require().key
    return relay.decode_result(relay.unseal(answer.payload, key, relay.ROUTED_INCOMING))


class RouterRefusalTests(TestCase):
    timeout = 120

    async def network(self, **router_settings: object) -> tuple[Node, Node, Node, Identity]:
        server = await start_server(self)
        router = await start_named(self, "router1", ROUTERS[0], "router", **router_settings)
        await routers_known(server, 1)
        alice = await start_named(self, "alice", USERS["alice"], "direct")
        bob = await start_named(self, "bob", USERS["bob"], "routed")
        await routed(bob)
        return router, alice, bob, router.identity.require().identity

    async def test_relay_out_from_a_user_without_a_route(self) -> None:
        router, alice, bob, router_identity = await self.network()
        inner = gateway_of(alice).outbox("Message", idurl("bob"), b"not routed")
        answer = await relay_out(alice, router_identity, inner, idurl("bob"))
        self.assertEqual((answer.command, answer.payload), ("Fail", relay.ROUTE_NOT_EXIST.encode()))
        self.assertEqual(router_of(router).refusals["relay_out_no_route"], 1)
        await self.bob_still_reachable(alice, bob)

    async def test_packet_for_a_user_the_router_does_not_route(self) -> None:
        router, alice, bob, router_identity = await self.network()
        gateway = gateway_of(alice)
        fails: list[wire.Packet] = []
        self.addCleanup(gateway.register("Fail", lambda inbound: fails.append(inbound.packet)))
        stray = gateway.outbox("Message", idurl("nobody"), b"for nobody")
        await gateway.send(stray, router_identity)
        # the Fail comes from the router, not from the one asked: no request matches it, a handler sees it
        await eventually(lambda: fails, timeout=10)
        self.assertEqual((fails[0].packet_id, fails[0].payload), (stray.packet_id, relay.ROUTE_NOT_EXIST.encode()))
        self.assertEqual(router_of(router).refusals["no_route"], 1)
        await self.bob_still_reachable(alice, bob)

    async def test_relayed_packet_with_a_bad_inner_signature(self) -> None:
        router, alice, bob, router_identity = await self.network()
        genuine = gateway_of(bob).outbox("Message", idurl("alice"), b"forged later")
        forged = attrs.evolve(genuine, payload=b"changed after signing")
        answer = await relay_out(bob, router_identity, forged, idurl("alice"))
        self.assertEqual(answer.command, "RelayFail")
        self.assertEqual(opened_result(bob, answer).error, relay.SIGNATURE_INVALID)
        self.assertEqual(router_of(router).refusals["relay_out_bad_signature"], 1)
        self.assertEqual(gateway_of(alice).counters["packets_in"], 0, "the forged packet reached alice")
        _status, history = await api(alice, "GET", "/message/history/v1")
        self.assertEqual(history["result"], [])
        await self.bob_still_reachable(alice, bob)

    async def test_a_route_request_beyond_routes_limit(self) -> None:
        router, alice, bob, _ = await self.network(**{"services/proxy-server/routes-limit": 1})
        carl = await start_named(self, "carl", USERS["carl"], "routed")
        client = client_of(carl)
        await eventually(lambda: client.state == "OFFLINE", timeout=20)
        self.assertIn("rejected", client.status().past_routers[-1].why)
        self.assertGreaterEqual(router_of(router).refusals["request_routes_full"], 1)
        self.assertEqual(list(router_of(router).routes), [idurl("bob")])
        await self.bob_still_reachable(alice, bob)

    async def test_a_user_sending_past_its_rate_limit(self) -> None:
        router, _alice, bob, router_identity = await self.network(**{"services/proxy-server/route-rate-limit": "40 KB"})
        gateway = gateway_of(bob)
        answers = []
        for number in range(4):
            inner = gateway.outbox("Identity", idurl("alice"), b"x" * 15_000, packet_id=f"bulk:{number}")
            answers.append(await relay_out(bob, router_identity, inner, idurl("alice")))
        errors = [opened_result(bob, a).error if a.command == "RelayFail" else "" for a in answers]
        self.assertIn(relay.RATE_LIMITED, errors)
        self.assertEqual(errors[0], "")
        self.assertGreaterEqual(router_of(router).refusals["rate_limited"], 1)
        self.assertIn(idurl("bob"), router_of(router).routes)

    async def bob_still_reachable(self, alice: Node, bob: Node) -> None:
        status, reply = await api(alice, "POST", "/message/send/v1", {"id": "bob", "data": {"message": "still"}})
        self.assertEqual(status, 200, reply)
