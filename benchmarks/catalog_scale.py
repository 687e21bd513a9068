"""The customer's catalog as the files grow: what it holds in memory and what every save costs and sends.

    .venv/bin/python benchmarks/catalog_scale.py [--files 1000,10000,16000] [--blocks 4] [--suppliers 4]

Each count runs in a fresh process: a catalog of that many files (each one version of --blocks blocks, a share hash
for each of --suppliers suppliers, as uploads leave them) is built, then saved the way CatalogKeeper.save does it:
serialized on the reactor's thread, then sealed to my own 2048-bit key and signed (a worker thread), one payload
for every supplier's copy. Measured: the resident memory the entries take, the save's CPU and the bytes it sends
(every save sends the whole catalog to every supplier), the peak resident memory of the save, and whether the copy
fits the 64 MiB a TCP file may have (else no supplier can hold it: a fresh machine would find nothing). One line a
count, `catalog_scale files=..`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(files: int, blocks_a_file: int, suppliers: int) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from bitdust_node.crypto import block as blocks
    from bitdust_node.crypto.keys import generate_key
    from bitdust_node.heap import keep_packet_buffers
    from bitdust_node.storage.catalog import BlockInfo, Catalog, Version
    from bitdust_node.transport.limits import TcpLimits
    from bitdust_node.wire import packet_fast
    from bitdust_node.wire.packet import Packet

    keep_packet_buffers()  # as a node runs
    key = generate_key(2048)
    holders = [f"http://127.0.0.1:8084/supplier{n}.xml" for n in range(suppliers)]
    before = rss_mib()
    catalog = Catalog(1)
    now = time.time()
    for number in range(files):
        entry = catalog.ensure(f"folder{number % 100}/file{number}.bin", "file", now)
        version = Version("F20261207075109PM", blocks_a_file * 4 << 20, now, 4 << 20, list(holders))
        version.blocks = [BlockInfo(4 << 20, (4 << 20) + 16, base64.b64encode(os.urandom(256)).decode(),
                                    base64.b64encode(os.urandom(12)).decode(),
                                    ["b3:" + os.urandom(32).hex() for _ in range(suppliers)])
                          for _block in range(blocks_a_file)]
        version.complete = True
        entry.versions.append(version)
    objects = rss_mib() - before
    started_cpu, started = time.process_time(), time.perf_counter()
    text = catalog.serialize()
    serialize_ms = (time.perf_counter() - started) * 1000
    payload = blocks.seal(text, "master$me@127.0.0.1_8084:.index", "http://127.0.0.1:8084/me.xml", key.public_key(),
                          key)
    # one copy's packet as it is framed (the payload once; the fields around it are a few hundred bytes)
    me = "http://127.0.0.1:8084/me.xml"
    copy = Packet(command="Data", owner_id=me, creator_id=me, packet_id="master$me@127.0.0.1_8084:.index.0.1",
                  date="now", payload=payload, remote_id=holders[0], key_id="master$me@127.0.0.1_8084", signature="1")
    packet_bytes = sum(len(part) for part in packet_fast.serialize_parts(copy))
    save_cpu_ms = (time.process_time() - started_cpu) * 1000
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"files": files, "objects_mib": objects, "text_mib": len(text) / 2**20, "serialize_ms": serialize_ms,
            "save_cpu_ms": save_cpu_ms, "copy_mib": packet_bytes / 2**20,
            "sent_mib": packet_bytes * suppliers / 2**20, "peak_mib": peak,
            "fits": packet_bytes <= TcpLimits().max_file_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", default="1000,10000,16000", help="file counts, comma-separated")
    parser.add_argument("--blocks", type=int, default=4, help="blocks a file (4: a 16 MiB file)")
    parser.add_argument("--suppliers", type=int, default=4)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args.one, args.blocks, args.suppliers)))
        return
    for files in (int(n) for n in args.files.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", str(files), "--blocks", str(args.blocks),
                              "--suppliers", str(args.suppliers)], capture_output=True, text=True, check=True)
        got = json.loads(out.stdout)
        print(f"catalog_scale files={files} blocks={args.blocks} objects_mib={got['objects_mib']:.1f} "
              f"text_mib={got['text_mib']:.1f} serialize_ms={got['serialize_ms']:.0f} "
              f"save_cpu_ms={got['save_cpu_ms']:.0f} sent_mib={got['sent_mib']:.1f} peak_mib={got['peak_mib']:.0f} "
              f"fits_a_packet={'yes' if got['fits'] else 'no'}", flush=True)


if __name__ == "__main__":
    main()
