"""`bitdust gui [--print-url]`: open the node's web interface in the browser, logged in."""

from __future__ import annotations

import argparse
import webbrowser
from typing import Any

from bitdust_node.cli.context import CliContext, CliError


def cmd_gui(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.require_running()
    # a one-time link: the API secret stays in the home, the browser gets a session instead
    reply = ctx.api("POST", "/gui/token/v1")
    url = reply["url"]
    if args.print_url:
        print(url)
        return 0
    if not webbrowser.open(url):
        raise CliError(f"no browser could be started; open this address within a minute:\n{url}")
    print(f"opened the web interface in the browser (the link works once, within {reply['expires_in']} s)")
    return 0


def register(subparsers: Any) -> None:
    gui = subparsers.add_parser("gui", help="open the node's web interface in the browser, logged in")
    gui.add_argument("--print-url", action="store_true",
                     help="print the one-time address instead of opening a browser")
    gui.set_defaults(func=cmd_gui)
