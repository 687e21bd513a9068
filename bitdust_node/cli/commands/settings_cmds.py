"""`bitdust set KEY VALUE` and `bitdust get KEY`: over REST when the node runs, in the home when not."""

from __future__ import annotations

import argparse
from typing import Any

from bitdust_node.cli.context import CliContext


def _show(entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        value = entry["value"]
        shown = str(value).lower() if isinstance(value, bool) else value
        print(f"{entry['key']} ({entry['type']}) : {shown}")


def cmd_get(args: argparse.Namespace, ctx: CliContext) -> int:
    if ctx.is_running():
        _show(ctx.api("GET", "/config/get/v1", query={"key": args.key}))
    else:
        _show(ctx.settings().describe(args.key))
    return 0


def cmd_set(args: argparse.Namespace, ctx: CliContext) -> int:
    if ctx.is_running():
        entries = ctx.api("POST", "/config/set/v1", body={"key": args.key, "value": args.value})
        _show(entries)
        if any(e.get("needs_restart") for e in entries):
            print("the running node applies this at its next start: bitdust restart")
    else:
        settings = ctx.settings()
        settings.set(args.key, args.value)
        _show(settings.describe(args.key))
    return 0


def register(subparsers: Any) -> None:
    get = subparsers.add_parser("get", help="read a setting (or all under a prefix)")
    get.add_argument("key", metavar="KEY", help="e.g. services/entangled-dht/udp-port")
    get.set_defaults(func=cmd_get)
    set_ = subparsers.add_parser("set", help="change a setting; a running node applies it live")
    set_.add_argument("key", metavar="KEY", help="e.g. services/supplier/enabled")
    set_.add_argument("value", metavar="VALUE", help='e.g. true, 14441, "50 GB"')
    set_.set_defaults(func=cmd_set)
