"""CPU (thread_time) of the gateway taking a 2.8 MB Data packet handed on as 1 MiB reads, and the supplier storing
and acking it, on one thread (memory reactor, disk work inline). Run from the tree to measure (its
code is imported from the current directory), e.g. from a checkout of main and then from this one, to compare."""

from __future__ import annotations

import base64
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.getcwd())

from tests.storage.support import Side

PIECE = "master$dave@127.0.0.1_8084:3/F20261201075109PM/0-0-Data"


class Temp:
    def __init__(self, root: Path) -> None:
        self.root, self.n = root, 0

    def mktemp(self) -> str:
        self.n += 1
        return str(self.root / f"t{self.n}")


def main(rounds: int) -> None:
    root = Path(tempfile.mkdtemp(dir=os.environ.get("BENCH_DIR", "/tmp")))
    side = Side(Temp(root), root / "home")  # type: ignore[arg-type]
    side.hire("dave", 1 << 29)
    side.written()
    packet = side.make("dave", "Data", PIECE, base64.b64encode(os.urandom(2_100_000)))
    from bitdust_node.wire import packet as wire
    data = wire.serialize(packet)
    step = 1 << 20
    reads = [data[at : at + step] for at in range(0, len(data), step)]
    times = []
    for _ in range(rounds):
        chunks = tuple(memoryview(read) for read in reads)
        started = time.thread_time()
        side.gateway.file_received(chunks, side.connection)
        times.append(time.thread_time() - started)
        side.wire.clear()
    stored = side.supplier.counters["pieces_stored"]
    times.sort()
    print(f"{len(data)} bytes in {len(reads)} reads, {rounds} rounds, {stored} stored: "
          f"median {times[len(times) // 2] * 1000:.3f} ms, min {times[0] * 1000:.3f} ms, "
          f"mean {sum(times) / len(times) * 1000:.3f} ms CPU")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
