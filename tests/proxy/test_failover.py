"""SIGKILL of a router: its routed user moves to the other router (measured) and messages flow again.
The routers are real `twistd bitdust` processes; the users and the seed run in the test's reactor."""

from __future__ import annotations

import time

from twisted.internet.error import ConnectError
from twisted.trial.unittest import TestCase

from bitdust_node.identity.cache import identity_http
from bitdust_node.node import Node
from bitdust_node.wire import identity_xml
from tests.proxy.support import ROUTERS, USERS, routed, routers_known, settings_for, start_named, start_server
from tests.support.nodes import api, eventually
from tests.support.processes import NodeProcess

# a user notices its router's connection close at once, redials (refused) and asks the next known router
FAILOVER_BOUND = 15.0


async def answering(process: NodeProcess) -> bool:
    try:
        await process.api("GET", "/process/health/v1")
    except ConnectError:
        return False
    return True


async def published_contacts(node: Node) -> list[str]:
    """The contacts of the node's identity as its identity server serves it to others."""
    me = node.identity.require()
    reply = await identity_http(node.reactor).get(me.idurl)
    return list(identity_xml.parse(reply.body).contacts)


class FailoverTests(TestCase):
    timeout = 150

    async def test_sigkill_of_the_router_moves_the_user_to_the_other_one(self) -> None:
        server = await start_server(self)
        routers = [NodeProcess(self, address, settings_for("router")) for address in ROUTERS]
        for number, process in enumerate(routers, 1):
            await eventually(lambda p=process: answering(p), timeout=30)
            reply = await process.api("POST", "/identity/create/v1", {"username": f"router{number}"})
            self.assertEqual(reply["status"], "OK", reply)
        await routers_known(server, 2)
        alice = await start_named(self, "alice", USERS["alice"], "direct")
        bob = await start_named(self, "bob", USERS["bob"], "routed")
        client = await routed(bob)
        assert client.router is not None
        first = client.router.sources[0]
        status, reply = await api(alice, "POST", "/message/send/v1", {"id": "bob", "data": {"message": "one"}})
        self.assertEqual(status, 200, reply)
        victim = routers[0] if first.endswith("/router1.xml") else routers[1]
        killed_at = time.monotonic()
        await victim.kill()
        await eventually(lambda: client.listening and client.router is not None and client.router.sources[0] != first,
                         timeout=FAILOVER_BOUND, interval=0.02)
        moved_after = time.monotonic() - killed_at
        assert client.router is not None
        second = client.router.sources[0]
        print(f"\nrouter {first} SIGKILLed: bob routed by {second} after {moved_after:.2f} s")
        self.assertEqual(client.status().past_routers[-1].router, first)
        # bob's new identity names the second router; alice's next message finds it there
        survivor = ROUTERS[1] if victim is routers[0] else ROUTERS[0]

        async def republished() -> bool:
            return await published_contacts(bob) == [f"tcp://{survivor}:7771"]

        await eventually(republished, timeout=10)
        status, reply = await api(alice, "POST", "/message/send/v1", {"id": "bob", "data": {"message": "two"}})
        self.assertEqual(status, 200, reply)
        status, reply = await api(bob, "POST", "/message/send/v1", {"id": "alice", "data": {"message": "back"}})
        self.assertEqual(status, 200, reply)
        status, history = await api(bob, "GET", "/message/history/v1")
        self.assertEqual([h["doc"]["data"]["message"] for h in history["result"]], ["one", "two", "back"])
