"""The guide's identity flow with real nodes on loopback: create, serve, backup, restore, propagate."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from twisted.trial.unittest import TestCase

from bitdust_node.net.http import CappedHttp
from bitdust_node.node import Node
from bitdust_node.wire import identity_xml
from tests.support.nodes import api, eventually, run_cli, start_node

SERVER = "127.0.0.10"
ALICE = "127.0.0.11"
FRESH = "127.0.0.12"


def client_settings(servers: str = f"{SERVER}:8084") -> dict[str, Any]:
    return {
        "services/identity-propagate/known-servers": servers,
        "personal/private-key-size": 1024,
        "services/entangled-dht/enabled": False,
    }


async def start_server_node(test: TestCase) -> Node:
    settings = client_settings()
    settings.update(
        {
            "services/identity-server/enabled": True,
            "services/identity-server/host": SERVER,
        }
    )
    return await start_node(test, SERVER, settings)


async def fetch(url: str) -> tuple[int, bytes]:
    from twisted.internet import reactor

    reply = await CappedHttp(reactor).get(url)
    return reply.status, reply.body


class GuideFlowTests(TestCase):
    timeout = 60

    async def test_create_serve_backup_restore(self) -> None:
        await start_server_node(self)
        alice = await start_node(self, ALICE, client_settings())
        status, reply = await api(alice, "GET", "/identity/get/v1")
        self.assertEqual(
            reply,
            {
                "status": "ERROR",
                "errors": ["local identity is not valid or not exist"],
                "execution": reply["execution"],
            },
        )
        status, reply = await api(alice, "POST", "/identity/create/v1", {"username": "alice"})
        self.assertEqual((status, reply["status"]), (200, "OK"), reply)
        created = reply["result"]
        self.assertEqual(created["idurl"], f"http://{SERVER}:8084/alice.xml")
        self.assertEqual(created["global_id"], f"alice@{SERVER}_8084")
        self.assertEqual(created["contacts"], [f"tcp://{ALICE}:7771"])
        self.assertEqual(created["revision"], "0")
        # the server serves exactly the signed file, and lists it
        status, body = await fetch(created["idurl"])
        self.assertEqual((status, body.decode()), (200, created["xml"]))
        status, page = await fetch(f"http://{SERVER}:8084/")
        self.assertIn(f"Identities on {SERVER}", page.decode())
        self.assertIn('<a href="/alice.xml"><nobr>alice</nobr></a>', page.decode())
        # once more: refused
        status, again = await api(alice, "POST", "/identity/create/v1", {"username": "alice"})
        self.assertEqual(again["errors"], ["local identity already exist"])
        # back up, through the CLI as the guide does
        backup_file = Path(self.mktemp()).resolve()
        done = await run_cli(alice.home, "identity", "backup", str(backup_file))
        self.assertEqual(done.code, 0, done.err)
        self.assertEqual(stat.S_IMODE(backup_file.stat().st_mode), 0o600)
        text = backup_file.read_text()
        self.assertTrue(text.startswith(created["idurl"] + "\n-----BEGIN RSA PRIVATE KEY-----"))
        shown = await run_cli(alice.home, "identity", "show")
        self.assertEqual(shown.code, 0, shown.err)
        # the file, then each of its servers asked now
        self.assertEqual(shown.out, created["xml"] + "\n\nsources:\n"
                         f"  1. {created['idurl']}  reachable, serves revision 0\n"
                         "automatic rotation on, checked every 300 s\n")
        # a fresh home restores the same identity
        fresh = await start_node(self, FRESH, client_settings())
        restored = await run_cli(fresh.home, "identity", "restore", str(backup_file))
        self.assertEqual(restored.code, 0, restored.err)
        self.assertEqual(restored.out, f"restored identity alice@{SERVER}_8084 at {created['idurl']}\n")
        status, got = await api(fresh, "GET", "/identity/get/v1")
        for field in ("idurl", "global_id", "publickey", "sources"):
            self.assertEqual(got["result"][field], created[field])
        # the restored node lives elsewhere: it publishes its own contacts as the next revision

        async def republished() -> bool:
            _, body = await fetch(created["idurl"])
            served = identity_xml.parse(body)
            return served.contacts == (f"tcp://{FRESH}:7771",) and served.publickey == created["publickey"]

        await eventually(republished)
        self.assertEqual(
            fresh.identity.current.key.private_numbers(),
            alice.identity.current.key.private_numbers(),
        )

    async def test_name_taken_and_bad_names(self) -> None:
        await start_server_node(self)
        alice = await start_node(self, ALICE, client_settings())
        created = await run_cli(alice.home, "identity", "create", "alice")
        self.assertEqual(created.code, 0, created.err)
        self.assertEqual(created.out, f"created identity alice@{SERVER}_8084 at http://{SERVER}:8084/alice.xml\n")
        other = await start_node(self, FRESH, client_settings())
        taken = await run_cli(other.home, "identity", "create", "alice")
        self.assertEqual(taken.code, 1)
        self.assertEqual(taken.err, f"name 'alice' is already taken on {SERVER}\n")
        status, reply = await api(other, "POST", "/identity/create/v1", {"username": "alice"})
        self.assertEqual(status, 409)
        self.assertIn("already taken", reply["errors"][0])
        for bad in ("../x", "A", "ab", "x" * 21):
            status, reply = await api(other, "POST", "/identity/create/v1", {"username": bad})
            self.assertEqual(status, 400, bad)
        self.assertIsNone(other.identity.current)
        self.assertFalse((other.home / "identity").exists())
        # a person asking for an identity that does not exist is told what to do
        shown = await run_cli(other.home, "identity", "show")
        self.assertEqual(shown.code, 1)
        self.assertEqual(
            shown.err, "this node has no identity yet: create one with `bitdust identity create NAME`\n"
        )

    async def test_no_server_answers(self) -> None:
        alice = await start_node(self, ALICE, client_settings(f"{SERVER}:8084"))
        status, _reply = await api(alice, "POST", "/identity/create/v1", {"username": "alice"})
        self.assertEqual(status, 503)
        self.assertIsNone(alice.identity.current)

    async def test_contact_change_signs_and_propagates_new_revision(self) -> None:
        await start_server_node(self)
        alice = await start_node(self, ALICE, client_settings())
        status, reply = await api(alice, "POST", "/identity/create/v1", {"username": "alice"})
        self.assertEqual(status, 200, reply)
        idurl = reply["result"]["idurl"]
        graph: Any = alice.graph
        await eventually(lambda: graph.state("identity_propagate") == "ON")
        status, reply = await api(
            alice,
            "POST",
            "/config/set/v1",
            {"key": "services/tcp-connections/tcp-port", "value": "7779"},
        )
        self.assertEqual((status, reply["status"]), (200, "OK"), reply)

        async def served_revision() -> bool:
            _, body = await fetch(idurl)
            identity = identity_xml.parse(body)
            return identity.revision == 1 and identity.contacts == (f"tcp://{ALICE}:7779",)

        await eventually(served_revision)
        self.assertEqual(alice.identity.current.identity.revision, 1)
        _status, got = await api(alice, "GET", "/identity/get/v1")
        self.assertEqual(got["result"]["contacts"], [f"tcp://{ALICE}:7779"])


class OneNodeGuideTests(TestCase):
    """The README walkthrough: one node is both the identity server and alice's node."""

    timeout = 60

    async def test_server_and_client_on_one_node_and_periodic_touch(self) -> None:
        from bitdust_node.services.identity_propagate import IdentityPropagateService

        self.patch(IdentityPropagateService, "propagate_interval", 0.3)
        address = "127.0.0.15"
        settings = client_settings(f"{address}:8084")
        settings.update(
            {
                "services/identity-server/enabled": True,
                "services/identity-server/host": address,
            }
        )
        node = await start_node(self, address, settings)
        status, reply = await api(node, "POST", "/identity/create/v1", {"username": "alice"})
        self.assertEqual((status, reply["status"]), (200, "OK"), reply)
        status, body = await fetch(f"http://{address}:8084/alice.xml")
        self.assertEqual(body.decode(), reply["result"]["xml"])
        graph: Any = node.graph
        server: Any = graph.service("identity_server")
        first = server.idserver.store.get("alice").touched
        # re-propagation touches the stored copy without a new revision
        await eventually(lambda: server.idserver.store.get("alice").touched > first + 0.5)
        self.assertEqual(server.idserver.store.get("alice").identity.revision, 0)
        states = await run_cli(node.home, "states")
        self.assertRegex(states.out, r"\d+: id_server\(LISTEN\)")


class AddressChangeTests(TestCase):
    timeout = 60

    async def test_bind_address_change_publishes_new_contacts(self) -> None:
        await start_server_node(self)
        alice = await start_node(self, ALICE, client_settings())
        status, reply = await api(alice, "POST", "/identity/create/v1", {"username": "alice"})
        self.assertEqual(status, 200, reply)
        idurl = reply["result"]["idurl"]
        status, reply = await api(
            alice, "POST", "/config/set/v1", {"key": "services/network/bind-address", "value": "127.0.0.16"}
        )
        self.assertEqual(status, 200, reply)

        async def served_contacts() -> tuple[str, ...]:
            _, body = await fetch(idurl)
            return identity_xml.parse(body).contacts

        await eventually(lambda: _equals(served_contacts(), ("tcp://127.0.0.16:7771",)))
        self.assertEqual(alice.identity.current.identity.revision, 1)


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)
