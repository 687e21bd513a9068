"""`bitdust network up N [--dir DIR]`, `network down`, `network status`: a whole private network of N local
nodes on 127.0.0.2 onwards, with the guide's roles, to try BitDust before renting servers.

Roles, in order: the first node is the DHT genesis and an identity server; with four or more nodes the
second is a second identity server; then proxy routers (one in four nodes), suppliers, and the last node
a customer. Each node is a background `twistd bitdust` with its home in DIR/<name>.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bitdust_node.cli.commands.process import start_daemon, stop_node
from bitdust_node.cli.context import CliContext, CliError
from bitdust_node.settings import Settings

DEFAULT_DIR = Path("~/.bitdust-network")
PLAN_FILE = "network.json"
FIRST_HOST = 2
JOIN_TIMEOUT = 60.0
EXIT_TIMEOUT = 20.0
MAX_NODES = 50


def plan(count: int) -> list[dict[str, Any]]:
    """Name, address and roles of each node of a network of `count`."""
    if not 1 <= count <= MAX_NODES:
        raise CliError(f"a local network has 1 to {MAX_NODES} nodes", exit_code=2)
    nodes = []
    routers = max(1, count // 4) if count >= 3 else 0
    for index in range(count):
        roles: list[str] = []
        if index == 0:
            roles += ["dht-genesis", "identity-server"]
        if index == 1 and count >= 4:
            roles.append("identity-server")
        if 1 <= index <= routers:
            roles.append("router")
        if index == count - 1 and count >= 2:
            roles.append("customer")
        elif index > routers or (count < 3 and index > 0):
            roles.append("supplier")
        nodes.append({"name": f"node{index + 1}", "address": f"127.0.0.{FIRST_HOST + index}", "roles": roles})
    return nodes


def node_settings(node: dict[str, Any], servers: list[str], genesis: str, suppliers: int) -> dict[str, Any]:
    roles = node["roles"]
    settings: dict[str, Any] = {
        "services/network/bind-address": node["address"],
        "interface/api/rest-http-host": node["address"],
        "services/entangled-dht/known-nodes": "genesis" if "dht-genesis" in roles else f"{genesis}:14441",
        "services/identity-propagate/known-servers": ",".join(f"{s}:8084" for s in servers),
        "services/identity-propagate/min-servers": 1,
        "services/identity-server/enabled": "identity-server" in roles,
        "services/proxy-server/enabled": "router" in roles,
        "services/proxy-transport/enabled": False,  # every node is reachable on loopback
        "services/supplier/enabled": "supplier" in roles,
        "services/customer/enabled": "customer" in roles,
    }
    if "identity-server" in roles:
        settings["services/identity-server/host"] = node["address"]
    if "supplier" in roles:
        settings["services/supplier/donated-space"] = "1 GB"
    if "customer" in roles:
        settings["services/customer/suppliers-number"] = 4 if suppliers >= 4 else 2
    return settings


def _folder(args: argparse.Namespace) -> Path:
    return Path(args.dir).expanduser().resolve()


def _load(folder: Path) -> list[dict[str, Any]]:
    path = folder / PLAN_FILE
    if not path.exists():
        raise CliError(f"no local network in {folder}; make one with `bitdust network up N --dir {folder}`")
    return list(json.loads(path.read_text())["nodes"])


def _joined(ctx: CliContext) -> bool:
    try:
        status = ctx.api("GET", "/network/status/v1", query={"dht": "1"}, timeout=5)
    except CliError:
        return False
    dht = status.get("dht") or {}
    return bool(dht.get("layers")) and (dht["layers"][0]["contacts"] > 0 or dht.get("bootstrap", {}).get(
        "state") == "READY")


def cmd_up(args: argparse.Namespace, ctx: CliContext) -> int:
    folder = _folder(args)
    if (folder / PLAN_FILE).exists() and any(CliContext(folder / n["name"]).is_running() for n in _load(folder)):
        raise CliError(f"a local network already runs in {folder}; `bitdust network down --dir {folder}` first")
    nodes = plan(args.count)
    suppliers = sum(1 for n in nodes if "supplier" in n["roles"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PLAN_FILE).write_text(json.dumps({"nodes": nodes}, indent=1))
    servers = [n["address"] for n in nodes if "identity-server" in n["roles"]]
    started = time.monotonic()
    for node in nodes:
        home = folder / node["name"]
        stored = Settings.load(home)
        for key, value in node_settings(node, servers, nodes[0]["address"], suppliers).items():
            stored.set(key, value)
        node_ctx = CliContext(home)
        start_daemon(node_ctx)
        try:
            node_ctx.api("GET", "/identity/get/v1", timeout=10)  # a network brought up again keeps its identities
        except CliError:
            node_ctx.api("POST", "/identity/create/v1", body={"username": node["name"]}, timeout=60)
        print(f"{node['name']} {node['address']} {','.join(node['roles']) or '-'}: "
              f"BITDUST_HOME={home} bitdust states", flush=True)
    waiting = [CliContext(folder / n["name"]) for n in nodes[1:]]
    deadline = time.monotonic() + JOIN_TIMEOUT
    while waiting and time.monotonic() < deadline:
        waiting = [c for c in waiting if not _joined(c)]
        time.sleep(0.3)
    if waiting:
        raise CliError(f"{len(waiting)} nodes did not join the DHT in {JOIN_TIMEOUT:.0f} s")
    print(f"{len(nodes)} nodes up and joined in {time.monotonic() - started:.1f} s; "
          f"`bitdust network down --dir {folder}` stops them")
    return 0


def cmd_down(args: argparse.Namespace, ctx: CliContext) -> int:
    folder = _folder(args)
    stopped = 0
    pids = []
    for node in reversed(_load(folder)):
        node_ctx = CliContext(folder / node["name"])
        if node_ctx.is_running():
            pids.append(stop_node(node_ctx))
            stopped += 1
    # the pid file goes before the process does: wait for the processes themselves
    deadline = time.monotonic() + EXIT_TIMEOUT
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in pids if _alive(p)]
    if left:
        raise CliError(f"{len(left)} node processes still run after {EXIT_TIMEOUT:.0f} s: {left}")
    print(f"{stopped} nodes stopped")
    return 0


def _alive(pid: int) -> bool:
    """Running: a process that ended but is not reaped yet (a zombie) is not."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def cmd_status(args: argparse.Namespace, ctx: CliContext) -> int:
    folder = _folder(args)
    nodes = _load(folder)
    for node in nodes:
        node_ctx = CliContext(folder / node["name"])
        state = "stopped"
        if node_ctx.is_running():
            try:
                status = node_ctx.api("GET", "/network/status/v1", query={"dht": "1"}, timeout=5)
                layers = (status.get("dht") or {}).get("layers") or [{}]
                state = f"running, {layers[0].get('contacts', 0)} DHT contacts, {status.get('global_id', '')}"
            except CliError as err:
                state = f"running, not answering: {err}"
        print(f"{node['name']} {node['address']} {','.join(node['roles']) or '-'}: {state}")
    return 0


def register(subparsers: Any) -> None:
    network = subparsers.add_parser("network", help="a private network of local nodes on 127.0.0.2 onwards")
    actions = network.add_subparsers(dest="network_command", metavar="ACTION")
    for name, func, text in (
        ("up", cmd_up, "start N nodes with the guide's roles and wait until they joined"),
        ("down", cmd_down, "stop every node of the local network"),
        ("status", cmd_status, "one line per node of the local network"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        if name == "up":
            action.add_argument("count", type=int, metavar="N")
        action.add_argument("--dir", default=str(DEFAULT_DIR), help=f"where the homes are (default {DEFAULT_DIR})")
        action.set_defaults(func=func)
