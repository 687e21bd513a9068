"""A supplier with 1,000 customers and a million stored pieces: how long its start takes and what it holds.

    .venv/bin/python benchmarks/supplier_scale.py [--customers 1000] [--pieces 1000] [--piece-bytes 100]
        [--data DIR] [--against DIR]

The supplier's home is made once in --data (kept for later runs; a million small files take a minute or two to
write): `customers/<customer>/master/<n>/<version>/<block>-<position>-Data|Parity` as customers store them,
--pieces a customer of --piece-bytes each, and `supplier/customers.json` listing the customers with their quotas.
Each start is a fresh process that builds what service_supplier builds from the home (the piece store, the
customers, the patrol of idle customers, the supplier on a gateway), with the page cache warm from the previous
runs, then decides one Data packet's quota for a customer (which needs that customer's use). Measured:

* after a crash (no orderly stop recorded): start time, the first quota decision (its customer's folder counted),
  resident memory, then the whole store counted (what /space/donated/v1 asks for) and the memory after it;
* after an orderly stop (the usage file it leaves): start time, first quota decision, resident memory.

With --against DIR (a checkout of an earlier commit: `git worktree add DIR COMMIT`) that tree's start runs too,
in the same minutes. Ends with one line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VERSION = "F20261201075109PM"
FILES_A_CUSTOMER = 10


def customer_id(number: int) -> str:
    return f"customer{number:04d}@127.0.0.1_8084"


def make_home(home: Path, customers: int, pieces: int, piece_bytes: int) -> None:
    """The pieces as small files, written directly (os calls, no pathlib), and the customers' file."""
    marker = home / "made.json"
    wanted = {"customers": customers, "pieces": pieces, "piece_bytes": piece_bytes}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return
    if home.exists():
        subprocess.run(["rm", "-rf", str(home)], check=True)
    started = time.monotonic()
    body = os.urandom(piece_bytes)
    blocks = pieces // FILES_A_CUSTOMER // 2
    for number in range(customers):
        for path_id in range(1, FILES_A_CUSTOMER + 1):
            folder = os.path.join(home, "customers", customer_id(number), "master", str(path_id), VERSION)
            os.makedirs(folder)
            for block in range(blocks):
                for kind in ("Data", "Parity"):
                    fd = os.open(os.path.join(folder, f"{block}-{path_id % 4}-{kind}"), os.O_WRONLY | os.O_CREAT,
                                 0o600)
                    os.write(fd, body)
                    os.close(fd)
        if number % 100 == 99:
            print(f"  {number + 1} customers written in {time.monotonic() - started:.0f} s", file=sys.stderr)
    listed = [{"idurl": f"http://127.0.0.1:8084/customer{n:04d}.xml", "global_id": customer_id(n),
               "allocated": 1 << 30, "ecc_map": "ecc/2x2", "position": 0, "family": [], "since": 0.0}
              for n in range(customers)]
    (home / "supplier").mkdir(parents=True)
    (home / "supplier" / "customers.json").write_text(json.dumps({"customers": listed}, indent=1))
    marker.write_text(json.dumps(wanted))


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start(home: Path, orderly_stop: bool) -> dict[str, Any]:
    """In a fresh process: the supplier's parts built from the home as service_supplier builds them."""
    import inspect

    from twisted.internet.task import Clock

    from bitdust_node.identity.cache import IdentityCache
    from bitdust_node.identity.holder import MyIdentityHolder
    from bitdust_node.net.http import CappedHttp
    from bitdust_node.storage.customers import Customers
    from bitdust_node.storage.patrol import CustomerPatrol
    from bitdust_node.storage.store import PieceStore
    from bitdust_node.storage.supplier import Supplier
    from bitdust_node.transport.gateway import Gateway

    clock = Clock()
    holder = MyIdentityHolder(home / "identity-none")
    gateway = Gateway(clock, holder, IdentityCache(home / "cache", CappedHttp(clock)))
    usage = home / "supplier" / "usage.json"
    if orderly_stop is False and usage.exists():
        usage.unlink()  # as a crash leaves it (or a first start of this code)
    before = rss_mib()
    started = time.perf_counter()
    # what SupplierService.start builds (an earlier tree's PieceStore takes no usage file)
    takes_usage = "usage_file" in inspect.signature(PieceStore).parameters
    store = PieceStore(home / "customers", usage) if takes_usage else PieceStore(home / "customers")
    customers = Customers.load(home / "supplier" / "customers.json")
    supplier = Supplier(gateway, holder, store, customers, lambda: 1 << 50, clock, disk_in_thread=False)
    supplier.start()
    patrol = CustomerPatrol(gateway, supplier, home / "supplier", clock, lambda: 14.0,
                            worker=lambda f, *a: f(*a))
    patrol.start()
    start_s = time.perf_counter() - started
    # a Data packet's quota decision for one customer: its use so far, and what its piece would add
    started = time.perf_counter()
    some = customers.get(f"http://127.0.0.1:8084/customer{len(customers.by_idurl) // 2:04d}.xml")
    assert some is not None
    over = store.used[some.global_id] + 100 > some.allocated
    first_quota_ms = (time.perf_counter() - started) * 1000
    figures = {"start_s": start_s, "first_quota_ms": first_quota_ms, "over_quota": over,
               "rss_mib": rss_mib(), "rss_before_mib": before, "used_one": store.used[some.global_id]}
    if not orderly_stop:
        started = time.perf_counter()
        if hasattr(store.used, "count_unknown"):  # what Supplier.usage_of_all has the disk worker count
            store.used.update(store.used.count_unknown())
            everyone = dict(store.used)
        else:  # an earlier tree
            everyone = store.used.everyone() if hasattr(store.used, "everyone") else dict(store.used)
        figures.update(count_all_s=time.perf_counter() - started, rss_counted_mib=rss_mib(),
                       used_all=sum(everyone.values()))
    if takes_usage:
        store.close()  # the orderly stop: the next start reads the usage file
    return figures


def child(tree: Path, home: Path, orderly_stop: bool) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    args = [sys.executable, str(Path(__file__).resolve()), "--role", "start", "--data", str(home)]
    done = subprocess.run([*args, *(["--orderly"] if orderly_stop else [])], capture_output=True, text=True,
                          env=env, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--pieces", type=int, default=1000, help="pieces a customer")
    parser.add_argument("--piece-bytes", type=int, default=100)
    parser.add_argument("--data", default="/tmp/supplier_scale.data", help="where the supplier's home is kept")
    parser.add_argument("--against", help="a checkout of an earlier commit, started in the same minutes")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--orderly", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    home = Path(args.data)
    if args.role == "start":
        print(json.dumps(start(home, args.orderly)))
        return
    make_home(home, args.customers, args.pieces, args.piece_bytes)
    pieces = args.customers * (args.pieces // FILES_A_CUSTOMER // 2) * 2 * FILES_A_CUSTOMER
    child(ROOT, home, orderly_stop=False)  # the page cache warmed by a walk of the whole store
    earlier = child(Path(args.against).resolve(), home, orderly_stop=False) if args.against else None
    crashed = child(ROOT, home, orderly_stop=False)
    orderly = child(ROOT, home, orderly_stop=True)
    if earlier is not None:
        print(f"earlier tree {args.against}: start {earlier['start_s']:.2f} s, first quota decision "
              f"{earlier['first_quota_ms']:.1f} ms, resident {earlier['rss_mib']:.1f} MiB", file=sys.stderr)
    print(f"after a crash: start {crashed['start_s']:.3f} s, first quota decision {crashed['first_quota_ms']:.1f} ms"
          f" (one customer's {args.pieces} pieces counted), resident {crashed['rss_mib']:.1f} MiB; the whole store "
          f"counted in {crashed['count_all_s']:.1f} s, then resident {crashed['rss_counted_mib']:.1f} MiB",
          file=sys.stderr)
    line = (f"supplier_scale customers={args.customers} pieces={pieces} start_s={orderly['start_s']:.3f} "
            f"first_quota_ms={orderly['first_quota_ms']:.2f} rss_mib={orderly['rss_mib']:.1f} "
            f"index_mib={orderly['rss_mib'] - orderly['rss_before_mib']:.1f} "
            f"crash_start_s={crashed['start_s']:.3f} crash_first_quota_ms={crashed['first_quota_ms']:.1f} "
            f"crash_rss_mib={crashed['rss_mib']:.1f} count_all_s={crashed['count_all_s']:.1f} "
            f"counted_rss_mib={crashed['rss_counted_mib']:.1f}")
    if earlier is not None:
        line += (f" earlier_start_s={earlier['start_s']:.2f} earlier_rss_mib={earlier['rss_mib']:.1f}"
                 f" earlier_index_mib={earlier['rss_mib'] - earlier['rss_before_mib']:.1f}")
    print(line)


if __name__ == "__main__":
    main()
