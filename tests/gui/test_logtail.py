"""The Logs page's tail: bounded, at the node's level, formatted when it arrives, filtered by level."""

from __future__ import annotations

import gc

from twisted.logger import Logger, LogLevel, LogPublisher
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.gui.logtail import MAX_LINES, MAX_TEXT, LogTail


class LogTailTests(SynchronousTestCase):
    def test_lines_are_kept_bounded_and_at_the_nodes_level(self) -> None:
        lowest = [LogLevel.info]
        tail = LogTail(lambda: lowest[0])
        publisher = LogPublisher()
        tail.watch(publisher)
        log = Logger(namespace="test", observer=publisher)
        log.debug("not kept at info")
        for number in range(MAX_LINES + 5):
            log.info("line {n}", n=number)
        log.warn("{big}", big="x" * (MAX_TEXT * 2))
        self.assertEqual(len(tail.lines), MAX_LINES)
        self.assertEqual(tail.lines[0].text, "line 6")
        self.assertEqual(len(tail.lines[-1].text), MAX_TEXT)
        self.assertEqual([line.level for line in tail.tail("warn")], ["warn"])
        lowest[0] = LogLevel.debug
        log.debug("kept at debug")
        self.assertEqual(tail.tail("debug", 1)[0].text, "kept at debug")
        self.assertEqual(tail.tail("info", 1)[0].level, "warn")
        self.assertEqual(tail.tail("nonsense", 1)[0].level, "warn", "an unknown level reads as info")

    def test_a_tail_that_goes_stops_observing(self) -> None:
        publisher = LogPublisher()
        LogTail(lambda: LogLevel.info).watch(publisher)
        gc.collect()
        self.assertEqual(publisher._observers, [])
