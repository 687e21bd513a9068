"""The Logs page's tail: the node's last log lines, kept in memory as text while the node runs.

An observer on the global log publisher keeps the newest MAX_LINES events at or above the node's log
level, each already formatted and cut to MAX_TEXT characters, so a burst of events holds a bounded
amount of memory and no reference to the objects an event named.
"""

from __future__ import annotations

import collections
import weakref
from collections.abc import Callable
from typing import Any

import attrs
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

MAX_LINES = 1000
MAX_TEXT = 2000
LEVELS = ("debug", "info", "warn", "error", "critical")


@attrs.frozen
class LogLine:
    number: int
    time: float
    level: str
    namespace: str
    text: str


@attrs.define(eq=False)
class LogTail:
    # the lowest level kept, asked for at each event (logs/debug-level may change live)
    lowest: Callable[[], LogLevel]
    lines: collections.deque[LogLine] = attrs.field(factory=lambda: collections.deque(maxlen=MAX_LINES))
    seen: int = 0

    def __call__(self, event: dict[str, Any]) -> None:
        level = event.get("log_level")
        if not isinstance(level, type(LogLevel.info)) or level < self.lowest():
            return
        self.seen += 1
        try:
            text = formatEvent(event)
        except Exception:  # formatEvent already guards; a broken __repr__ in an event must not stop logging
            text = str(event.get("log_format", ""))
        self.lines.append(LogLine(self.seen, float(event.get("log_time") or 0.0), level.name,
                                  str(event.get("log_namespace", "")), text[:MAX_TEXT]))

    def tail(self, least: str = "info", count: int = 200) -> list[LogLine]:
        """The newest `count` lines at `least` or above, oldest first."""
        floor = LogLevel.levelWithName(least) if least in LEVELS else LogLevel.info
        found = [line for line in self.lines if LogLevel.levelWithName(line.level) >= floor]
        return found[-count:]

    def watch(self, publisher: Any = globalLogPublisher) -> None:
        """Observe `publisher` for as long as this tail lives (the observer holds it weakly)."""
        ref = weakref.ref(self)

        def observer(event: dict[str, Any]) -> None:
            tail = ref()
            if tail is not None:
                tail(event)

        publisher.addObserver(observer)
        # removed when the tail goes, not while the publisher walks its observers
        weakref.finalize(self, publisher.removeObserver, observer)
