"""The pages: which panels each shows, the forms that do not change live, and the document around them."""

from __future__ import annotations

import urllib.parse
from typing import Any

import attrs
from twisted.web.template import Tag, flattenString, tags

from bitdust_node.gui.logtail import LEVELS

# importing the panel modules registers their panels
from bitdust_node.gui.panels import files, logs, messages, network, overview, settings  # noqa: F401


@attrs.frozen
class Page:
    name: str
    title: str
    path: str
    panels: tuple[str, ...]
    # query arguments the page understands (anything else is ignored)
    args: tuple[str, ...] = ()
    live: bool = True


PAGES: tuple[Page, ...] = (
    Page("overview", "Overview", "/",
         ("alerts", "identity", "services", "dht", "connections", "routes", "space", "customers")),
    Page("files", "Files", "/gui/files", ("transfers", "files")),
    Page("messages", "Messages", "/gui/messages", ("correspondents", "conversation"), args=("with",)),
    Page("network", "Network", "/gui/network", ("addresses", "dht", "idservers", "suppliers")),
    # a form being typed in is never replaced under the user's hands
    Page("settings", "Settings", "/gui/settings", ("settings",), live=False),
    Page("logs", "Logs", "/gui/logs", ("logs",), args=("level",)),
)
BY_NAME = {page.name: page for page in PAGES}
BY_PATH = {page.path: page for page in PAGES} | {"/gui/overview": PAGES[0]}

STYLE = "/gui/static/style.css"
SCRIPT = "/gui/static/app.js"
ICON = "/gui/static/icon.svg"


def main_tag(*children: Any, **attributes: str) -> Tag:
    # twisted.web.template's `tags` knows no <main>; a Tag of that name is drawn all the same
    return Tag("main")(*children, **attributes)


def _head(title: str, csrf: str = "") -> Tag:
    parts: list[Tag] = [
        tags.meta(charset="utf-8"),
        tags.meta(name="viewport", content="width=device-width, initial-scale=1"),
        tags.title(f"{title} · bitdust-node"),
        tags.link(rel="stylesheet", href=STYLE),
        tags.link(rel="icon", href=ICON, type="image/svg+xml"),
    ]
    if csrf:
        parts += [tags.meta(name="csrf-token", content=csrf), tags.script(type="module", src=SCRIPT)]
    return tags.head(*parts)


def _nav(current: Page) -> Tag:
    items = []
    for page in PAGES:
        link = tags.a(page.title, href=page.path)
        if page is current:
            link.attributes["aria-current"] = "page"
        items.append(tags.li(link))
    return tags.nav(tags.ul(*items), **{"aria-label": "pages"})


def upload_form() -> Tag:
    return tags.form(
        tags.h2("Upload a file"),
        tags.div(tags.label("File", for_="upload-file"), tags.input(type="file", id="upload-file", name="file"),
                 class_="field"),
        tags.div(tags.label("Store as (folder/name)", for_="upload-remote"),
                 tags.input(type="text", id="upload-remote", name="remote", placeholder="the file's own name",
                            autocomplete="off"), class_="field"),
        tags.button("Upload", type="submit"),
        tags.progress(value="0", max="100", id="upload-progress", hidden="hidden",
                      **{"aria-label": "upload progress"}),
        tags.p("", id="upload-status", role="status"),
        id="upload", class_="card", novalidate="novalidate",
    )


def send_form(to: str) -> Tag:
    return tags.form(
        tags.h2("Send a message"),
        tags.div(tags.label("To", for_="send-to"),
                 tags.input(type="text", id="send-to", name="to", value=to, autocomplete="off",
                            placeholder="nickname, global id or IDURL"), class_="field"),
        tags.div(tags.label("Message", for_="send-text"),
                 tags.input(type="text", id="send-text", name="text", autocomplete="off"), class_="field"),
        tags.button("Send", type="submit"),
        tags.p("", id="send-status", role="status"),
        id="send", class_="card", novalidate="novalidate",
    )


def level_form(level: str) -> Tag:
    options = []
    for name in LEVELS:
        option = tags.option(name, value=name)
        if name == level:
            option.attributes["selected"] = "selected"
        options.append(option)
    return tags.form(tags.label("Lowest level shown", for_="level"), tags.select(*options, id="level", name="level"),
                     tags.button("Show", type="submit"), method="get", action="/gui/logs", class_="inline")


def forms_of(page: Page, args: dict[str, str]) -> tuple[list[Tag], list[Tag]]:
    """Forms drawn before and after the page's panels."""
    if page.name == "files":
        return [upload_form()], []
    if page.name == "messages":
        return [], [send_form(args.get("with", ""))]
    if page.name == "logs":
        return [level_form(args.get("level", "info"))], []
    return [], []


async def document(page: Page, panels: dict[str, str], csrf: str, view_id: str, args: dict[str, str],
                   who: str) -> bytes:
    """The whole page; `panels` are already drawn (escaped) HTML, placed as they are."""
    before, after = forms_of(page, args)
    marker = "<!--panels-->"
    body = tags.body(
        tags.a("Skip to content", href="#main", class_="skip"),
        tags.header(
            tags.span("bitdust-node", class_="brand"), tags.span(who, class_="who"), _nav(page),
            tags.button("Log out", type="button", id="logout"),
        ),
        tags.p("", id="live", role="status", class_="muted"),
        main_tag(tags.h1(page.title), *before, marker, *after, id="main"),
        **{"data-page": page.name, "data-view": view_id if page.live else "",
           "data-args": urllib.parse.urlencode(sorted(args.items()))},
    )
    text = (await flattenString(None, tags.html(_head(page.title, csrf), body, lang="en"))).decode("utf-8")
    # the marker was escaped as text; the panels' HTML goes in its place
    text = text.replace("&lt;!--panels--&gt;", "\n".join(panels[name] for name in page.panels), 1)
    return b"<!DOCTYPE html>\n" + text.encode("utf-8")


async def plain_page(title: str, *content: Tag) -> bytes:
    """A page that shows nothing of the node: the anonymous page, an expired link."""
    body = tags.body(main_tag(tags.h1(title), *content, id="main"))
    text = (await flattenString(None, tags.html(_head(title), body, lang="en"))).decode("utf-8")
    return b"<!DOCTYPE html>\n" + text.encode("utf-8")
