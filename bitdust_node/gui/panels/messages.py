"""Messages: my correspondents, newest conversation first, and the conversation with the one chosen."""

from __future__ import annotations

import urllib.parse
from typing import Any

from twisted.web.template import Tag, tags

from bitdust_node.gui.panels.base import Content, View, note, panel, short_id, unavailable, when

# the newest messages read to list the correspondents
SCAN = 1000
SHOWN = 200


def peer_of(doc: dict[str, Any]) -> str:
    return short_id(doc["sender"] if doc.get("dir") == "incoming" else doc["recipient"])


def text_of(doc: dict[str, Any]) -> str:
    data = doc.get("data") or {}
    message = data.get("message") if isinstance(data, dict) else None
    return message if isinstance(message, str) else str(data)


@panel("correspondents", "Correspondents")
async def correspondents(view: View) -> Content:
    answer = await view.get("/message/history/v1", limit=str(SCAN))
    if not answer.ok:
        return unavailable(answer, "messages")
    last: dict[str, dict[str, Any]] = {}
    for item in answer.result:
        last[peer_of(item["doc"])] = item["doc"]
    if not last:
        return note("No message yet.")
    chosen = view.args.get("with", "")
    items: list[Tag] = []
    for peer, doc in sorted(last.items(), key=lambda p: -p[1]["time"]):
        link = tags.a(peer, href="/gui/messages?" + urllib.parse.urlencode({"with": peer}))
        if peer == chosen:
            link.attributes["aria-current"] = "true"
        items.append(tags.li(link, " ", tags.span(when(doc["time"]), class_="muted")))
    return tags.ul(*items, class_="correspondents")


@panel("conversation", "Conversation")
async def conversation(view: View) -> Content:
    peer = view.args.get("with", "")
    if not peer:
        return note("Choose a correspondent, or write to someone below.")
    answer = await view.get("/message/history/v1", id=peer, limit=str(SHOWN))
    if not answer.ok:
        return unavailable(answer, f"messages with {peer}")
    if not answer.result:
        return note(f"No message with {peer} yet.")
    lines: list[Tag] = []
    for item in answer.result:
        doc = item["doc"]
        incoming = doc.get("dir") == "incoming"
        lines.append(tags.li(tags.span(when(doc["time"]), class_="muted"), " ",
                             tags.strong(peer if incoming else "me"), ": ", tags.span(text_of(doc), class_="text"),
                             class_="incoming" if incoming else "outgoing"))
    return tags.ol(*lines, class_="conversation", **{"aria-live": "polite", "aria-label": f"messages with {peer}"})
