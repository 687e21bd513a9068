"""The `bitdust` command: argument parsing and the mapping of errors to one line and an exit code."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path
from typing import Any

from bitdust_node.cli.context import CliContext, CliError
from bitdust_node.errors import BitDustError
from bitdust_node.home import default_home


def build_parser() -> tuple[argparse.ArgumentParser, Any]:
    parser = argparse.ArgumentParser(
        prog="bitdust",
        description="Control a bitdust-node: settings, process, services, identity, DHT.",
    )
    parser.add_argument(
        "--config", metavar="DIR", type=Path, default=None,
        help="the node's home folder (default $BITDUST_HOME or ~/.bitdust)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    from bitdust_node.cli import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(subparsers)
    return parser, subparsers


def main(argv: list[str] | None = None) -> int:
    parser, subparsers = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        # `bitdust` or a command group without its action (`bitdust dht`): show what fits there
        subparsers.choices.get(args.command, parser).print_help(sys.stderr)
        return 2
    ctx = CliContext(home=(args.config or default_home()).expanduser().resolve())
    try:
        return int(args.func(args, ctx) or 0)
    except CliError as err:
        print(err.message, file=sys.stderr)
        return err.exit_code
    except BitDustError as err:
        print(err.message, file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`bitdust states | head`): not an error of ours
        sys.stderr.close()
        return 0


def run() -> None:
    sys.exit(main())
