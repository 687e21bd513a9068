"""`bitdust msg send USER TEXT` and `bitdust msg history [USER]`: private messages from the shell."""

from __future__ import annotations

import argparse
import time
from typing import Any

from bitdust_node.cli.context import CliContext

# a first message pings the peer and waits for its Ack: give it the node's own timeouts and some
SEND_TIMEOUT = 60.0



def cmd_send(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.require_running()
    result = ctx.api("POST", "/message/send/v1", body={"id": args.user, "data": {"message": args.text}},
                     timeout=SEND_TIMEOUT)
    print(f"message sent to {args.user}" + (" and read" if result.get("consumed") else ""))
    return 0


def _line(doc: dict[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(doc["time"]))
    peer = doc["sender"] if doc["dir"] == "incoming" else doc["recipient"]
    arrow = "<-" if doc["dir"] == "incoming" else "->"
    who = peer.split("$", 1)[-1]
    text = doc["data"].get("message", doc["data"])
    return f"{when} {arrow} {who}: {text}"


def cmd_history(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.require_running()
    query = {"id": args.user} if args.user else {}
    query["limit"] = str(args.limit)
    for item in ctx.api("GET", "/message/history/v1", query=query):
        print(_line(item["doc"]))
    return 0


def register(subparsers: Any) -> None:
    msg = subparsers.add_parser("msg", help="send private messages and read their history")
    actions = msg.add_subparsers(dest="msg_command", metavar="ACTION")
    send = actions.add_parser("send", help="send TEXT to USER (a nickname, global id or IDURL)")
    send.add_argument("user")
    send.add_argument("text")
    send.set_defaults(func=cmd_send)
    history = actions.add_parser("history", help="messages sent and received, oldest first")
    history.add_argument("user", nargs="?", help="only the conversation with this user")
    history.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    history.set_defaults(func=cmd_history)
