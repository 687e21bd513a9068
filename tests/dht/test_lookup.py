"""One lookup against a scripted network: which calls it makes, and when."""

from __future__ import annotations

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.dht.lookup import Lookup, LookupResult
from bitdust_node.dht.message import Response
from bitdust_node.dht.routing import Contact

TARGET = "0" * 40
OWN = "f" * 40


def node(distance: int) -> Contact:
    """A contact `distance` away from TARGET."""
    return Contact(f"{distance:040x}", "127.0.0.1", 20000 + distance)


def reply(*found: Contact) -> Response:
    return Response("a" * 40, "b" * 40, [[c.node_id, c.host, c.port] for c in found], 0)


class ScriptedLookupTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.calls: dict[int, defer.Deferred[Response]] = {}
        self.order: list[int] = []

    def call(self, contact: Contact, method: str, key: str) -> defer.Deferred[Response]:
        d: defer.Deferred[Response] = defer.Deferred()
        distance = int(contact.node_id, 16)
        self.calls[distance] = d
        self.order.append(distance)
        return d

    def start(self, *seeds: int) -> defer.Deferred[LookupResult]:
        lookup = Lookup(TARGET, OWN, [node(s) for s in seeds], self.call, k=4, alpha=4)
        return lookup.run()

    def test_a_reply_naming_nobody_nearer_waits_for_the_replies_due(self) -> None:
        Lookup(TARGET, OWN, [node(d) for d in (100, 200, 300, 400)], self.call, k=4, alpha=2).run()
        self.assertEqual(self.order, [100, 200])
        # 450 is farther than the 4th closest known (400): no new call while 200's reply is due
        self.calls[100].callback(reply(node(450)))
        self.assertEqual(self.order, [100, 200])
        # 150 is nearer: 300 is asked at once, as 150 is (two places free of alpha)
        self.calls[200].callback(reply(node(150)))
        self.assertEqual(self.order, [100, 200, 150, 300])

    def test_a_reply_naming_someone_nearer_is_followed_at_once(self) -> None:
        self.start(100, 200, 300, 400)
        self.calls[100].callback(reply(node(10)))
        self.assertEqual(self.order, [100, 200, 300, 400, 10])

    def test_the_last_reply_due_sends_the_calls_that_waited(self) -> None:
        lookup = Lookup(TARGET, OWN, [node(d) for d in (100, 200, 300, 400, 500)], self.call, k=4, alpha=2)
        done = lookup.run()
        self.assertEqual(self.order, [100, 200])
        self.calls[100].callback(reply(node(450)))
        self.assertEqual(self.order, [100, 200])  # 300 waits: 200's reply may push it out
        self.calls[200].callback(reply())
        self.assertEqual(self.order, [100, 200, 300, 400])
        self.calls[300].errback(RuntimeError("timed out"))  # a failure frees a place at once
        self.assertEqual(self.order, [100, 200, 300, 400, 450])
        self.calls[400].callback(reply())
        self.calls[450].callback(reply())
        result = self.successResultOf(done)
        self.assertEqual([int(c.node_id, 16) for c in result.closest], [100, 200, 400, 450])
        self.assertEqual((result.rpcs, result.failed), (5, 1))

    def test_a_lookup_never_waits_on_nothing(self) -> None:
        done = self.start(100)
        self.calls[100].callback(reply(node(900)))
        self.assertEqual(self.order, [100, 900])
        self.calls[900].callback(reply(node(100)))
        result = self.successResultOf(done)
        self.assertEqual([int(c.node_id, 16) for c in result.closest], [100, 900])
