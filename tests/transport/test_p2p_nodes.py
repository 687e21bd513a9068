"""Our nodes talking peer-to-peer on loopback with real sockets: first contact, ping, connections."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from tests.support.nodes import api
from tests.transport.support import USERS, start_server, start_user


class PingTests(TestCase):
    timeout = 60

    async def test_ping_by_nickname_answers_with_a_round_trip_time(self) -> None:
        await start_server(self)
        alice = await start_user(self, "alice")
        bob = await start_user(self, "bob")
        assert alice.graph is not None
        self.assertEqual(alice.graph.state("p2p_hookups"), "ON", alice.graph.describe("p2p_hookups"))
        status, reply = await api(alice, "GET", "/user/ping/v1?id=bob")
        self.assertEqual((status, reply["status"]), (200, "OK"), reply)
        result = reply["result"]
        self.assertEqual(result["idurl"], "http://127.0.0.40:8084/bob.xml")
        self.assertEqual(result["global_id"], "bob@127.0.0.40_8084")
        self.assertGreater(result["round_trip_ms"], 0)
        self.assertRegex(reply["message"][0], r"^signed\{Ack\(api_user_ping:1:1:\d+\)\}$")
        # one connection, alice -> bob, listed on bob's side under alice's listening address
        status, listed = await api(bob, "GET", "/connection/list/v1")
        self.assertEqual([c["host"] for c in listed["result"]], [f"{USERS['alice']}:7771"])
        self.assertEqual(listed["result"][0]["global_id"], "alice@127.0.0.40_8084")
        # bob pings back over the connection alice opened: no second one
        status, back = await api(bob, "GET", "/user/ping/v1?id=alice@127.0.0.40_8084")
        self.assertEqual(status, 200, back)
        status, listed = await api(alice, "GET", "/connection/list/v1")
        self.assertEqual(len(listed["result"]), 1)
        status, seen = await api(bob, "GET", "/user/status/v1?id=http://127.0.0.40:8084/alice.xml")
        self.assertEqual(seen["result"]["contact_state"], "CONNECTED")

    async def test_ping_of_a_user_whose_node_is_down_times_out(self) -> None:
        await start_server(self)
        alice = await start_user(self, "alice")
        bob = await start_user(self, "bob")
        await bob.stopService()
        status, reply = await api(alice, "GET", "/user/ping/v1?id=bob&timeout=2")
        self.assertEqual((status, reply["status"]), (503, "ERROR"), reply)
        self.assertIn("127.0.0.42:7771", reply["errors"][0])
        # the node goes on serving
        status, again = await api(alice, "GET", "/user/ping/v1?id=bob&timeout=2")
        self.assertEqual(status, 503)
        self.assertIn("next try in", again["errors"][0])
