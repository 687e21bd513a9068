"""A node process's heap: start-up objects are frozen for the collector once the reactor runs."""

from __future__ import annotations

import gc
from typing import Any

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
