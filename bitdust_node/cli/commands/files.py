"""`bitdust file upload|download|stop|list|delete`: the customer's storage from the shell, with a progress bar
on a terminal and plain lines when piped."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from bitdust_node.cli.context import CliContext, CliError

POLL = 0.5
BAR = 30


def _show(transfer: dict[str, Any], tty: bool, last: list[float]) -> None:
    done, total = transfer["done"], transfer["total"]
    percent = transfer["percent"]
    if tty:
        filled = int(BAR * percent / 100)
        sys.stdout.write(f"\r[{'#' * filled}{'.' * (BAR - filled)}] {percent:5.1f}% {done}/{total} bytes")
        sys.stdout.flush()
    elif not last or percent - last[0] >= 10 or percent >= 100:
        print(f"{transfer['kind']} {transfer['remote_path']}: {percent:.0f}% ({done} of {total} bytes)", flush=True)
        last[:] = [percent]


def _follow(ctx: CliContext, kind: str, remote: str) -> dict[str, Any]:
    """Poll the node's list of transfers until this one ends; the last state of it."""
    tty = sys.stdout.isatty()
    last: list[float] = []
    try:
        while True:
            rows = [t for t in ctx.api("GET", f"/file/{kind}/v1") if t["remote_path"] == remote]
            transfer = rows[-1]
            _show(transfer, tty, last)
            if transfer["state"] != "running":
                if tty:
                    print()
                return transfer
            time.sleep(POLL)
    except KeyboardInterrupt:
        # the node does the work: leaving the progress bar leaves it going
        print(f"\nthe {kind} of {remote} goes on in the node; `bitdust file stop {remote}` stops it",
              file=sys.stderr)
        raise


def _ended(transfer: dict[str, Any]) -> str:
    return "stopped" if transfer["state"] == "stopped" else f"failed: {transfer['error']}"


def cmd_upload(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.require_running()
    local = str(Path(args.local).expanduser().resolve())
    body = {"local_path": local, "remote_path": args.remote or Path(local).name}
    started = ctx.api("POST", "/file/upload/start/v1", body=body)
    remote = started["remote_path"].split(":", 1)[1]
    transfer = _follow(ctx, "upload", remote)
    if transfer["state"] != "done":
        print(f"upload of {remote} {_ended(transfer)}", file=sys.stderr)
        return 1
    print(f"{local} stored as {remote}")
    return 0


def cmd_download(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.require_running()
    destination = str(Path(args.destination).expanduser().resolve())
    started = ctx.api("POST", "/file/download/start/v1",
                      body={"remote_path": args.remote, "destination_folder": destination})
    transfer = _follow(ctx, "download", started["remote_path"])
    if transfer["state"] != "done":
        print(f"download of {args.remote} {_ended(transfer)}", file=sys.stderr)
        return 1
    print(f"{args.remote} restored into {destination}")
    return 0


def cmd_stop(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.require_running()
    stopped = []
    for kind in ("upload", "download"):
        try:
            if ctx.api("POST", f"/file/{kind}/stop/v1", body={"remote_path": args.remote}):
                stopped.append(kind)
        except CliError as err:
            if err.http_status != 404:  # 404: not in the catalog, and none of this kind runs
                raise
    if not stopped:
        print(f"no upload or download of {args.remote} is running", file=sys.stderr)
        return 1
    for kind in stopped:
        print(f"{kind} of {args.remote} stopped")
    return 0


def cmd_list(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.require_running()
    for row in ctx.api("GET", "/file/list/v1"):
        kind = "d" if row["type"] == "dir" else "-"
        health = row.get("health") or {}
        # healthy shares of the weakest block at the last check, of the shares each block has
        shares = f"{health.get('ok', 0)}/{health.get('total', 0)}" if health.get("total") else "-"
        print(f"{kind} {row['size']:>12} {row['latest'] or '-':19} {shares:>5} {row['path']}")
    return 0


def cmd_delete(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.require_running()
    result = ctx.api("DELETE", "/file/delete/v1", body={"remote_path": args.remote})
    print(f"{args.remote} deleted ({result['deleted']} catalog items)")
    return 0


def register(subparsers: Any) -> None:
    files = subparsers.add_parser("file", help="store files on suppliers and bring them back")
    actions = files.add_subparsers(dest="file_command", metavar="ACTION")
    upload = actions.add_parser("upload", help="store LOCAL (a file or a folder) as REMOTE")
    upload.add_argument("local")
    upload.add_argument("remote", nargs="?", help="the remote path (default: the local name)")
    upload.set_defaults(func=cmd_upload)
    download = actions.add_parser("download", help="bring REMOTE back into DEST")
    download.add_argument("remote")
    download.add_argument("destination", nargs="?", default=".", help="a folder (default: here)")
    download.set_defaults(func=cmd_download)
    stop = actions.add_parser("stop", help="stop the upload and download of REMOTE (a folder's files too)")
    stop.add_argument("remote")
    stop.set_defaults(func=cmd_stop)
    listing = actions.add_parser("list", help="stored files and folders")
    listing.set_defaults(func=cmd_list)
    delete = actions.add_parser("delete", help="forget REMOTE and delete its pieces")
    delete.add_argument("remote")
    delete.set_defaults(func=cmd_delete)
