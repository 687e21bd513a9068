"""`bitdust identity create|show|backup|restore`: the local identity's life cycle."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bitdust_node.cli.context import CliContext, CliError
from bitdust_node.identity.my_identity import NOT_EXIST

# key generation and registration on several servers take a while
SLOW_CALL_TIMEOUT = 120.0
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
    identity = subparsers.add_parser("identity", help="create, show, back up or restore my identity")
    actions = identity.add_subparsers(dest="identity_command", metavar="ACTION")
    create = actions.add_parser("create", help="create my identity on the known identity servers")
    create.add_argument("name", help="3 to 20 characters of a-z, 0-9, - and _")
    create.set_defaults(func=cmd_create)
    show = actions.add_parser("show", help="print my identity file")
    show.set_defaults(func=cmd_show)
    backup = actions.add_parser("backup", help="save my IDURL and private key to FILE (mode 0600)")
    backup.add_argument("file", metavar="FILE")
    backup.set_defaults(func=cmd_backup)
    restore = actions.add_parser("restore", help="restore my identity from a backup FILE")
    restore.add_argument("file", metavar="FILE")
    restore.set_defaults(func=cmd_restore)
