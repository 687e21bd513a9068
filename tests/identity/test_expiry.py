"""The id_server machine: states, periodic sweep on an injected clock, expiry of untouched files."""

from __future__ import annotations

from pathlib import Path

from twisted.internet.task import Clock
from twisted.trial import unittest

from bitdust_node.fsm import Registry, trace
from bitdust_node.identity.server import DAY, IdServer
from bitdust_node.identity.server_store import IdentityStore
from tests.identity import vectors


class ExpiryTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_795_608_700)
        self.root = Path(self.mktemp())
        self.registry = Registry()

    def _server(self) -> IdServer:
        store = IdentityStore(self.root)
        store.load()
        server = IdServer("127.0.0.1", store, self.clock, expire_days=60)
        self.entry = self.registry.register("id_server", "AT_STARTUP")
        trace(server.machine, self.entry)
        return server

    def test_states(self) -> None:
        server = self._server()
        server.machine.start()
        self.assertEqual(self.entry.state, "LISTEN")
        server.machine.stop()
        self.assertEqual(self.entry.state, "CLOSED")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_untouched_identity_expires_touched_one_stays(self) -> None:
        server = self._server()
        server.machine.start()
        server.receive(vectors.identity_bytes("alice"))
        server.receive(vectors.identity_bytes("bob"))
        self.clock.pump([DAY] * 59)
        server.receive(vectors.identity_bytes("bob"))  # re-propagated: touched
        self.clock.pump([DAY] * 2)
        self.assertIsNone(server.store.get("alice"))
        self.assertFalse((self.root / "alice.xml").exists())
        self.assertIsNotNone(server.store.get("bob"))
        self.clock.pump([DAY] * 59)
        self.assertEqual(server.store.names(), [])
        self.assertEqual(sorted(p.name for p in self.root.iterdir()), [])
        server.machine.stop()

    def test_restart_loads_files_and_drops_expired_ones(self) -> None:
        server = self._server()
        server.machine.start()
        server.receive(vectors.identity_bytes("alice"))
        self.clock.advance(30 * DAY)
        server.receive(vectors.identity_bytes("carol"))
        server.machine.stop()
        self.clock.advance(40 * DAY)
        again = self._server()
        self.assertEqual(again.store.names(), ["alice", "carol"])
        self.assertEqual(again.store.get("carol").xml, vectors.identity_bytes("carol"))  # type: ignore[union-attr]
        again.machine.start()
        self.assertEqual(again.store.names(), ["carol"])
        again.machine.stop()

    def test_stray_temp_and_foreign_files_are_ignored(self) -> None:
        self.root.mkdir()
        (self.root / ".alice.1.2.tmp").write_bytes(b"half")
        (self.root / "bob.xml").write_bytes(vectors.identity_bytes("alice"))
        (self.root / "carol.xml").write_bytes(b"garbage")
        server = self._server()
        self.assertEqual(server.store.names(), [])
        self.assertFalse((self.root / ".alice.1.2.tmp").exists())
