"""`bitdust states` and `bitdust services`: what the running node's machines and services are doing."""

from __future__ import annotations

import argparse
from typing import Any

from bitdust_node.cli.context import CliContext


def cmd_states(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.require_running()
    for m in ctx.api("GET", "/automat/list/v1"):
        line = f"{m['index']}: {m['id']}({m['state']})"
        if args.verbose:
            history = "->".join(m.get("past", []))
            line += "".join(f" {part}" for part in (history, m.get("info", "")) if part)
        print(line)
    return 0


def cmd_services(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.require_running()
    for s in sorted(ctx.api("GET", "/service/list/v1"), key=lambda s: s["index"]):
        line = f"{s['index']}: {s['name']}({s['state']}) {'ENABLED' if s['enabled'] else 'DISABLED'}"
        if args.verbose and s.get("reason"):
            line += f"  [{s['reason']}]"
        if args.verbose:
            line += "".join(f"  [warning: {w}]" for w in s.get("warnings", []))
        print(line)
    return 0


def register(subparsers: Any) -> None:
    states = subparsers.add_parser("states", help="one line per live state machine: INDEX: NAME(STATE)")
    states.add_argument("-v", "--verbose", action="store_true", help="also show past states and what machines hold")
    states.set_defaults(func=cmd_states)
    services = subparsers.add_parser("services", help="one line per service: INDEX: service_NAME(STATE) ENABLED")
    services.add_argument("-v", "--verbose", action="store_true", help="also why a service is not ON, and warnings")
    services.set_defaults(func=cmd_services)
