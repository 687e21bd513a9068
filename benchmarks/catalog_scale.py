"""The customer's catalog as the files grow: what it holds in memory and what a save costs and sends.

    .venv/bin/python benchmarks/catalog_scale.py [--files 1000,10000,16000,64000] [--blocks 4] [--suppliers 4]

Each count runs in a fresh process: a catalog of that many files (each one version of --blocks blocks, a share hash
for each of --suppliers suppliers, as uploads leave them) is built, then saved twice by CatalogKeeper.save: my copy
written and fsynced, and the suppliers' through the real CatalogCopies (catalog_copies.py) and a network that answers
every copy at once and counts what it is sent (each packet signed with a 2048-bit key, framed as a TCP file). The
first save of the catalog, then one after a file is added. Measured: the resident memory the entries take; for each
save its CPU, the bytes it writes to my disk and sends, and the process's peak resident memory; the largest packet
(a TCP file may have 64 MiB). Then my copy is read back in a fresh process, as a node starting reads it: the memory
the entries take then (`loaded_mib`: read, every string is an object of its own), its CPU and the peak while
reading, and the CPU of the first save after that start, a file added (`restart_save_cpu_ms`). One line a count,
`catalog_scale files=..`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def written_mib() -> float:
    """What this process has written so far (its `wchar`: to files, sockets and pipes alike; a save writes files)."""
    line = next(ln for ln in Path("/proc/self/io").read_text().splitlines() if ln.startswith("wchar:"))
    return int(line.split()[1]) / 2**20


def peak_mib() -> float:
    """The process's peak resident memory since the last reset of it (VmHWM)."""
    line = next(ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def load(folder: Path, suppliers: int) -> dict[str, float]:
    """My copy of the catalog read back as a node starting reads it (CatalogDisk.load, in a CatalogKeeper): the memory
    the entries take then (parsed, not built: every string its own object), its CPU and the peak while reading; then
    the CPU of the first save after that start, a file added."""
    sys.path.insert(0, str(ROOT))
    import gc

    from twisted.internet import defer

    from bitdust_node.heap import keep_packet_buffers, release_free_memory

    keep_packet_buffers()  # as a node runs
    make_keeper, _network = rig(suppliers)
    before = rss_mib()
    Path("/proc/self/clear_refs").write_text("5")
    started = time.process_time()
    keeper = make_keeper(folder)
    cpu_ms = (time.process_time() - started) * 1000
    peak = peak_mib()
    gc.collect()
    release_free_memory()  # as a node at rest does each minute: what the reading itself took goes back
    catalog = keeper.catalog
    figures = {"files": len([e for e in catalog.entries.values() if e.kind == "file"]),
               "loaded_mib": rss_mib() - before, "load_cpu_ms": cpu_ms, "load_peak_mib": peak}
    catalog.ensure("folder0/after-a-start.bin", "file", time.time())
    started = time.process_time()
    stored: list[int] = []
    defer.ensureDeferred(keeper.save()).addCallback(stored.append)
    figures["restart_save_cpu_ms"] = (time.process_time() - started) * 1000
    figures["restart_stored"] = stored[0]
    return figures


def rig(suppliers: int) -> tuple[Callable[[Path], Any], Any]:
    """What makes a CatalogKeeper on a folder (my copy read as a node starting reads it), its holders the `suppliers`
    first, and the network it sends through: it signs what it is given to send, counts it framed and answers Ack at
    once. Everything imported and my key made before: the keeper's making is the load alone."""
    sys.path.insert(0, str(ROOT))
    import types

    from twisted.internet import defer

    from bitdust_node.crypto.keys import generate_key
    from bitdust_node.crypto.packet_signing import sign_packet
    from bitdust_node.storage.catalog_disk import CatalogDisk
    from bitdust_node.storage.catalog_keeper import CatalogKeeper
    from bitdust_node.wire import packet_fast
    from bitdust_node.wire.packet import Packet

    me = types.SimpleNamespace(idurl="http://127.0.0.1:8084/me.xml", key_id="master$me@127.0.0.1_8084",
                               key=generate_key(2048))
    me.require = lambda: me
    holders = [(n, f"http://127.0.0.1:8084/supplier{n}.xml") for n in range(suppliers)]

    class Network:
        def __init__(self) -> None:
            self.sent = self.largest = self.ids = 0

        def new_packet_id(self) -> str:
            self.ids += 1
            return str(self.ids)

        def outbox(self, command: str, remote_id: str, payload: bytes, packet_id: str | None = None) -> Packet:
            return sign_packet(Packet(command, me.idurl, me.idurl, packet_id or self.new_packet_id(), "now", payload,
                                      remote_id, me.key_id, ""), me.key)

        def request(self, packet: Packet, remote: object, timeout: float = 0) -> defer.Deferred[Packet]:
            size = sum(len(part) for part in packet_fast.serialize_parts(packet))
            self.sent += size
            self.largest = max(self.largest, size)
            return defer.succeed(Packet("Ack", me.idurl, me.idurl, packet.packet_id, "now", b"", me.idurl, "", ""))

    identities = types.SimpleNamespace(known=lambda idurl: defer.succeed(None))
    network = Network()

    def keeper(folder: Path) -> CatalogKeeper:
        disk = CatalogDisk(folder, worker=defer.maybeDeferred)
        return CatalogKeeper(network, me, identities, disk, lambda: holders,  # type: ignore[arg-type]
                             worker=defer.maybeDeferred)

    return keeper, network


def measure(files: int, blocks_a_file: int, suppliers: int, copy_to: Path | None = None) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from twisted.internet import defer

    from bitdust_node.heap import keep_packet_buffers, release_free_memory
    from bitdust_node.storage.catalog import BlockInfo, Catalog, Version
    from bitdust_node.transport.limits import TcpLimits

    keep_packet_buffers()  # as a node runs
    holders = [(n, f"http://127.0.0.1:8084/supplier{n}.xml") for n in range(suppliers)]
    before = rss_mib()
    catalog = Catalog(1)
    now = time.time()
    for number in range(files):
        entry = catalog.ensure(f"folder{number % 100}/file{number}.bin", "file", now)
        version = Version("F20261207075109PM", blocks_a_file * 4 << 20, now, 4 << 20, [h for _n, h in holders])
        version.blocks = [BlockInfo(4 << 20, (4 << 20) + 16, os.urandom(256), os.urandom(12),
                                    ["b3:" + os.urandom(32).hex() for _ in range(suppliers)])
                          for _block in range(blocks_a_file)]
        version.complete = True
        entry.versions.append(version)
    objects = rss_mib() - before
    figures: dict[str, float] = {"files": files, "objects_mib": objects}
    with tempfile.TemporaryDirectory() as folder:
        make_keeper, network = rig(suppliers)
        keeper = make_keeper(Path(folder))
        keeper.catalog = catalog
        keeper.fetch_first = False  # as a node whose uploads built this catalog: no copy of the suppliers' to take
        for save in ("first", "next"):
            if save == "next":
                catalog.ensure("folder0/one-more.bin", "file", now)
            network.sent = 0
            release_free_memory()  # as a node at rest does each minute: the save before it left its heap behind
            Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) from here: this save's own
            started_cpu, started_written = time.process_time(), written_mib()
            stored: list[int] = []
            defer.ensureDeferred(keeper.save()).addCallback(stored.append)  # my copy written, and every holder's
            figures[f"{save}_cpu_ms"] = (time.process_time() - started_cpu) * 1000
            figures[f"{save}_written_mib"] = written_mib() - started_written
            figures[f"{save}_sent_mib"] = network.sent / 2**20
            figures[f"{save}_stored"] = stored[0]
            figures[f"{save}_peak_mib"] = peak_mib()
        if copy_to is not None:
            shutil.copytree(folder, copy_to, dirs_exist_ok=True)  # my copy, as a node starting finds it
    figures.update(text_mib=keeper.last_save.size / 2**20, largest_mib=network.largest / 2**20,
                   pages=len(keeper.copies.pages), fits=network.largest <= TcpLimits().max_file_bytes)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", default="1000,10000,16000,64000", help="file counts, comma-separated")
    parser.add_argument("--blocks", type=int, default=4, help="blocks a file (4: a 16 MiB file)")
    parser.add_argument("--suppliers", type=int, default=4)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--copy-to", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--load", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args.one, args.blocks, args.suppliers, args.copy_to)))
        return
    if args.load is not None:
        print(json.dumps(load(args.load, args.suppliers)))
        return
    for files in (int(n) for n in args.files.split(",")):
        with tempfile.TemporaryDirectory() as folder:
            # the catalog as CatalogDisk keeps it, then read back in a fresh process, as a node starting does
            home = Path(folder) / "customer"
            out = subprocess.run([sys.executable, __file__, "--one", str(files), "--blocks", str(args.blocks),
                                  "--suppliers", str(args.suppliers), "--copy-to", str(home)],
                                 capture_output=True, text=True, check=True)
            got = json.loads(out.stdout)
            reading = [sys.executable, __file__, "--load", str(home), "--suppliers", str(args.suppliers)]
            loaded = json.loads(subprocess.run(reading, capture_output=True, text=True, check=True).stdout)
        assert loaded["files"] == files + 1, loaded  # and the one the second save added
        print(f"catalog_scale files={files} blocks={args.blocks} objects_mib={got['objects_mib']:.1f} "
              f"loaded_mib={loaded['loaded_mib']:.1f} load_cpu_ms={loaded['load_cpu_ms']:.0f} "
              f"load_peak_mib={loaded['load_peak_mib']:.0f} restart_save_cpu_ms={loaded['restart_save_cpu_ms']:.0f} "
              f"text_mib={got['text_mib']:.1f} pages={got['pages']} "
              f"first_save_cpu_ms={got['first_cpu_ms']:.0f} first_sent_mib={got['first_sent_mib']:.1f} "
              f"next_save_cpu_ms={got['next_cpu_ms']:.0f} next_written_mib={got['next_written_mib']:.2f} "
              f"next_sent_mib={got['next_sent_mib']:.2f} largest_packet_mib={got['largest_mib']:.2f} "
              f"first_peak_mib={got['first_peak_mib']:.0f} next_peak_mib={got['next_peak_mib']:.0f} "
              f"stored={got['next_stored']:.0f}/{args.suppliers} "
              f"fits_a_packet={'yes' if got['fits'] else 'no'}", flush=True)

if __name__ == "__main__":
    main()
