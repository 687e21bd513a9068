"""`bitdust dht get KEY`, `bitdust dht set KEY VALUE`, `bitdust dht find [NODE_ID]`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bitdust_node.cli.context import CliContext, CliError


def _print_nodes(nodes: list[dict[str, str]]) -> None:
    for item in nodes:
        print(f"  {item['dht_id']}  {item['address']}")


def _running(ctx: CliContext) -> CliContext:
    """The DHT lives in the running node: say so plainly when there is none."""
    if not ctx.is_running():
        raise CliError(f"the node is not running (home {ctx.home}); start it with `bitdust daemon`")
    return ctx


def cmd_get(args: argparse.Namespace, ctx: CliContext) -> int:
    result = _running(ctx).api("GET", "/dht/value/get/v1", query={"key": args.key})
    if result.get("read") != "success":
        print(f"{args.key}: not found; closest nodes:")
        _print_nodes(result.get("closest_nodes", []))
        return 1
    print(json.dumps(result["value"], sort_keys=True))
    return 0


def cmd_set(args: argparse.Namespace, ctx: CliContext) -> int:
    try:
        value = json.loads(args.value)
    except ValueError:
        raise CliError(
            'VALUE must be a JSON object, e.g. \'{"name": "x"}\'', exit_code=2
        ) from None
    if not isinstance(value, dict):
        raise CliError(
            'VALUE must be a JSON object, e.g. \'{"name": "x"}\'', exit_code=2
        )
    body: dict[str, Any] = {"key": args.key, "value": value}
    if args.expire is not None:
        body["expire"] = args.expire
    result = _running(ctx).api("POST", "/dht/value/set/v1", body=body)
    print(f"{args.key}: write {result['write']}, stored near:")
    _print_nodes(result.get("closest_nodes", []))
    return 0 if result["write"] == "success" else 1


def cmd_find(args: argparse.Namespace, ctx: CliContext) -> int:
    query = {"node_id": args.node_id} if args.node_id else None
    result = _running(ctx).api("GET", "/dht/node/find/v1", query=query)
    print(f"closest to {result['lookup']} (I am {result['my_dht_id']}):")
    _print_nodes(result.get("closest_nodes", []))
    return 0


def register(subparsers: Any) -> None:
    dht = subparsers.add_parser(
        "dht", help="DHT tools: read and write values, find nodes"
    )
    actions = dht.add_subparsers(dest="dht_command", metavar="ACTION")
    get = actions.add_parser("get", help="read the JSON value stored under KEY")
    get.add_argument("key", metavar="KEY")
    get.set_defaults(func=cmd_get)
    set_ = actions.add_parser("set", help="store a JSON object VALUE under KEY")
    set_.add_argument("key", metavar="KEY")
    set_.add_argument("value", metavar="VALUE", help="a JSON object")
    set_.add_argument("--expire", type=int, default=None, help="seconds, 120 to 43200")
    set_.set_defaults(func=cmd_set)
    find = actions.add_parser(
        "find", help="find the nodes closest to NODE_ID (random if none)"
    )
    find.add_argument("node_id", metavar="NODE_ID", nargs="?", default=None)
    find.set_defaults(func=cmd_find)
