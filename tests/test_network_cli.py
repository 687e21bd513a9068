"""`bitdust network up 6` as a user on a fresh clone runs it: six background nodes on 127.0.0.2 onwards with
the guide's roles answer within 30 s, a DHT value set on one is read on another, `network status` shows
one line per node, and `network down` leaves no process behind."""

from __future__ import annotations

import time
from pathlib import Path

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from bitdust_node import home as home_paths
from tests.support.nodes import run_cli

COUNT = 6


def alive(pid: int) -> bool:
    """Running: a process that ended but whose parent has not reaped it yet (a zombie) is not."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


class NetworkUpTests(TestCase):
    timeout = 180

    async def test_up_six_set_and_get_then_down(self) -> None:
        folder = Path(self.mktemp()).resolve()
        anywhere = Path(self.mktemp()).resolve()  # the CLI's own home does not matter to `network`
        self.addCleanup(lambda: defer.ensureDeferred(run_cli(anywhere, "network", "down", "--dir", str(folder))))
        started = time.monotonic()
        up = await run_cli(anywhere, "network", "up", str(COUNT), "--dir", str(folder))
        took = time.monotonic() - started
        self.assertEqual(up.code, 0, up.err + up.out)
        self.assertLess(took, 30.0, up.out)
        lines = [line for line in up.out.splitlines() if line.startswith("node")]
        self.assertEqual(len(lines), COUNT, up.out)
        self.assertIn("dht-genesis,identity-server", lines[0])
        self.assertIn("customer", lines[-1])
        self.assertIn(f"BITDUST_HOME={folder / 'node3'} bitdust states", up.out)
        homes = [folder / f"node{i}" for i in range(1, COUNT + 1)]
        pids = [home_paths.running_pid(h) for h in homes]
        self.assertTrue(all(p is not None and alive(p) for p in pids), pids)
        stored = await run_cli(homes[1], "dht", "set", "shared-key", '{"from": "node2"}')
        self.assertEqual(stored.code, 0, stored.err)
        read = await run_cli(homes[4], "dht", "get", "shared-key")
        self.assertEqual(read.code, 0, read.err)
        self.assertIn("node2", read.out)
        status = await run_cli(anywhere, "network", "status", "--dir", str(folder))
        self.assertEqual(status.code, 0, status.err)
        self.assertEqual(len([line for line in status.out.splitlines() if "running" in line]), COUNT, status.out)
        down = await run_cli(anywhere, "network", "down", "--dir", str(folder))
        self.assertEqual(down.code, 0, down.err)
        self.assertIn(f"{COUNT} nodes stopped", down.out)
        self.assertEqual([p for p in pids if p is not None and alive(p)], [])
