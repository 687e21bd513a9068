"""A node process's heap: start-up objects are frozen for the collector once the reactor runs."""

from __future__ import annotations

import gc
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node import heap


class _Reactor:
    def __init__(self) -> None:
        self.when_running: list[Any] = []

    def callWhenRunning(self, f: Any) -> None:
        self.when_running.append(f)


class TuneTests(SynchronousTestCase):
    def tearDown(self) -> None:
        gc.unfreeze()

    def test_start_up_objects_are_frozen_once_running_not_before(self) -> None:
        reactor = _Reactor()
        gc.unfreeze()
        heap.tune_node_process(reactor)
        self.assertEqual(gc.get_freeze_count(), 0)  # nothing frozen while the services are still starting
        self.assertEqual(reactor.when_running, [heap.freeze_startup_objects])
        reactor.when_running[0]()
        self.assertGreater(gc.get_freeze_count(), 1000)  # modules, classes, functions


class ReleaseWhenIdleTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.released: list[float] = []
        self.heap = heap.ReleaseWhenIdle(self.clock, defer.maybeDeferred, delay=2.0,
                                         release=lambda: self.released.append(self.clock.seconds()) or True)

    def test_given_back_once_no_transfer_ran_for_the_delay(self) -> None:
        self.heap.started()
        self.heap.started()
        self.heap.ended()
        self.clock.advance(5)
        self.assertEqual(self.released, [])  # one still runs
        self.heap.ended()
        self.clock.advance(1.9)
        self.assertEqual(self.released, [])
        self.clock.advance(0.1)
        self.assertEqual(self.released, [7.0])
        self.clock.advance(60)
        self.assertEqual(self.released, [7.0])  # once a quiet spell, not at an interval

    def test_a_transfer_within_the_delay_keeps_the_heap_for_itself(self) -> None:
        self.heap.started()
        self.heap.ended()
        self.clock.advance(1)
        self.heap.started()  # back to back: it reuses what the one before freed
        self.clock.advance(3)
        self.heap.ended()
        self.clock.advance(2)
        self.assertEqual(self.released, [6.0])

    def test_stopped_nothing_is_left_waiting(self) -> None:
        self.heap.started()
        self.heap.ended()
        self.heap.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_transfer_ending_after_the_stop_leaves_nothing_waiting(self) -> None:
        self.heap.started()
        self.heap.stop()
        self.heap.ended()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_failed_release_is_logged_not_raised(self) -> None:
        failing = heap.ReleaseWhenIdle(self.clock, defer.maybeDeferred, release=lambda: 1 / 0)
        failing.started()
        failing.ended()
        with capturedLogs() as events:
            self.clock.advance(heap.RELEASE_WHEN_IDLE_AFTER)
        self.assertEqual([formatEvent(e) for e in events], ["heap not given back: division by zero"])
