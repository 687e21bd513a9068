"""Identity rotation with real nodes on loopback: two identity servers, alice registered on both with her IDURL
on the first, which is SIGKILLed for good. Within a few check intervals the second serves alice with itself
first and a higher revision, and the peers follow: bob's messages to her old IDURL reach her, her suppliers
still serve her files, and a routed user who moves keeps its route."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.error import ConnectError
from twisted.trial.unittest import TestCase

from bitdust_node.identity.cache import IdentityCache, identity_http
from bitdust_node.messages.messenger import Messenger
from bitdust_node.node import Node
from bitdust_node.services.private_messages import PrivateMessagesService
from bitdust_node.wire import identity_xml
from tests.proxy.support import client_of, router_of
from tests.storage.network import customer_of, supplier_of
from tests.support.nodes import api, eventually, run_cli, running_dht, start_node
from tests.support.processes import NodeProcess

DOOMED = "127.0.0.121"  # the first identity server, SIGKILLed
SURVIVOR = "127.0.0.122"  # the second identity server and DHT genesis
ALICE, BOB, CAROL = "127.0.0.123", "127.0.0.124", "127.0.0.125"
SUPPLIERS = ("127.0.0.126", "127.0.0.127")
ROUTER = "127.0.0.128"
# a short check interval: a rotation after two failed checks takes a few seconds, not ten minutes
INTERVAL = 1
ROTATION_BOUND = 8 * INTERVAL + 10


def settings(*servers: str, **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "services/identity-propagate/known-servers": " ".join(f"{s}:8084" for s in servers),
        "services/identity-propagate/min-servers": len(servers),
        "services/identity-propagate/health-check-interval-seconds": INTERVAL,
        "personal/private-key-size": 1024,
        "services/entangled-dht/known-nodes": f"{SURVIVOR}:14441",
        "services/proxy-transport/enabled": False,
        "services/supplier/enabled": False,
        "services/customer/enabled": False,
    }
    values.update(extra)
    return values


def server_settings(address: str, **extra: Any) -> dict[str, Any]:
    return settings(address, **{"services/identity-server/enabled": True, "services/identity-server/host": address,
                                **extra})


async def served(idurl: str) -> identity_xml.Identity | None:
    try:
        reply = await identity_http(reactor).get(idurl)
    except Exception:
        return None
    return identity_xml.parse(reply.body) if reply.status == 200 else None


def alice_messenger(node: Node) -> Messenger:
    assert node.graph is not None
    service = node.graph.service("private_messages")
    assert isinstance(service, PrivateMessagesService) and service.messenger is not None
    return service.messenger


def cache_of(node: Node) -> IdentityCache:
    assert node.ctx is not None
    return node.ctx.identity_cache


async def answering(process: NodeProcess) -> bool:
    try:
        await process.api("GET", "/process/health/v1")
    except ConnectError:
        return False
    return True


class TwoServers:
    """The doomed server as a real process (to be SIGKILLed), the survivor as a node in this reactor."""

    def __init__(self, test: TestCase) -> None:
        self.test = test

    async def start(self) -> None:
        self.survivor = await start_node(self.test, SURVIVOR, server_settings(
            SURVIVOR, **{"services/entangled-dht/known-nodes": "genesis"}))
        self.doomed = NodeProcess(self.test, DOOMED, server_settings(DOOMED, **{
            "services/entangled-dht/enabled": False, "services/p2p-hookups/enabled": False}))
        await eventually(lambda: answering(self.doomed), timeout=30)

    async def named(self, name: str, address: str, *servers: str, **extra: Any) -> Node:
        node = await start_node(self.test, address, settings(*servers, **extra))
        status, reply = await api(node, "POST", "/identity/create/v1", {"username": name})
        self.test.assertEqual(status, 200, reply)
        assert node.graph is not None
        await node.graph.settled()
        return node

    async def kill_and_wait_for_the_move(self, node: Node) -> tuple[identity_xml.Identity, float]:
        """SIGKILL the first server; the identity the survivor serves once `node` moved there, and how long
        that took."""
        before = node.identity.require()
        self.test.assertEqual(before.idurl, f"http://{DOOMED}:8084/{before.name}.xml")
        killed_at = time.monotonic()
        await self.doomed.kill()
        new_idurl = f"http://{SURVIVOR}:8084/{before.name}.xml"

        async def moved() -> identity_xml.Identity | None:
            found = await served(new_idurl)
            if found is None or found.sources[0] != new_idurl or node.identity.require().idurl != new_idurl:
                return None  # (the servers confirm it before the node adopts it)
            return found

        identity = await eventually(moved, timeout=ROTATION_BOUND, interval=0.1)
        return identity, time.monotonic() - killed_at


class RotationMessagesTests(TestCase):
    timeout = 120

    async def test_first_server_killed_alice_moves_and_bob_reaches_her_old_idurl(self) -> None:
        servers = TwoServers(self)
        await servers.start()
        alice = await servers.named("alice", ALICE, DOOMED, SURVIVOR)
        bob = await servers.named("bob", BOB, SURVIVOR)
        carol = await servers.named("carol", CAROL, SURVIVOR)
        old = alice.identity.require()
        self.assertEqual(old.identity.sources, (f"http://{DOOMED}:8084/alice.xml", f"http://{SURVIVOR}:8084/alice.xml"))
        # bob writes to alice (a correspondent: told of her move); carol only pings her (not told)
        status, reply = await api(bob, "POST", "/message/send/v1", {"id": old.idurl, "data": {"message": "before"}})
        self.assertEqual(status, 200, reply)
        status, reply = await api(carol, "GET", f"/user/ping/v1?id={old.idurl}")
        self.assertEqual(status, 200, reply)
        shown = await run_cli(alice.home, "identity", "show")
        self.assertIn(f"  1. {old.idurl}  reachable, serves revision {old.identity.revision}\n", shown.out)

        moved, took = await servers.kill_and_wait_for_the_move(alice)
        print(f"\nfirst identity server SIGKILLed: alice served first by the second after {took:.1f} s"
              f" (checks every {INTERVAL} s)")
        new_idurl = f"http://{SURVIVOR}:8084/alice.xml"
        self.assertEqual(moved.sources, (new_idurl,))
        self.assertGreater(moved.revision, old.identity.revision)
        self.assertEqual(moved.publickey, old.identity.publickey)
        me = alice.identity.require()
        self.assertEqual((me.idurl, me.identity.revision), (new_idurl, moved.revision))
        self.assertEqual(alice.identity.former, (old.idurl,))
        # bob, her correspondent, was told: his cache already resolves her old IDURL to the new one
        await eventually(lambda: cache_of(bob).newest_idurl(old.idurl) == new_idurl, timeout=10)

        # bob and carol write to her old IDURL; both reach her
        for sender, text in ((bob, "after, to the old IDURL"), (carol, "from carol, to the old IDURL")):
            status, reply = await api(sender, "POST", "/message/send/v1", {"id": old.idurl, "data": {"message": text}})
            self.assertEqual(status, 200, reply)
        status, history = await api(alice, "GET", "/message/history/v1")
        texts = [m["doc"]["data"]["message"] for m in history["result"] if m["doc"]["dir"] == "incoming"]
        self.assertEqual(texts, ["before", "after, to the old IDURL", "from carol, to the old IDURL"])
        # carol was not told and still knows alice by her old first source: her message went to the old IDURL
        # on the wire, sealed for alice's old key id, and alice read it
        raw = alice_messenger(alice).history.list()
        self.assertEqual([(m.sender, m.recipient) for m in raw if m.direction == "incoming"][-1],
                         ("master$carol@127.0.0.122_8084", "master$alice@127.0.0.121_8084"))
        # when carol refreshes alice, the dead first server is skipped for the second source of her copy
        self.assertEqual(cache_of(carol).newest_idurl(old.idurl), old.idurl)
        refreshed = await cache_of(carol).fetch(old.idurl)
        self.assertEqual((refreshed.sources[0], refreshed.revision), (new_idurl, moved.revision))
        self.assertEqual(cache_of(carol).newest_idurl(old.idurl), new_idurl)
        # bob's history shows alice as one correspondent, by where she is now
        status, history = await api(bob, "GET", f"/message/history/v1?id={old.idurl}")
        self.assertEqual([m["doc"]["recipient"] for m in history["result"]], ["master$alice@127.0.0.122_8084"] * 2)
        listed = await run_cli(bob.home, "msg", "history", "alice@127.0.0.122_8084")
        self.assertEqual([line.split(" -> ")[1] for line in listed.out.splitlines()],
                         ["alice@127.0.0.122_8084: before", "alice@127.0.0.122_8084: after, to the old IDURL"])
        # and alice's own view of her servers
        shown = await run_cli(alice.home, "identity", "show")
        self.assertIn(f"  1. {new_idurl}  reachable, serves revision {moved.revision}\n  left: {old.idurl}\n",
                      shown.out)


class RotationStorageTests(TestCase):
    timeout = 240

    async def test_alices_suppliers_serve_her_files_after_she_moved(self) -> None:
        servers = TwoServers(self)
        await servers.start()
        suppliers = []
        for number, address in enumerate(SUPPLIERS):
            suppliers.append(await servers.named(f"supplier{number}", address, SURVIVOR, **{
                "services/supplier/enabled": True}))
        await eventually(lambda: running_dht(servers.survivor).contact_count(3) >= len(SUPPLIERS), timeout=30)
        alice = await servers.named("alice", ALICE, DOOMED, SURVIVOR, **{
            "services/customer/enabled": True, "services/customer/suppliers-number": 2})
        await eventually(lambda: len(customer_of(alice).suppliers.connected()) == 2, timeout=60)
        work = Path(self.mktemp())
        work.mkdir()
        original = work / "notes.bin"
        original.write_bytes(os.urandom(3 << 20))
        stored = await run_cli(alice.home, "file", "upload", str(original))
        self.assertEqual(stored.code, 0, stored.err)
        old = alice.identity.require()

        moved, took = await servers.kill_and_wait_for_the_move(alice)
        print(f"\nalice (a customer) moved after {took:.1f} s")
        back = Path(self.mktemp())
        fetched = await run_cli(alice.home, "file", "download", "notes.bin", str(back))
        self.assertEqual(fetched.code, 0, fetched.err + fetched.out)
        self.assertEqual((back / "notes.bin").read_bytes(), original.read_bytes())
        # a file stored after the move (on both suppliers) comes back too
        later = work / "later.bin"
        later.write_bytes(os.urandom(100_000))
        stored = await run_cli(alice.home, "file", "upload", str(later))
        self.assertEqual(stored.code, 0, stored.err)
        fetched = await run_cli(alice.home, "file", "download", "later.bin", str(back))
        self.assertEqual(fetched.code, 0, fetched.err)
        self.assertEqual((back / "later.bin").read_bytes(), later.read_bytes())
        for node in suppliers:
            # told of her move, each supplier files her under her new IDURL; her pieces stay in their folder
            self.assertEqual(cache_of(node).newest_idurl(old.idurl), moved.sources[0])
            customers = supplier_of(node).customers.by_idurl
            self.assertEqual(list(customers), [moved.sources[0]])
            self.assertEqual(customers[moved.sources[0]].global_id, old.global_id)
            self.assertEqual([p.name for p in (node.home / "customers").iterdir()], [old.global_id])


class RotationRoutedTests(TestCase):
    timeout = 180

    async def test_a_routed_user_who_moves_keeps_its_route(self) -> None:
        servers = TwoServers(self)
        await servers.start()
        router = await servers.named("router", ROUTER, SURVIVOR, **{"services/proxy-server/enabled": True})
        await eventually(lambda: running_dht(servers.survivor).contact_count(2) >= 1, timeout=30)
        bob = await servers.named("bob", BOB, SURVIVOR)
        alice = await servers.named("alice", ALICE, DOOMED, SURVIVOR, **{"services/proxy-transport/enabled": True})
        client = client_of(alice)
        await eventually(lambda: client.listening, timeout=30)
        old = alice.identity.require()
        routes = router_of(router).routes
        self.assertEqual(list(routes), [old.idurl])
        status, reply = await api(bob, "POST", "/message/send/v1", {"id": old.idurl, "data": {"message": "routed"}})
        self.assertEqual(status, 200, reply)

        moved, took = await servers.kill_and_wait_for_the_move(alice)
        print(f"\nalice (routed) moved after {took:.1f} s")
        new_idurl = moved.sources[0]
        # her router was told first, and routes her under her new IDURL, on the same connection
        await eventually(lambda: list(routes) == [new_idurl], timeout=10)
        self.assertTrue(client.listening)
        self.assertEqual(moved.contacts, client.router.contacts if client.router else None)
        # bob reaches her by her old IDURL and her new one, through the router; she answers through it
        for idurl, text in ((old.idurl, "to the old one"), (new_idurl, "to the new one")):
            status, reply = await api(bob, "POST", "/message/send/v1", {"id": idurl, "data": {"message": text}})
            self.assertEqual(status, 200, reply)
        status, reply = await api(alice, "POST", "/message/send/v1", {"id": "bob@127.0.0.122_8084",
                                                                      "data": {"message": "from the new one"}})
        self.assertEqual(status, 200, reply)
        status, history = await api(alice, "GET", "/message/history/v1")
        self.assertEqual([m["doc"]["data"]["message"] for m in history["result"]],
                         ["routed", "to the old one", "to the new one", "from the new one"])
        route = routes[new_idurl]
        self.assertGreaterEqual(route.packets_in, 1)
        self.assertGreaterEqual(route.packets_out, 3)
        self.assertEqual(router_of(router).counters["routes_moved"], 1)


class RotationByHandTests(TestCase):
    timeout = 90

    async def test_an_operator_retires_a_live_server(self) -> None:
        await start_node(self, SURVIVOR, server_settings(SURVIVOR, **{"services/entangled-dht/known-nodes": "genesis"}))
        await start_node(self, DOOMED, server_settings(DOOMED, **{"services/entangled-dht/enabled": False}))
        alice = await start_node(self, ALICE, settings(DOOMED, SURVIVOR, **{
            "services/identity-propagate/automatic-rotate-enabled": False}))
        status, reply = await api(alice, "POST", "/identity/create/v1", {"username": "alice"})
        self.assertEqual(status, 200, reply)
        assert alice.graph is not None
        await alice.graph.settled()
        old = alice.identity.require()
        # a server that is not one of mine is a mistake, said plainly; nothing moves
        status, reply = await api(alice, "POST", "/identity/rotate/v1", {"server": "127.0.0.99:8084"})
        self.assertEqual((status, reply["errors"]), (400, ["no source of my identity is on 127.0.0.99:8084"]))
        moved = await run_cli(alice.home, "identity", "rotate")
        self.assertEqual(moved.code, 0, moved.err)
        new_idurl = f"http://{SURVIVOR}:8084/alice.xml"
        self.assertEqual(moved.out, f"identity moved from {old.idurl} to {new_idurl}, revision"
                                    f" {old.identity.revision + 1}\nsources: {new_idurl}\n")
        found = await served(new_idurl)
        assert found is not None
        self.assertEqual((found.sources, found.revision), ((new_idurl,), old.identity.revision + 1))
        # back again, by name: the first server still holds my old copy (same key), and is taken again
        back = await run_cli(alice.home, "identity", "rotate", f"{SURVIVOR}:8084")
        self.assertEqual(back.code, 0, back.err)
        self.assertEqual(alice.identity.require().identity.sources, (old.idurl,))
        self.assertEqual(alice.identity.require().identity.revision, old.identity.revision + 2)
        self.assertEqual(alice.identity.former, (new_idurl,))
        shown = await run_cli(alice.home, "identity", "show")
        self.assertIn(f"  1. {old.idurl}  reachable, serves revision {old.identity.revision + 2}\n"
                      f"  left: {new_idurl}\nautomatic rotation off, checked every {INTERVAL} s\n", shown.out)
        status, states = await api(alice, "GET", "/automat/list/v1")
        self.assertIn("id_rotator(READY)", [m["repr"] for m in states["result"]])
