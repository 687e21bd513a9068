"""What a panel is, what it is handed (View), and the small pieces every panel draws with.

Everything goes through twisted.web.template's tags, which escape every value: a nickname or a file
name with markup in it is shown, never run.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import attrs
from twisted.web.template import Tag, flattenString, tags

from bitdust_node.gui.endpoints import Answer, Endpoints
from bitdust_node.gui.logtail import LogTail
from bitdust_node.gui.probes import ServerProbes

Content = Tag | str | list[Any]


@attrs.define
class View:
    """One rendering of a page for one browser: its query arguments and a cache of endpoint answers."""

    endpoints: Endpoints
    args: dict[str, str]
    tail: LogTail
    probes: ServerProbes
    _answers: dict[tuple[str, tuple[tuple[str, str], ...]], Answer] = attrs.field(factory=dict)

    async def get(self, path: str, **args: str) -> Answer:
        key = (path, tuple(sorted(args.items())))
        if key not in self._answers:
            self._answers[key] = await self.endpoints.get(path, **args)
        return self._answers[key]


@attrs.frozen
class Panel:
    name: str
    title: str
    render: Callable[[View], Awaitable[Content]]


PANELS: dict[str, Panel] = {}


def panel(name: str, title: str) -> Callable[[Callable[[View], Awaitable[Content]]], Panel]:
    def register(render: Callable[[View], Awaitable[Content]]) -> Panel:
        PANELS[name] = Panel(name, title, render)
        return PANELS[name]

    return register


async def section(found: Panel, view: View) -> Tag:
    """The panel as the page holds it: a labelled section whose id the live updates replace."""
    body = await found.render(view)
    return tags.section(tags.h2(found.title, id=f"h-{found.name}"), body,
                        id=f"panel-{found.name}", class_="panel", **{"aria-labelledby": f"h-{found.name}"})


async def html(tag: Content) -> str:
    return (await flattenString(None, tag)).decode("utf-8")


# -- small pieces


def note(text: Content, kind: str = "muted") -> Tag:
    return tags.p(text, class_=kind)


def unavailable(answer: Answer, what: str) -> Tag:
    """Why a part is empty: the endpoint's own error (a service that is not ON says so)."""
    return note(f"{what}: {answer.error}")


def facts(rows: Iterable[tuple[str, Any]]) -> Tag:
    items: list[Tag] = []
    for label, value in rows:
        if value is None or value == "":
            continue
        items += [tags.dt(label), tags.dd(value if isinstance(value, Tag) else str(value))]
    return tags.dl(*items, class_="facts")


def table(caption: str, headers: list[str], rows: list[list[Content]], empty: str = "none") -> Tag:
    if not rows:
        return note(f"{caption}: {empty}")
    head = tags.tr(*[tags.th(h, scope="col") for h in headers])
    body = [tags.tr(*[tags.td(cell if isinstance(cell, (Tag, list)) else str(cell)) for cell in row]) for row in rows]
    return tags.div(tags.table(tags.caption(caption), tags.thead(head), tags.tbody(*body)), class_="scroll")


def state_badge(state: str) -> Tag:
    kind = {"ON": "good", "CONNECTED": "good", "LISTEN": "good", "done": "good", "answers": "good", "OFF": "muted",
            "failed": "bad", "OFFLINE": "bad", "silent": "bad", "stopped": "muted"}.get(state, "warn")
    return tags.span(state, class_=f"badge {kind}")


def size(value: Any) -> str:
    """Bytes for a person: 1.5 MiB."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(number) < 1024 or unit == "TiB":
            return f"{number:.0f} {unit}" if unit == "bytes" else f"{number:.1f} {unit}"
        number /= 1024
    return str(value)


def when(seconds: Any) -> str:
    try:
        stamp = float(seconds)
    except (TypeError, ValueError):
        return str(seconds)
    if stamp <= 0:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def short_id(value: str) -> str:
    """A global id or IDURL without the `master$` prefix."""
    return value.split("$", 1)[-1]


def extra_fields(row: dict[str, Any], shown: Iterable[str]) -> list[tuple[str, Any]]:
    """Scalar fields of an answer that no column shows (another part of the node may add some)."""
    skip = set(shown)
    found: list[tuple[str, Any]] = []
    for key, value in sorted(row.items()):
        if key in skip:
            continue
        # one level of nesting is flattened ({"health": {"ok": 3}} -> "health ok: 3")
        inner = sorted(value.items()) if isinstance(value, dict) else [("", value)]
        for sub, item in inner:
            if isinstance(item, (str, int, float, bool)) and item != "":
                found.append((f"{key} {sub}".strip().replace("_", " "), item))
    return found
