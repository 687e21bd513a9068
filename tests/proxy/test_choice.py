"""Which router next: preferred ones, then ones found before, then DHT layer 2; failed ones set aside a while."""

from __future__ import annotations

import random
from pathlib import Path

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.errors import BitDustError
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.proxy.choice import RouterChoice
from bitdust_node.wire.identity_xml import Identity
from tests.proxy.fakes import FakeLookup, captured_me, identity_cache

ALICE, BOB, CAROL = captured_me("alice"), captured_me("bob"), captured_me("carol")


class ChoiceTests(SynchronousTestCase):
    def choice(self, routers: list[Identity], preferred: list[str] | None = None) -> RouterChoice:
        self.clock = Clock()
        self.lookup = FakeLookup(routers)
        home = Path(self.mktemp())
        # alice's server answers; carol's is down, but her identity is cached
        cache = identity_cache(home / "cache", self.clock, ALICE)
        cache.keep(CAROL.idurl, CAROL.identity, CAROL.xml)
        return RouterChoice(MyIdentityHolder(home, BOB), cache, self.lookup, lambda: list(preferred or []),
                            self.clock, set_aside_for=60.0, rng=random.Random(7))

    def found(self, choice: RouterChoice) -> str:
        return self.successResultOf(choice.find()).sources[0]

    def test_a_preferred_router_comes_first_fetched_or_cached(self) -> None:
        choice = self.choice([ALICE.identity], preferred=[CAROL.idurl, BOB.idurl])
        self.assertEqual(self.found(choice), CAROL.idurl)  # its server is down: the cached identity
        self.assertEqual(self.lookup.asked, 0)
        choice.set_aside(CAROL.identity, "refused")
        self.assertEqual(self.found(choice), ALICE.idurl)  # not myself: from the DHT
        self.assertEqual(self.lookup.asked, 1)

    def test_routers_found_before_are_asked_before_the_dht(self) -> None:
        choice = self.choice([ALICE.identity, CAROL.identity, BOB.identity])
        first = self.found(choice)
        self.assertEqual(sorted(choice.known), sorted([ALICE.idurl, CAROL.idurl]))
        choice.set_aside(ALICE.identity if first == ALICE.idurl else CAROL.identity, "gone")
        second = self.found(choice)
        self.assertEqual((self.lookup.asked, {first, second}), (1, {ALICE.idurl, CAROL.idurl}))
        self.assertEqual([p.router for p in choice.history], [first])

    def test_a_router_set_aside_is_asked_again_after_a_minute(self) -> None:
        choice = self.choice([ALICE.identity])
        choice.set_aside(ALICE.identity, "no answer to Identity in 15 s")
        failure = self.failureResultOf(choice.find(), BitDustError)
        self.assertIn("1 found, all set aside", failure.getErrorMessage())
        self.clock.advance(59.9)
        self.failureResultOf(choice.find(), BitDustError)
        self.clock.advance(0.1)
        self.assertEqual(self.found(choice), ALICE.idurl)
        self.assertEqual(list(choice.aside), [ALICE.idurl])
        choice.set_aside(CAROL.identity, "refused")
        self.assertEqual(list(choice.aside), [CAROL.idurl], "an expired set-aside is forgotten")

    def test_no_router_in_the_dht(self) -> None:
        self.failureResultOf(self.choice([]).find(), BitDustError)
