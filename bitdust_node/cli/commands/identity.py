"""`bitdust identity create|show|backup|restore|rotate`: the local identity's life cycle."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bitdust_node.cli.context import CliContext, CliError
from bitdust_node.identity.my_identity import NOT_EXIST

# key generation and registration on several servers take a while
SLOW_CALL_TIMEOUT = 120.0
# every source is asked at once, each GET with its own timeout
SOURCES_TIMEOUT = 30.0
MAX_BACKUP_BYTES = 32_768



def cmd_create(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.require_running()
    result = ctx.api(
        "POST",
        "/identity/create/v1",
        body={"username": args.name},
        timeout=SLOW_CALL_TIMEOUT,
    )
    print(f"created identity {result['global_id']} at {result['idurl']}")
    return 0


# the REST API words it as official nodes do (NOT_EXIST); a person is told what is true and what to do
NO_IDENTITY_ADVICE = "this node has no identity yet: create one with `bitdust identity create NAME`"


def cmd_show(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.require_running()
    try:
        result = ctx.api("GET", "/identity/get/v1", query={"include_xml_source": "1"})
    except CliError as err:
        if err.message == NOT_EXIST:
            raise CliError(NO_IDENTITY_ADVICE) from None
        raise
    print(result["xml"])
    try:
        servers = ctx.api("GET", "/identity/sources/v1", timeout=SOURCES_TIMEOUT)
    except CliError as err:
        print(f"\nsources: not checked ({err.message})")
        return 0
    print()
    print("\n".join(source_lines(servers)))
    return 0


def source_lines(servers: dict[str, Any]) -> list[str]:
    """Each source of my identity and whether it serves it now; the IDURLs left behind."""
    lines = ["sources:"]
    for number, source in enumerate(servers["sources"], 1):
        if source["reachable"]:
            state = f"reachable, serves revision {source['revision']}"
        else:
            state = f"NOT REACHABLE ({source['error']})"
        lines.append(f"  {number}. {source['idurl']}  {state}")
    for old in servers.get("former_idurls", []):
        lines.append(f"  left: {old}")
    rotate = "on" if servers.get("automatic_rotate") else "off"
    lines.append(f"automatic rotation {rotate}, checked every {servers.get('health_check_interval', 0):g} s")
    return lines


def cmd_rotate(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.require_running()
    body = {"server": args.server} if args.server else {}
    result = ctx.api("POST", "/identity/rotate/v1", body=body, timeout=SLOW_CALL_TIMEOUT)
    if not result["rotated"]:
        print(f"identity not moved: {result['idurl']} serves it ({', '.join(result['sources'])})")
        return 0
    print(f"identity moved from {result['old_idurl']} to {result['new_idurl']}, revision {result['revision']}")
    print("sources: " + ", ".join(result["sources"]))
    return 0


def cmd_backup(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.require_running()
    target = Path(args.file).expanduser().resolve()
    result = ctx.api("POST", "/identity/backup/v1", body={"destination_filepath": str(target)})
    print(f"identity {result['global_id']} and its private key saved to {result['destination_path']}")
    return 0


def cmd_restore(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.require_running()
    path = Path(args.file).expanduser()
    try:
        data = path.read_bytes()[: MAX_BACKUP_BYTES + 1]
    except OSError as err:
        raise CliError(f"cannot read {path}: {err.strerror}", exit_code=2) from None
    result: Any = ctx.api(
        "POST",
        "/identity/recover/v1",
        body={"private_key_source": data.decode("utf-8", "replace")},
        timeout=SLOW_CALL_TIMEOUT,
    )
    print(f"restored identity {result['global_id']} at {result['idurl']}")
    return 0


def register(subparsers: Any) -> None:
    identity = subparsers.add_parser("identity", help="create, show, back up, restore or move my identity")
    actions = identity.add_subparsers(dest="identity_command", metavar="ACTION")
    create = actions.add_parser("create", help="create my identity on the known identity servers")
    create.add_argument("name", help="3 to 20 characters of a-z, 0-9, - and _")
    create.set_defaults(func=cmd_create)
    show = actions.add_parser("show", help="print my identity file and whether each of its servers serves it")
    show.set_defaults(func=cmd_show)
    backup = actions.add_parser("backup", help="save my IDURL and private key to FILE (mode 0600)")
    backup.add_argument("file", metavar="FILE")
    backup.set_defaults(func=cmd_backup)
    restore = actions.add_parser("restore", help="restore my identity from a backup FILE")
    restore.add_argument("file", metavar="FILE")
    restore.set_defaults(func=cmd_restore)
    rotate = actions.add_parser("rotate", help="move my identity off an identity server now (to other known ones)")
    rotate.add_argument("server", nargs="?", default="", metavar="SERVER",
                        help="host[:port] of the server to leave (default: my first one)")
    rotate.set_defaults(func=cmd_rotate)
