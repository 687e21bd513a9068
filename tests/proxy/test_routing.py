"""Proxy routing as the guide sets it up, on loopback with our own nodes: a core node made a router with
the CLI, a user that finds it in DHT layer 2, rents a route, republishes its identity with the router's
contacts, and talks to a directly reachable user both ways through it."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from bitdust_node.identity.cache import identity_http
from bitdust_node.wire import identity_xml
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
from tests.support.nodes import api, eventually, run_cli


class GuideRouterTests(TestCase):
    timeout = 120

    async def test_core_node_becomes_a_router_with_the_cli(self) -> None:
        await start_server(self)
        # a core node as the guide starts it: the defaults of an end user, then switched with the CLI
        core = await start_named(self, "core1", ROUTERS[0], "direct", **{"services/proxy-transport/enabled": True})
        for key, value in (("services/proxy-transport/enabled", "false"), ("services/proxy-server/enabled", "true")):
            done = await run_cli(core.home, "set", key, value)
            self.assertEqual(done.code, 0, done.err)
        shown = await run_cli(core.home, "states")
        self.assertEqual(shown.code, 0, shown.err)
        lines = [line.split(": ", 1)[1] for line in shown.out.splitlines() if "proxy" in line]
        self.assertIn("service_proxy_server(ON)", lines)
        self.assertIn("service_proxy_transport(OFF)", lines)
        self.assertIn("proxy_router(LISTEN)", lines)
        verbose = await run_cli(core.home, "states", "-v")
        self.assertRegex(verbose.out, r"proxy_router\(LISTEN\).* routes 0/20")


class RoutedMessagesTests(TestCase):
    timeout = 120

    async def test_a_routed_user_talks_both_ways_through_its_router(self) -> None:
        server = await start_server(self)
        router = await start_named(self, "router1", ROUTERS[0], "router")
        await routers_known(server, 1)
        alice = await start_named(self, "alice", USERS["alice"], "direct")
        bob = await start_named(self, "bob", USERS["bob"], "routed")
        client = await routed(bob)
        self.assertEqual(client.state, "LISTEN")
        self.assertEqual(client.router.sources[0] if client.router else None, f"http://{SERVER}:8084/router1.xml")
        # bob's identity as others fetch it names the router's contact only, one revision on
        reply = await identity_http(bob.reactor).get(f"http://{SERVER}:8084/bob.xml")
        published = identity_xml.parse(reply.body)

        async def republished() -> bool:
            reply = await identity_http(bob.reactor).get(f"http://{SERVER}:8084/bob.xml")
            return identity_xml.parse(reply.body).contacts == (f"tcp://{ROUTERS[0]}:7771",)

        await eventually(republished, timeout=10)
        self.assertGreaterEqual(published.revision, 1)
        status, info = await api(router, "GET", "/network/status/v1")
        routes = info["result"]["proxy"]["routes"]
        self.assertEqual([r["idurl"] for r in routes], [f"http://{SERVER}:8084/bob.xml"])
        self.assertEqual(routes[0]["address"], f"tcp:{USERS['bob']}:7771")
        # the router never forgets its routed user's identity, nor bob his router's (the caches' pins)
        assert router.ctx is not None and bob.ctx is not None
        self.assertIn(f"http://{SERVER}:8084/bob.xml", router.ctx.identity_cache.pinned())
        self.assertIn(f"http://{SERVER}:8084/router1.xml", bob.ctx.identity_cache.pinned())
        # alice -> bob: to the router's address, RelayIn to bob
        status, reply = await api(alice, "POST", "/message/send/v1", {"id": "bob", "data": {"message": "hi bob"}})
        self.assertEqual(status, 200, reply)
        status, history = await api(bob, "GET", "/message/history/v1")
        self.assertEqual([h["doc"]["data"]["message"] for h in history["result"]], ["hi bob"])
        # bob -> alice: RelayOut, forwarded unchanged, RelayAck back to bob
        status, reply = await api(bob, "POST", "/message/send/v1", {"id": "alice", "data": {"message": "hi alice"}})
        self.assertEqual(status, 200, reply)
        status, history = await api(alice, "GET", "/message/history/v1?id=bob")
        self.assertIn("hi alice", [h["doc"]["data"]["message"] for h in history["result"]])
        status, ping = await api(alice, "GET", "/user/ping/v1?id=bob")
        self.assertEqual(status, 200, ping)
        self.assertGreater(ping["result"]["round_trip_ms"], 0)
        counters = router_of(router).counters
        self.assertGreaterEqual(counters["relayed_in"], 3)
        self.assertGreaterEqual(counters["relayed_out"], 3)
        self.assertEqual(client_of(bob).counters["relay_failed"], 0)
        status, connected = await api(bob, "GET", "/network/connected/v1")
        self.assertEqual((status, connected["result"]["service_proxy_transport"]), (200, "started"), connected)
