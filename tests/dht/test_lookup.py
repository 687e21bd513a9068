"""One lookup against a scripted network: which calls it makes, and when."""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.dht.lookup import CALLS_PER_K, LOOKUP_DEADLINE, SHORTLIST_PER_K, Lookup, LookupResult
from bitdust_node.dht.message import Response
from bitdust_node.dht.patience import Address, Patience
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
        # a failure widens the window by one: the 5 closest known must answer, so 500 is asked too
        self.assertEqual(self.order, [100, 200, 300, 400, 450, 500])
        self.calls[500].callback(reply())
        result = self.successResultOf(done)
        self.assertEqual([int(c.node_id, 16) for c in result.closest], [100, 200, 400, 450])
        self.assertEqual((result.rpcs, result.failed), (6, 1))

    def test_a_lookup_never_waits_on_nothing(self) -> None:
        done = self.start(100)
        self.calls[100].callback(reply(node(900)))
        self.assertEqual(self.order, [100, 900])
        self.calls[900].callback(reply(node(100)))
        result = self.successResultOf(done)
        self.assertEqual([int(c.node_id, 16) for c in result.closest], [100, 900])


def distances(contacts: list[Contact]) -> list[int]:
    return [int(c.node_id, 16) for c in contacts]


class StalledCallTests(ScriptedLookupTests):
    """Calls unanswered for the stall time (1 s here) do not hold the lookup up; the RPC timeout is the caller's.
    The scripted tests above run here again with a Patience: while no call stalls, nothing changes."""

    def setUp(self) -> None:
        super().setUp()
        self.clock = Clock()
        self.silent: set[Address] = set()

    def start(self, *seeds: int, alpha: int = 4, find_value: bool = False) -> defer.Deferred[LookupResult]:
        patience = Patience(self.clock, 1.0, lambda address: address in self.silent)
        lookup = Lookup(TARGET, OWN, [node(s) for s in seeds], self.call, k=4, alpha=alpha, find_value=find_value,
                        patience=patience)
        return lookup.run()

    def test_a_stalled_call_frees_its_place_and_the_lookup_ends_without_it(self) -> None:
        done = self.start(100, 200, 300, 400, 500)
        self.assertEqual(self.order, [100, 200, 300, 400])
        for d in (200, 300, 400):
            self.calls[d].callback(reply())
        self.clock.advance(0.9)
        self.assertEqual(self.order, [100, 200, 300, 400])
        self.clock.advance(0.1)
        # 100 is stalled: the 4 closest not stalled are 200..500, and 500 is asked
        self.assertEqual(self.order, [100, 200, 300, 400, 500])
        self.calls[500].callback(reply())
        result = self.successResultOf(done)
        self.assertEqual(distances(result.closest), [200, 300, 400, 500])
        self.assertEqual((result.rpcs, result.failed, result.stalled), (5, 0, 1))
        # the call itself is the caller's: still open, and no stall timer is left behind
        self.assertFalse(self.calls[100].called)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.calls[100].errback(RuntimeError("timed out"))  # after the end: nothing breaks, nothing counts
        self.assertEqual(result.failed, 0)

    def test_an_answer_after_the_end_is_followed_in_the_background(self) -> None:
        learned: list[int] = []
        patience = Patience(self.clock, 1.0)
        lookup = Lookup(TARGET, OWN, [node(d) for d in (100, 200, 300, 400, 500)], self.call, k=4, alpha=4,
                        learn=lambda c: learned.append(int(c.node_id, 16)), patience=patience)
        done = lookup.run()
        for d in (200, 300, 400):
            self.calls[d].callback(reply())
        self.clock.advance(1.0)
        self.calls[500].callback(reply())
        result = self.successResultOf(done)
        self.assertEqual(distances(result.closest), [200, 300, 400, 500])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        # 100 answers late naming 50, nearer than the 4 closest: the table learns it and it is asked
        self.calls[100].callback(reply(node(50), Contact(OWN, "127.0.0.1", 1)))
        self.assertEqual(learned, [50])
        self.assertEqual(self.order, [100, 200, 300, 400, 500, 50])
        self.calls[50].callback(reply(node(40)))
        self.assertEqual(self.order, [100, 200, 300, 400, 500, 50, 40])
        self.calls[40].callback(reply(node(900)))  # nobody nearer: the background is over
        self.assertEqual(self.order, [100, 200, 300, 400, 500, 50, 40])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        # the result given stays as it was
        self.assertEqual((distances(result.closest), result.rpcs, result.stalled), ([200, 300, 400, 500], 5, 1))

    def test_answers_after_the_value_was_found_are_not_followed(self) -> None:
        done = self.start(100, 200, 300, find_value=True)
        self.calls[200].callback(Response("a" * 40, "b" * 40, {TARGET: "v"}, 0))
        self.assertEqual(self.successResultOf(done).value_reply, {TARGET: "v"})
        self.calls[100].callback(reply(node(50)))
        self.assertEqual(self.order, [100, 200])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_late_answer_of_a_stalled_call_is_used(self) -> None:
        done = self.start(100, 200, 300, 400, 500, alpha=2)
        self.assertEqual(self.order, [100, 200])
        self.calls[200].callback(reply())
        self.clock.advance(1.0)
        # 100 stalled: the next two take the places of 100 and 200
        self.assertEqual(self.order, [100, 200, 300, 400])
        self.calls[300].callback(reply())
        # 100 answers late, naming 50: 50 is asked, and both are among the closest
        self.calls[100].callback(reply(node(50)))
        self.assertEqual(self.order, [100, 200, 300, 400, 50])
        for d in (50, 400):
            self.calls[d].callback(reply())
        result = self.successResultOf(done)
        self.assertEqual(distances(result.closest), [50, 100, 200, 300])
        self.assertEqual(result.stalled, 1)

    def test_each_call_stalls_its_own_stall_time_after_it_was_sent(self) -> None:
        self.start(100, 200, 300, 400, 500, 600, alpha=2)
        self.clock.advance(0.5)
        self.calls[200].callback(reply(node(50)))
        self.assertEqual(self.order, [100, 200, 50])
        self.clock.advance(0.5)
        # 100 stalled (sent at 0), 50 not yet (sent at 0.5)
        self.assertEqual(self.order, [100, 200, 50, 300])
        self.clock.advance(0.49)
        self.assertEqual(self.order, [100, 200, 50, 300])
        self.clock.advance(0.01)
        self.assertEqual(self.order, [100, 200, 50, 300, 400])

    def test_a_lookup_that_heard_from_nobody_waits_for_its_stalled_calls(self) -> None:
        done = self.start(100, 200)
        self.clock.advance(5.0)
        self.assertNoResult(done)
        self.calls[100].errback(RuntimeError("timed out"))
        self.assertNoResult(done)
        self.calls[200].callback(reply())
        self.assertEqual(distances(self.successResultOf(done).closest), [200])

    def test_a_contact_already_silent_is_stalled_at_once(self) -> None:
        self.silent.add(node(100).address)
        done = self.start(100, 200, 300, 400, 500)
        # 100 is asked all the same (it may answer), but 500 right after it
        self.assertEqual(self.order, [100, 200, 300, 400, 500])
        for d in (200, 300, 400, 500):
            self.calls[d].callback(reply())
        self.assertEqual(distances(self.successResultOf(done).closest), [200, 300, 400, 500])

    def test_a_value_lookup_goes_on_past_a_stalled_first_wave(self) -> None:
        done = self.start(100, 200, 300, find_value=True)
        self.assertEqual(self.order, [100, 200])
        self.clock.advance(1.0)
        self.assertEqual(self.order, [100, 200, 300])
        value = Response("a" * 40, "b" * 40, {TARGET: "v", "type": "t"}, 0)
        self.calls[300].callback(value)
        result = self.successResultOf(done)
        self.assertEqual((result.value_reply, result.stalled), ({TARGET: "v", "type": "t"}, 2))

    def test_without_patience_every_call_is_waited_for(self) -> None:
        lookup = Lookup(TARGET, OWN, [node(d) for d in (100, 200, 300, 400, 500)], self.call, k=4, alpha=4)
        done = lookup.run()
        for d in (200, 300, 400):
            self.calls[d].callback(reply())
        self.clock.advance(60)
        self.assertEqual(self.order, [100, 200, 300, 400])
        self.assertNoResult(done)
        self.calls[100].errback(RuntimeError("timed out"))
        self.calls[500].callback(reply())
        self.assertEqual(distances(self.successResultOf(done).closest), [200, 300, 400, 500])


def far(distance: int) -> Contact:
    """A contact `distance` away from TARGET, however large the distance."""
    return Contact(f"{distance:040x}", "10.6.6.6", 1 + distance % 60000)


class HostileResponderTests(SynchronousTestCase):
    """A lookup ends, and holds a bounded list, when those it asks keep naming nearer contacts that answer alike
    or do not answer at all."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.lookup: Lookup | None = None
        self.asked = 0
        # the most contacts the lookup held at once (its shortlist, and the hops it keeps beside it)
        self.held = 0

    def liar(self, contact: Contact, method: str, key: str) -> defer.Deferred[Response]:
        """Answers a second later with 64 made-up contacts just nearer than the one asked."""
        assert self.lookup is not None
        self.asked += 1
        self.held = max(self.held, len(self.lookup._shortlist), len(self.lookup._hop))
        distance = int(contact.node_id, 16)
        d: defer.Deferred[Response] = defer.Deferred()
        self.clock.callLater(1.0, d.callback, reply(*[far(distance - 1 - n) for n in range(64)]))
        return d

    def test_ever_nearer_made_up_contacts_stop_at_the_cap_of_calls(self) -> None:
        seeds = [far(2**150 + n) for n in range(4)]
        self.lookup = Lookup(TARGET, OWN, seeds, self.liar, k=4, alpha=4, clock=self.clock)
        done = self.lookup.run()
        for _ in range(60):
            self.clock.advance(1.0)
        result = self.successResultOf(done)
        self.assertEqual((result.cut_short, result.rpcs, self.asked), ("calls", CALLS_PER_K * 4, CALLS_PER_K * 4))
        self.assertLessEqual(self.held, SHORTLIST_PER_K * 4)
        # what it has: the k nearest of those that answered
        self.assertEqual(len(result.closest), 4)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_lookup_gives_what_it_has_at_its_deadline(self) -> None:
        calls: dict[int, defer.Deferred[Response]] = {}

        def call(contact: Contact, method: str, key: str) -> defer.Deferred[Response]:
            calls[int(contact.node_id, 16)] = d = defer.Deferred()
            return d

        done = Lookup(TARGET, OWN, [node(d) for d in (100, 200, 300)], call, k=4, alpha=4, clock=self.clock).run()
        calls[100].callback(reply())
        # 200 and 300 never answer (the caller's calls have no timeout here)
        self.clock.advance(LOOKUP_DEADLINE - 0.1)
        self.assertNoResult(done)
        self.clock.advance(0.1)
        result = self.successResultOf(done)
        self.assertEqual((distances(result.closest), result.cut_short, result.rpcs), ([100], "deadline", 3))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        # an answer after the deadline is not followed
        calls[200].callback(reply(node(50)))
        self.assertEqual(sorted(calls), [100, 200, 300])

    def test_an_honest_lookup_is_not_cut_short(self) -> None:
        calls: dict[int, defer.Deferred[Response]] = {}

        def call(contact: Contact, method: str, key: str) -> defer.Deferred[Response]:
            calls[int(contact.node_id, 16)] = d = defer.Deferred()
            return d

        done = Lookup(TARGET, OWN, [node(d) for d in (100, 200, 300, 400)], call, k=4, alpha=4, clock=self.clock).run()
        calls[100].callback(reply(node(50), node(60)))
        for d in (200, 300, 400, 50, 60):
            self.clock.advance(1.0)
            calls[d].callback(reply())
        result = self.successResultOf(done)
        self.assertEqual((distances(result.closest), result.cut_short), ([50, 60, 100, 200], ""))
        self.assertEqual(self.clock.getDelayedCalls(), [])  # the deadline went with the lookup
