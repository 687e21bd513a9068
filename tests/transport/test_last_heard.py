"""When each peer last answered is remembered for the most recently heard peers only: one key signing identities
with new IDURLs forever cannot grow it, and a peer that keeps answering is never the one forgotten."""

from __future__ import annotations

from pathlib import Path

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.net.http import CappedHttp
from bitdust_node.transport.hookups import MAX_LAST_HEARD, Hookups
from bitdust_node.transport.interfaces import Inbound
from bitdust_node.wire import packet as wire
from tests.identity.vectors import identity
from tests.transport.test_hookups_input import Replies

FRIEND = "http://127.0.0.1:8084/bob.xml"


class LastHeardTests(SynchronousTestCase):
    def setUp(self) -> None:
        home = Path(self.mktemp())
        self.clock = Clock()
        cache = IdentityCache(home / "cache", CappedHttp(self.clock))
        self.hookups = Hookups(Replies(), MyIdentityHolder(home), cache, self.clock,  # type: ignore[arg-type]
                               lambda name: "ON")

    def identity_from(self, idurl: str) -> None:
        alice = identity("alice")
        packet = wire.Packet("Identity", idurl, idurl, "identity:1", "d", b"", "http://h/me.xml", "k", "1")
        self.hookups.identity_received(Inbound(packet, alice, False, wire.serialize(packet)))

    def test_a_flood_of_new_idurls_keeps_the_most_recent_and_the_peers_that_keep_answering(self) -> None:
        self.identity_from(FRIEND)
        flood = 2 * MAX_LAST_HEARD
        for n in range(flood):
            self.clock.advance(0.01)
            self.identity_from(f"http://127.0.0.9:8084/u{n}.xml")
            if n % 1000 == 0:
                self.identity_from(FRIEND)  # a peer in use answers now and then
        heard = self.hookups.last_heard
        self.assertEqual(len(heard), MAX_LAST_HEARD)
        self.assertIn(f"http://127.0.0.9:8084/u{flood - 1}.xml", heard)
        self.assertNotIn("http://127.0.0.9:8084/u0.xml", heard)
        self.assertIn(FRIEND, heard)
        # what reads it (user/status, the handshake before a message) still finds when the peer answered
        self.assertAlmostEqual(heard.get(f"http://127.0.0.9:8084/u{flood - 1}.xml", 0.0), self.clock.seconds())

    def test_heard_again_is_heard_now(self) -> None:
        self.identity_from(FRIEND)
        self.clock.advance(30.0)
        self.hookups.heard_from(FRIEND)
        self.assertEqual(self.hookups.last_heard.get(FRIEND), 30.0)
