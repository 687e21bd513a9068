"""Files: the tree of stored files with their versions and health, and transfers with their progress."""

from __future__ import annotations

from typing import Any

from twisted.web.template import Tag, tags

from bitdust_node.gui.panels.base import Content, View, note, panel, size, state_badge, table, unavailable

# deeper folders are drawn at this indentation
MAX_DEPTH_CLASS = 8


def health_cell(row: dict[str, Any]) -> Content:
    health = row.get("health")
    if not isinstance(health, dict) or not health.get("total"):
        return tags.span("not checked", class_="muted")
    ok, total = health.get("ok", 0), health["total"]
    return tags.span(f"{ok}/{total}", class_=f"badge {'good' if ok >= total else 'bad'}",
                     title=f"{ok} of {total} shares of the weakest block were healthy at the last check")


def versions_cell(row: dict[str, Any]) -> Content:
    versions = row.get("versions") or []
    if not versions:
        return ""
    items = [tags.li(v["backup_id"].rsplit("/", 1)[-1], " ", size(v.get("size")),
                     "" if v.get("complete") else " (incomplete)") for v in versions]
    return tags.details(tags.summary(f"{len(versions)} version{'s' if len(versions) != 1 else ''}"), tags.ul(*items))


def actions_cell(row: dict[str, Any]) -> Tag:
    path = row["path"]
    buttons: list[Tag] = []
    if row.get("type") == "file":
        buttons.append(tags.button("Download", type="button", class_="download", **{
            "data-path": path, "aria-label": f"download {path}"}))
    buttons.append(tags.button("Delete", type="button", class_="delete danger", **{
        "data-path": path, "aria-label": f"delete {path}"}))
    return tags.span(*buttons, class_="actions")


@panel("files", "Stored files")
async def files(view: View) -> Content:
    answer = await view.get("/file/list/v1")
    if not answer.ok:
        return unavailable(answer, "files")
    rows: list[list[Content]] = []
    for row in answer.result:
        depth = min(row["path"].count("/"), MAX_DEPTH_CLASS)
        folder = "/" if row.get("type") == "dir" else ""
        name = tags.span(row["name"], folder, class_=f"depth-{depth}", title=row["path"])
        rows.append([name, size(row.get("size")) if row.get("type") == "file" else "", versions_cell(row),
                     health_cell(row), row.get("latest", ""), actions_cell(row)])
    headers = ["name", "size", "versions", "health", "latest", "actions"]
    return table("Files and folders stored on my suppliers", headers, rows, empty="nothing stored yet")


@panel("transfers", "Transfers")
async def transfers(view: View) -> Content:
    rows: list[list[Content]] = []
    for kind, path in (("upload", "/file/upload/v1"), ("download", "/file/download/v1")):
        answer = await view.get(path)
        if not answer.ok:
            return unavailable(answer, "transfers")
        for t in sorted(answer.result, key=lambda t: -float(t.get("started") or 0))[:20]:
            percent = float(t.get("percent") or 0)
            path = t.get("remote_path", "")
            rows.append([kind, path, state_badge(t.get("state", "")),
                         tags.progress(value=f"{percent:.0f}", max="100", **{"aria-label": f"{kind} of {path}"}),
                         f"{percent:.0f}%", t.get("error", ""), stop_cell(kind, path, t.get("state", ""))])
    if not rows:
        return note("No transfer since the node started.")
    return table("Uploads and downloads, newest first", ["kind", "file", "state", "progress", "", "error", ""],
                 rows)


def stop_cell(kind: str, path: str, state: str) -> Content:
    if state != "running":
        return ""
    return tags.button("Stop", type="button", class_="stop danger", **{
        "data-path": path, "data-kind": kind, "aria-label": f"stop the {kind} of {path}"})
