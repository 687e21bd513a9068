"""Waiting on several calls without waiting out the stalled ones."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.dht.patience import Patience
from bitdust_node.dht.settle import answered, settle


class SettleTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.calls: list[defer.Deferred[Any]] = [defer.Deferred() for _ in range(3)]
        self.done = settle(self.calls, Patience(self.clock, 1.0))

    def test_every_call_answered_before_the_stall_time(self) -> None:
        self.calls[0].callback("a")
        self.calls[1].errback(RuntimeError("refused"))
        self.assertNoResult(self.done)
        self.calls[2].callback("c")
        outcomes = self.successResultOf(self.done)
        self.assertEqual(answered(["x", "y", "z"], outcomes), [("x", "a"), ("z", "c")])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_the_stalled_are_left_open_once_one_has_answered(self) -> None:
        self.calls[1].callback("b")
        self.clock.advance(0.99)
        self.assertNoResult(self.done)
        self.clock.advance(0.01)
        outcomes = self.successResultOf(self.done)
        self.assertEqual((outcomes[0], outcomes[2]), (None, None))
        self.assertEqual(answered(["x", "y", "z"], outcomes), [("y", "b")])
        # late outcomes change nothing, and a late failure is not left unhandled
        self.calls[0].callback("late")
        self.calls[2].errback(RuntimeError("timed out"))
        self.assertEqual(outcomes[0], None)

    def test_with_nothing_answered_the_first_answer_after_the_stall_time_ends_it(self) -> None:
        self.calls[0].errback(RuntimeError("refused"))
        self.clock.advance(5.0)
        self.assertNoResult(self.done)
        self.calls[2].callback("c")
        self.assertEqual(answered(["x", "y", "z"], self.successResultOf(self.done)), [("z", "c")])
        self.calls[1].errback(RuntimeError("timed out"))

    def test_all_failed(self) -> None:
        self.clock.advance(5.0)
        for call in self.calls:
            call.errback(RuntimeError("timed out"))
        self.assertEqual(answered(["x", "y", "z"], self.successResultOf(self.done)), [])

    def test_nothing_to_wait_for(self) -> None:
        self.assertEqual(self.successResultOf(settle([], Patience(self.clock, 1.0))), [])
        self.assertEqual(self.successResultOf(settle([defer.succeed(1)], None)), [(True, 1)])

    def test_without_patience_every_call_is_waited_for(self) -> None:
        calls: list[defer.Deferred[Any]] = [defer.Deferred(), defer.Deferred()]
        done = settle(calls, None)
        calls[0].callback("a")
        self.clock.advance(60)
        self.assertNoResult(done)
        calls[1].errback(RuntimeError("timed out"))
        self.assertEqual(answered([0, 1], self.successResultOf(done)), [(0, "a")])
