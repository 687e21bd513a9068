"""Logs: the newest lines of the node's log, from a chosen level up."""

from __future__ import annotations

from twisted.web.template import tags

from bitdust_node.gui.logtail import LEVELS
from bitdust_node.gui.panels.base import Content, View, note, panel, when

SHOWN = 300


def chosen_level(view: View) -> str:
    level = view.args.get("level", "info")
    return level if level in LEVELS else "info"


@panel("logs", "Log, newest first")
async def logs(view: View) -> Content:
    level = chosen_level(view)
    lines = view.tail.tail(level, SHOWN)
    if not lines:
        return note(f"No {level} line or above since the node started.")
    rows = [tags.li(tags.span(when(line.time), class_="muted"), " ",
                    tags.span(line.level, class_=f"level {line.level}"), " ",
                    tags.span(line.namespace, class_="muted"), " ", line.text) for line in reversed(lines)]
    return tags.ol(*rows, class_="log", **{"aria-label": f"log lines, {level} and above, newest first"})
