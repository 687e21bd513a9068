"""Real nodes on loopback: they learn their address from each other by STUN, the setting overrides it live
(no restart), and a change makes a new identity revision that the identity server serves."""

from __future__ import annotations

import re

import treq
from twisted.internet import reactor
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from bitdust_node.node import Node
from bitdust_node.services.entangled_dht import EntangledDhtService
from tests.support.network import node_settings, start_named
from tests.support.nodes import api, eventually, start_node

SERVER = "127.0.0.150"
PEERS = ("127.0.0.151", "127.0.0.152")


async def served_contacts(name: str) -> list[str]:
    pool = HTTPConnectionPool(reactor, persistent=False)
    reply = await treq.get(f"http://{SERVER}:8084/{name}.xml", pool=pool, timeout=10)
    xml = await reply.content()
    return re.findall(r"<contact>([^<]+)</contact>", xml.decode())


async def external(node: Node) -> dict[str, object]:
    status, reply = await api(node, "GET", "/network/status/v1")
    assert status == 200, reply
    found: dict[str, object] = reply["result"]["external"]
    return found


class OutsideAddressLiveTests(TestCase):
    timeout = 120

    async def test_learned_by_stun_set_by_hand_and_published(self) -> None:
        await start_node(self, SERVER, node_settings(SERVER, "server"))
        alice = await start_named(self, "alice", PEERS[0], node_settings(SERVER))
        await start_node(self, PEERS[1], node_settings(SERVER))
        self.assertEqual(await served_contacts("alice"), [f"tcp://{PEERS[0]}:7771"])

        # two other nodes answer `1s`: alice learns the address they see, which is her own here
        async def learned() -> bool:
            return (await external(alice))["source"] == "stun"

        await eventually(learned, timeout=60, interval=0.2)
        found = await external(alice)
        self.assertEqual(found["address"], PEERS[0])
        stun = found["stun"]
        assert isinstance(stun, dict)
        self.assertEqual(stun["learned"], PEERS[0])
        self.assertEqual(sum(stun["ignored"].values()), 0)

        # set by hand, applied live: the DHT keeps running, a new revision names the address
        assert alice.graph is not None
        dht_before = alice.graph.service("entangled_dht")
        assert isinstance(dht_before, EntangledDhtService)
        status, reply = await api(alice, "POST", "/config/set/v1",
                                  {"key": "services/network/external-address", "value": "node.example.org"})
        self.assertEqual(status, 200, reply)
        found = await external(alice)
        self.assertEqual((found["address"], found["source"]), ("node.example.org", "setting"))
        self.assertIs(alice.graph.service("entangled_dht"), dht_before)

        async def published(contact: str) -> bool:
            return await served_contacts("alice") == [contact]

        await eventually(lambda: published("tcp://node.example.org:7771"), timeout=20)
        status, reply = await api(alice, "GET", "/identity/get/v1")
        self.assertEqual(reply["result"]["revision"], "1")

        # a value that is neither an IP nor a host name changes nothing
        status, reply = await api(alice, "POST", "/config/set/v1",
                                  {"key": "services/network/external-address", "value": "not a host!"})
        self.assertEqual((status, reply["status"]), (400, "ERROR"))
        self.assertEqual((await external(alice))["address"], "node.example.org")

        # empty again: what STUN learned
        await api(alice, "POST", "/config/set/v1", {"key": "services/network/external-address", "value": ""})
        await eventually(lambda: published(f"tcp://{PEERS[0]}:7771"), timeout=20)
        self.assertEqual((await external(alice))["source"], "stun")
