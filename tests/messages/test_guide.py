"""Private messages as a new user sends them: three of our nodes and an identity server on loopback,
`bitdust msg send bob hello` on alice's node, `bitdust msg history` on bob's, also after bob restarts."""

from __future__ import annotations

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from bitdust_node.node import Node
from bitdust_node.services.private_messages import PrivateMessagesService
from bitdust_node.wire import packet as wire
from tests.support.nodes import api, eventually, run_cli, start_node
from tests.transport.support import USERS, start_server, start_user


def messenger_of(node: Node) -> object:
    assert node.graph is not None
    service = node.graph.service("private_messages")
    assert isinstance(service, PrivateMessagesService) and service.messenger is not None
    return service.messenger


class GuideMessageTests(TestCase):
    timeout = 120

    async def test_send_history_restart(self) -> None:
        await start_server(self, dht=True)
        alice = await start_user(self, "alice", dht=True)
        bob = await start_user(self, "bob", dht=True)
        assert bob.graph is not None
        self.assertEqual(bob.graph.state("private_messages"), "ON", bob.graph.describe("private_messages"))
        sent = await run_cli(alice.home, "msg", "send", "bob", "hello")
        self.assertEqual((sent.code, sent.err), (0, ""))
        # nobody reads on bob's side yet: the Ack said `unread`, so not " and read"
        self.assertEqual(sent.out, "message sent to bob\n")
        shown = await run_cli(bob.home, "msg", "history")
        self.assertEqual(shown.code, 0, shown.err)
        self.assertRegex(shown.out, r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d <- alice@127\.0\.0\.40_8084: hello\n$")
        mine = await run_cli(alice.home, "msg", "history", "bob")
        self.assertIn("-> bob@127.0.0.40_8084: hello", mine.out)
        # a long-polling consumer on bob's side takes the next one: alice hears it was read
        polling = defer.ensureDeferred(api(bob, "GET", "/message/receive/reader/v1?polling_timeout=30"))
        await eventually(lambda: "reader" in messenger_of(bob).consumers)  # type: ignore[attr-defined]
        status, reply = await api(alice, "POST", "/message/send/v1", {"id": "bob", "data": {"message": "again"}})
        self.assertEqual((status, reply["result"], reply["message"]), (200, {"consumed": True}, ["message sent"]))
        _status, received = await polling
        self.assertEqual([m["data"]["message"] for m in received["result"]], ["again"])
        self.assertEqual(received["result"][0]["sender"], "master$alice@127.0.0.40_8084")
        # between two polls the consumer's queue keeps what arrives
        status, reply = await api(alice, "POST", "/message/send/v1", {"id": "bob", "data": {"message": "read"}})
        self.assertEqual(reply["result"], {"consumed": True})
        _status, received = await api(bob, "GET", "/message/receive/reader/v1?polling_timeout=1")
        self.assertEqual([m["data"]["message"] for m in received["result"]], ["read"])
        # nodes lookup: random members of the base layer, identities fetched (never myself)
        status, found = await api(alice, "GET", "/nodes/random/v1?layer_id=0&count=5")
        self.assertEqual(status, 200, found)
        idurls = {n["idurl"] for n in found["result"]}
        self.assertIn("http://127.0.0.40:8084/bob.xml", idurls)
        self.assertNotIn("http://127.0.0.40:8084/alice.xml", idurls)
        # bob's node restarts: the history is still there
        home = bob.home
        await bob.stopService()
        bob = await start_node(self, USERS["bob"], home=home)
        shown = await run_cli(bob.home, "msg", "history")
        self.assertEqual([line.rsplit(": ", 1)[1] for line in shown.out.splitlines()], ["hello", "again", "read"])

    async def test_a_replayed_message_is_acked_but_kept_once(self) -> None:
        await start_server(self, dht=True)
        alice = await start_user(self, "alice", dht=True)
        bob = await start_user(self, "bob", dht=True)
        messenger: object = messenger_of(alice)
        captured: list[bytes] = []
        gateway = messenger.gateway  # type: ignore[attr-defined]
        original = gateway.send

        def spy(packet: wire.Packet, *args: object) -> object:
            if packet.command == "Message":
                captured.append(wire.serialize(packet))
            return original(packet, *args)

        gateway.send = spy
        status, _ = await api(alice, "POST", "/message/send/v1", {"id": "bob", "data": {"message": "once"}})
        self.assertEqual(status, 200)
        tcp = alice.graph.service("tcp_connections").tcp  # type: ignore[union-attr]
        await tcp.send((USERS["bob"], 7771), captured[0])
        bob_messenger: object = messenger_of(bob)
        await eventually(lambda: bob_messenger.counters["duplicates"] == 1)  # type: ignore[attr-defined]
        status, history = await api(bob, "GET", "/message/history/v1")
        self.assertEqual([h["doc"]["data"]["message"] for h in history["result"]], ["once"])
