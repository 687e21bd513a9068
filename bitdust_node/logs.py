"""The node's log: one line per event, text or JSON, to stdout (the journal) or a size-rotated file.

The level follows `logs/debug-level` while the node runs (0: info and above; 1 or more: debug
too, BitDust's levels 1-18 all meaning "more"). A burst of lines with the same format (a peer
flooding bad input, each refusal one line) is cut to a few per second, and how many were left
out is said in the next line of that kind that is written.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

import attrs
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    formatEventAsClassicLogText,
    formatTime,
)
from twisted.python.logfile import LogFile
from zope.interface import implementer

from bitdust_node.home import LOG_DIR, LOG_FILE
from bitdust_node.settings import Settings
from bitdust_node.sizes import size_to_bytes

PREFIX = "logs/"
# a flooding peer gets this many lines of one kind at once, then this many per second
BURST = 20
PER_SECOND = 5.0
# systemd's journal stamps each line itself
JOURNAL = "JOURNAL_STREAM"


def level_for(debug_level: int) -> LogLevel:
    return LogLevel.debug if debug_level > 0 else LogLevel.info


@implementer(ILogObserver)
@attrs.define
class FloodGuard:
    """Lets through at most BURST events of one format at once and PER_SECOND after that."""

    sink: Any
    burst: int = BURST
    per_second: float = PER_SECOND
    # format -> (tokens left, time of the last refill, events left out since the last written one)
    _buckets: dict[str, tuple[float, float, int]] = attrs.field(factory=dict)

    def __call__(self, event: dict[str, Any]) -> None:
        key = str(event.get("log_format"))
        now = float(event.get("log_time") or time.time())
        tokens, last, skipped = self._buckets.get(key, (float(self.burst), now, 0))
        tokens = min(float(self.burst), tokens + (now - last) * self.per_second)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now, skipped + 1)
            return
        self._buckets[key] = (tokens - 1.0, now, 0)
        if len(self._buckets) > 10_000:
            self._buckets.clear()  # formats are few; this bound only guards against a leak
        if skipped:
            event = dict(event, log_skipped=skipped)
        self.sink(event)


# what twisted.python.log adds to an old-style event, already in "text"
_LEGACY_KEYS = {"format", "message", "isError", "system"}


def _json_value(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def json_line(event: dict[str, Any]) -> str:
    """One JSON object per line: time, level, namespace, the formatted text and the event's fields."""
    level = event.get("log_level")
    record: dict[str, Any] = {
        "time": round(float(event.get("log_time") or 0.0), 6),
        "level": getattr(level, "name", "info"),
        "namespace": event.get("log_namespace", ""),
        "text": formatEvent(event),
    }
    for key, value in event.items():
        if not key.startswith("log_") and key not in record and key not in _LEGACY_KEYS:
            record[key] = _json_value(value)
    if event.get("log_skipped"):
        record["skipped_before"] = event["log_skipped"]
    failure = event.get("log_failure")
    if failure is not None:
        record["traceback"] = failure.getTraceback()
    return json.dumps(record, ensure_ascii=False) + "\n"


def text_line(event: dict[str, Any], stamped: bool = True) -> str:
    """Twisted's classic line (time [namespace] text); without the time where the journal adds it."""
    if event.get("log_skipped"):
        event = dict(event, log_format=str(event.get("log_format")) + " ({log_skipped} similar lines left out)")
    if stamped:
        line = formatEventAsClassicLogText(event, formatTime=lambda t: formatTime(t, "%Y-%m-%d %H:%M:%S%z"))
    else:
        line = (formatEventAsClassicLogText(event, formatTime=lambda t: "") or "").lstrip()
    return line or ""


@implementer(ILogObserver)
@attrs.define
class LineWriter:
    out: IO[str]
    as_json: bool = False
    stamped: bool = True

    def __call__(self, event: dict[str, Any]) -> None:
        line = json_line(event) if self.as_json else text_line(event, self.stamped)
        if line:
            self.out.write(line)
            self.out.flush()


@implementer(ILogObserver)
@attrs.define
class NodeLog:
    """The observer twistd installs: level filter, then flood guard, then the line writer."""

    writer: LineWriter
    predicate: LogLevelFilterPredicate = attrs.field(factory=lambda: LogLevelFilterPredicate(LogLevel.info))
    _filtered: Any = None

    def __attrs_post_init__(self) -> None:
        guard: Any = FloodGuard(self.writer)  # zope interfaces do not type-check as protocols
        predicate: Any = self.predicate
        self._filtered = FilteringLogObserver(guard, [predicate])

    def apply(self, settings: Settings) -> None:
        self.predicate.setLogLevelForNamespace("", level_for(int(settings.get(PREFIX + "debug-level"))))
        self.writer.as_json = settings.get(PREFIX + "format") == "json"

    def __call__(self, event: dict[str, Any]) -> None:
        self._filtered(event)


def rotated_file(home: Path, settings: Settings) -> LogFile:
    folder = home / LOG_DIR
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return LogFile(
        LOG_FILE,
        str(folder),
        rotateLength=size_to_bytes(str(settings.get(PREFIX + "max-size"))),
        maxRotatedFiles=int(settings.get(PREFIX + "max-files")),
        defaultMode=0o600,
    )


# the observer of this process, so that a running node can change its level (logs/ settings)
_current: list[NodeLog] = []
# the home and foreground of the node this process runs, for twistd's --logger (tap.use_node_log)
_prepared: list[tuple[Path, bool]] = []
# what twistd's --logger names: a factory it calls with no arguments
NODE_OBSERVER = f"{__name__}.node_observer"


def observer_for(home: Path, to_stdout: bool) -> NodeLog:
    """twistd's logger factory: stdout in the foreground (the journal under systemd), else the file."""
    settings = Settings.load(home)
    out: IO[str] = sys.stdout if to_stdout else rotated_file(home, settings)  # type: ignore[assignment]
    node_log = NodeLog(LineWriter(out, stamped=not (to_stdout and os.environ.get(JOURNAL))))
    node_log.apply(settings)
    _current[:] = [node_log]
    return node_log


def prepare(home: Path, to_stdout: bool) -> None:
    """Say whose log node_observer() makes: the node's home, in the foreground or not."""
    _prepared[:] = [(home, to_stdout)]


def node_observer() -> NodeLog:
    """twistd's logger factory for a node: observer_for the home and foreground given to prepare()."""
    home, to_stdout = _prepared[-1]
    return observer_for(home, to_stdout)


def follow(settings: Settings) -> None:
    """Apply later changes of logs/ settings to this process's log, if the node's logger runs it."""
    for node_log in _current:

        def changed(key: str, old: Any, new: Any, node_log: NodeLog = node_log) -> None:
            node_log.apply(settings)

        settings.subscribe(PREFIX, changed)
