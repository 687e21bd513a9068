"""CPU of a supplier taking one file piece: the gateway handed a 2.8 MB Data packet as the 1 MiB reads a TCP
connection gives, checking it, and the supplier storing and acknowledging it.

    .venv/bin/python benchmarks/supplier_store_cpu.py [--rounds 200] [--against DIR]

All on one thread (a memory reactor, the disk work inline: tests/storage/support.Side; the heap tuned as a node
tunes it), timed with thread_time,
median of the rounds. With --against DIR (a checkout of another commit: `git worktree add DIR COMMIT`) that tree's
code is measured too, in turns with this one, each in a process of its own. Ends with one line.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIECE = "master$dave@127.0.0.1_8084:3/F20261201075109PM/0-0-Data"


class Temp:
    def __init__(self, root: Path) -> None:
        self.root, self.n = root, 0

    def mktemp(self) -> str:
        self.n += 1
        return str(self.root / f"t{self.n}")


def measure(rounds: int) -> float:
    """Median CPU in ms of one piece taken, in this process (its code from the current directory)."""
    sys.path.insert(0, os.getcwd())
    from bitdust_node.heap import keep_packet_buffers
    from bitdust_node.wire import packet as wire
    from tests.storage.support import Side

    keep_packet_buffers()  # the heap as a node tunes it: a packet's buffers reused, not mapped afresh each time

    root = Path(tempfile.mkdtemp(dir=os.environ.get("BENCH_DIR", "/tmp")))
    try:
        side = Side(Temp(root), root / "home")  # type: ignore[arg-type]
        side.hire("dave", 1 << 29)
        side.written()
        data = wire.serialize(side.make("dave", "Data", PIECE, base64.b64encode(os.urandom(2_100_000))))
        reads = [data[at : at + (1 << 20)] for at in range(0, len(data), 1 << 20)]
        times = []
        for _ in range(rounds):
            chunks = tuple(memoryview(read) for read in reads)
            started = time.thread_time()
            side.gateway.file_received(chunks, side.connection)
            times.append(time.thread_time() - started)
            side.wire.clear()
        if side.supplier.counters["pieces_stored"] != rounds:
            raise SystemExit(f"only {side.supplier.counters['pieces_stored']} of {rounds} pieces stored")
        return statistics.median(times) * 1000
    finally:
        shutil.rmtree(root, ignore_errors=True)


def child(tree: Path, rounds: int) -> float:
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--one", str(rounds)], cwd=tree,
                         env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--against", help="a checkout of another commit, measured in turns with this one")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(measure(args.one))
        return
    trees = [ROOT] + ([Path(args.against).resolve()] if args.against else [])
    figures: dict[Path, list[float]] = {tree: [] for tree in trees}
    for _turn in range(3):
        for tree in trees:
            figures[tree].append(child(tree, args.rounds))
    line = f"supplier_store 2.8 MB piece in 1 MiB reads: cpu_ms={min(figures[ROOT]):.3f}"
    if args.against:
        line += f" against {args.against} cpu_ms={min(figures[trees[1]]):.3f}"
    print(line + " (lowest of 3 runs, each the median of its rounds)")


if __name__ == "__main__":
    main()
