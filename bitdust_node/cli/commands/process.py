"""`bitdust daemon|stop|restart|status`: start the node in the background, stop it, ask how it is."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any

from bitdust_node.cli.context import CliContext, CliError
from bitdust_node.home import LOG_DIR, LOG_FILE, ensure_home

START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0


def _wait(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _healthy(ctx: CliContext) -> bool:
    if not ctx.is_running():
        return False
    try:
        ctx.api("GET", "/process/health/v1", timeout=2)
    except CliError:
        return False
    return True


def _log_path(ctx: CliContext) -> str:
    return str(ctx.home / LOG_DIR / LOG_FILE)


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return ""


_ERROR_LINE = re.compile(r"(?:[\w.]+\.)?(\w+(?:Error|Exception|Locked)): (.+)$")
# twistd's parent shows the child's start error cut to 100 bytes
_TWISTD_ERROR = re.compile(r"An error has occurred: b?[\"'](.*)[\"']\s*$", re.MULTILINE)


def _start_error(twistd_output: str, log_text: str) -> str:
    """The start error in one line: the full line from the log when twistd's short one is found there."""
    found = _TWISTD_ERROR.search(twistd_output)
    lines = twistd_output.strip().splitlines()
    short = found.group(1) if found else (lines[-1] if lines else "")
    for line in reversed(log_text.splitlines()):
        if short and short in line:
            line = line[line.index(short):]
            match = _ERROR_LINE.search(line)
            return f"{match.group(1)}: {match.group(2)}" if match else line
    return short


def start_daemon(ctx: CliContext) -> None:
    if ctx.is_running():
        raise CliError(f"a node is already running in {ctx.home} (pid {ctx.pid()})")
    ensure_home(ctx.home)
    (ctx.home / LOG_DIR).mkdir(exist_ok=True)
    # the launcher logs to logs/node.log, rotated as the logs/ settings say
    command = [
        sys.executable, "-c", "from bitdust_node.launcher import run; run()",
        "--pidfile", str(ctx.home / "twistd.pid"),
        "--config", str(ctx.home),
    ]
    done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = _start_error(done.stdout + done.stderr, _tail(_log_path(ctx), 60))
        raise CliError(f"the node did not start: {detail or f'exit {done.returncode}'} (log: {_log_path(ctx)})")
    if not _wait(lambda: _healthy(ctx), START_TIMEOUT):
        raise CliError(f"the node did not answer in {START_TIMEOUT:.0f} s; its log ends:\n" + _tail(_log_path(ctx)))


def _summary(ctx: CliContext) -> str:
    services = ctx.api("GET", "/service/list/v1")
    on = sorted(s["name"] for s in services if s["state"] == "ON")
    lines = [f"{len(on)} of {len(services)} services ON: " + ", ".join(on)]
    # what keeps a running service from working, such as a DHT with no seeds to join
    lines += [f"{s['name']}: {s['bootstrap_reason']}" for s in services if s.get("bootstrap_reason")]
    return "\n".join(lines)


def cmd_daemon(args: argparse.Namespace, ctx: CliContext) -> int:
    start_daemon(ctx)
    print(f"node started in the background, pid {ctx.pid()}, home {ctx.home}")
    print(f"REST API on {ctx.api_base()}; log in {_log_path(ctx)}")
    print(_summary(ctx))
    return 0


def stop_node(ctx: CliContext) -> int:
    pid = ctx.pid()
    if pid is None:
        raise CliError(f"no node is running in {ctx.home}")
    try:
        ctx.api("POST", "/process/stop/v1", timeout=5)
    except CliError:
        if pid > 0:
            os.kill(pid, signal.SIGTERM)  # the API is unreachable: ask the process itself
    if not _wait(lambda: not ctx.is_running(), STOP_TIMEOUT):
        raise CliError(f"the node (pid {pid}) did not stop in {STOP_TIMEOUT:.0f} s")
    return pid


def cmd_stop(args: argparse.Namespace, ctx: CliContext) -> int:
    pid = stop_node(ctx)
    print(f"node stopped (pid {pid})")
    return 0


def cmd_restart(args: argparse.Namespace, ctx: CliContext) -> int:
    if ctx.is_running():
        print(f"node stopped (pid {stop_node(ctx)})")
    return cmd_daemon(args, ctx)


def cmd_status(args: argparse.Namespace, ctx: CliContext) -> int:
    pid = ctx.pid()
    if pid is None:
        print(f"no node is running in {ctx.home}")
        return 1
    print(f"node is running, pid {pid}, home {ctx.home}, REST API on {ctx.api_base()}")
    print(_summary(ctx))
    return 0


def register(subparsers: Any) -> None:
    for name, func, text in (
        ("daemon", cmd_daemon, "start the node in the background and wait until it answers"),
        ("stop", cmd_stop, "stop the running node"),
        ("restart", cmd_restart, "stop the node if it runs, then start it in the background"),
        ("status", cmd_status, "is a node running in this home? (exit 1 if not)"),
    ):
        subparsers.add_parser(name, help=text, description=text).set_defaults(func=func)
