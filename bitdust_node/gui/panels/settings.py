"""Settings: every setting with an input fit for its type; a value the node refuses is said beside it."""

from __future__ import annotations

import re
from typing import Any

from twisted.web.template import Tag, tags

from bitdust_node.gui.panels.base import Content, View, panel, unavailable

NUMBER_TYPES = ("port number", "positive integer", "non zero positive integer", "integer")


def field_id(key: str) -> str:
    return "s-" + re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")


def shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def setting_input(entry: dict[str, Any], ident: str) -> Tag:
    common: dict[str, Any] = {"id": ident, "name": "value", "aria-describedby": f"{ident}-help {ident}-error"}
    if entry.get("readonly"):
        common["disabled"] = "disabled"
    value = entry["value"]
    if entry["type"] == "boolean":
        box = tags.input(type="checkbox", **common)
        if value:
            box.attributes["checked"] = "checked"
        return box
    if entry.get("possible_values"):
        options = []
        for choice in entry["possible_values"]:
            option = tags.option(shown(choice), value=shown(choice))
            if shown(choice) == shown(value):
                option.attributes["selected"] = "selected"
            options.append(option)
        return tags.select(*options, **common)
    if entry["type"] in NUMBER_TYPES:
        common["inputmode"] = "numeric"
    return tags.input(type="text", value=shown(value), **common)


def setting_form(entry: dict[str, Any]) -> Tag:
    key = entry["key"]
    ident = field_id(key)
    hint = [entry["type"]]
    if "min" in entry or "max" in entry:
        hint.append(f"{entry.get('min', '')} to {entry.get('max', '')}")
    hint.append(f"default {shown(entry['default']) or '(empty)'}")
    if entry.get("needs_restart"):
        hint.append("applied at the next start")
    return tags.form(
        tags.label(tags.code(key), tags.span(entry.get("label", ""), class_="muted"), for_=ident),
        setting_input(entry, ident),
        tags.button("Apply", type="submit"),
        tags.p("; ".join(hint), id=f"{ident}-help", class_="muted hint"),
        tags.p("", id=f"{ident}-error", class_="error", role="alert", hidden="hidden"),
        class_="setting", novalidate="novalidate", **{"data-key": key, "data-type": entry["type"]},
    )


@panel("settings", "Every setting")
async def settings(view: View) -> Content:
    answer = await view.get("/config/list/v1")
    if not answer.ok:
        return unavailable(answer, "settings")
    return tags.div(*[setting_form(entry) for entry in answer.result], class_="settings")
