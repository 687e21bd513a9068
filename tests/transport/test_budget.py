"""The node-wide receive budget: free bytes to anyone, then room for a newcomer only from larger holders'
newest unfinished files, refusals and evictions counted; invariants held under any sequence (hypothesis)."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.net.budget import Claim, ReceiveBudget

MIB = 1024 * 1024


class Evictions:
    """Records which claims the budget took back."""

    def __init__(self) -> None:
        self.taken: list[str] = []

    def of(self, name: str) -> Callable[[], None]:
        return lambda: self.taken.append(name)


class BudgetTests(SynchronousTestCase):
    def test_free_bytes_go_to_anyone_and_come_back_on_release(self) -> None:
        budget, gone = ReceiveBudget(10 * MIB), Evictions()
        first = budget.claim("1.1.1.1", 6 * MIB, "file", gone.of("first"))
        self.assertIsNotNone(first)
        self.assertIsNone(budget.claim("1.1.1.1", 5 * MIB, "file", gone.of("second")))
        assert first is not None
        first.release()
        first.release()  # twice: nothing more
        self.assertEqual(budget.held, 0)
        self.assertIsNotNone(budget.claim("1.1.1.1", 10 * MIB, "file", gone.of("third")))
        self.assertEqual(budget.status()["refused"], {"file": 1})
        self.assertEqual(budget.status()["peak"], 10 * MIB)
        self.assertEqual(gone.taken, [])

    def test_more_than_the_whole_budget_is_refused_at_once(self) -> None:
        budget = ReceiveBudget(10 * MIB)
        self.assertIsNone(budget.claim("a", 10 * MIB + 1, "file"))
        self.assertEqual(budget.held, 0)

    def test_a_newcomer_takes_back_the_newest_file_of_the_largest_holder(self) -> None:
        budget, gone = ReceiveBudget(64 * MIB), Evictions()
        for n in range(4):
            self.assertIsNotNone(budget.claim("attacker", 16 * MIB, "file", gone.of(f"a{n}")))
        self.assertIsNone(budget.claim("attacker", 16 * MIB, "file", gone.of("a4")))  # its own: never
        for other in ("b", "c", "d"):
            self.assertIsNotNone(budget.claim(other, 16 * MIB, "file", gone.of(other)))
        self.assertEqual(gone.taken, ["a3", "a2", "a1"])
        # four holders of 16 MiB each: nobody holds more than a newcomer would
        self.assertIsNone(budget.claim("e", 16 * MIB, "file", gone.of("e")))
        self.assertEqual((budget.held, budget.status()["holders"]), (64 * MIB, 4))
        # a smaller newcomer still gets in, from one of them
        self.assertIsNotNone(budget.claim("f", MIB, "file", gone.of("f")))
        self.assertEqual(len(gone.taken), 4)
        self.assertEqual(budget.status()["evicted"], {"file": 4})

    def test_claims_that_cannot_be_taken_back_are_not_and_stay_within_a_quarter_each(self) -> None:
        budget, gone = ReceiveBudget(16 * MIB), Evictions()
        self.assertIsNotNone(budget.claim("route:a", 4 * MIB, "relayed"))
        self.assertIsNone(budget.claim("route:a", 1, "relayed"))  # a quarter of the total, not more
        for holder in ("route:b", "route:c"):
            budget.claim(holder, 4 * MIB, "relayed")
        budget.claim("d", 2 * MIB, "unfinished_file", gone.of("d1"))
        budget.claim("d", 2 * MIB, "unfinished_file", gone.of("d2"))
        self.assertIsNone(budget.claim("e", 4 * MIB, "unfinished_file", gone.of("e")))
        self.assertEqual(gone.taken, [])  # nobody holds more than 4 MiB in what may be taken back
        # a claim that cannot be taken back may still take back an unfinished file of a larger holder
        self.assertIsNotNone(budget.claim("route:e", MIB, "relayed"))
        self.assertEqual(gone.taken, ["d2"])
        self.assertEqual(budget.status()["evicted"], {"unfinished_file": 1})
        self.assertEqual(budget.status()["refused"], {"relayed": 1, "unfinished_file": 1})

    def test_nothing_is_taken_back_when_it_would_not_be_enough(self) -> None:
        budget, gone = ReceiveBudget(12 * MIB), Evictions()
        budget.claim("a", 4 * MIB, "unfinished_file", gone.of("a"))
        budget.claim("route:b", 3 * MIB, "relayed")
        budget.claim("route:c", 3 * MIB, "relayed")
        budget.claim("d", 2 * MIB, "verifying", gone.of("d"))
        self.assertIsNone(budget.claim("e", 5 * MIB, "unfinished_file"))
        self.assertEqual((gone.taken, budget.held), ([], 12 * MIB))

    def test_room_claimed_by_an_eviction_is_not_given_twice(self) -> None:
        budget = ReceiveBudget(10 * MIB)
        # what a taken-back file sets off claims room itself (a gateway's waiting packet, say)
        budget.claim("a", 8 * MIB, "file", lambda: budget.claim("c", 8 * MIB, "verifying", lambda: None))
        self.assertIsNone(budget.claim("b", 5 * MIB, "file", lambda: None))
        self.assertEqual((budget.held, budget.held_by("c")), (8 * MIB, 8 * MIB))

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(1, 40), st.booleans(), st.integers(0, 9)),
                    max_size=60))
    def test_invariants_under_any_sequence(self, steps: list[tuple[str, int, bool, int]]) -> None:
        budget = ReceiveBudget(100)
        live: list[Tracked] = []
        for holder, size, evictable, release_at in steps:
            before = {h: budget.held_by(h) for h in "abcdef"}
            tracked = Tracked()
            tracked.claim = budget.claim(holder, size, "file" if evictable else "relayed",
                                         tracked.evict if evictable else None)
            for other in [t for t in live if t.evicted]:
                live.remove(other)
                assert other.claim is not None
                # taken back only from another holder, larger than the newcomer was to be
                self.assertNotEqual(other.claim.holder, holder)
                self.assertGreater(before[other.claim.holder], before[holder] + size)
                self.assertTrue(other.claim.released)
            if tracked.claim is not None:
                live.append(tracked)
            self.assertLessEqual(budget.held, budget.total)
            self.assertEqual(budget.held, sum(t.claim.size for t in live if t.claim is not None))
            if release_at < len(live) and release_at % 3 == 0:
                gone = live.pop(release_at).claim
                assert gone is not None
                gone.release()
        for tracked in live:
            assert tracked.claim is not None
            tracked.claim.release()
        self.assertEqual((budget.held, budget.status()["holders"]), (0, 0))
        self.assertFalse(any(t.evicted for t in live))


class Tracked:
    """A claim and whether the budget took it back (at most once)."""

    def __init__(self) -> None:
        self.claim: Claim | None = None
        self.evicted = False

    def evict(self) -> None:
        assert not self.evicted
        self.evicted = True
