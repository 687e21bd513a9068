"""Our DHT against the `kademlia` package: N nodes on loopback UDP, same k and alpha.

    python benchmarks/dht_bench.py [--sizes 64 128 512] [--ops 50] [--runs 3]

Each (system, N) runs in its own process so memory figures do not mix, `--runs` times, the two
systems taking turns. Prints one line per system and N, each figure the median of the runs:
bootstrap time of all nodes, median/p95 latency of set and get, get success rate, RPCs per get
lookup (requests received by all nodes during the get), and peak memory per node.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import random
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

K = 4
ALPHA = 4


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def peak_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# in a --traced run the Python heap is measured with tracemalloc (too slow for timing runs)
TRACED = "--traced" in sys.argv


def memory_start() -> int:
    if TRACED:
        tracemalloc.start()
        return 0
    return rss_kb()


def memory_peak_kb(base: int) -> float:
    if TRACED:
        return tracemalloc.get_traced_memory()[1] / 1024
    return float(peak_kb() - base)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def summary(
    system: str, n: int, boot: float, sets: list[float], gets: list[float], ok: int, rpcs: list[int], base_kb: int
) -> dict[str, Any]:
    return {
        "system": system,
        "n": n,
        "bootstrap_s": round(boot, 3),
        "set_p50_ms": round(statistics.median(sets) * 1000, 2),
        "set_p95_ms": round(p95(sets) * 1000, 2),
        "get_p50_ms": round(statistics.median(gets) * 1000, 2),
        "get_p95_ms": round(p95(gets) * 1000, 2),
        "get_success_pct": round(100.0 * ok / len(gets), 1),
        "rpcs_per_lookup": round(statistics.mean(rpcs), 2),
        "peak_kb_per_node": round(memory_peak_kb(base_kb) / n, 1),
    }


def plan(n: int, ops: int) -> list[tuple[str, int, int]]:
    """(key name, writer index, reader index), the same for both systems."""
    rng = random.Random(n * 1000 + ops)
    out = []
    for i in range(ops):
        writer = rng.randrange(n)
        reader = rng.choice([j for j in range(n) if j != writer])
        out.append((f"bench-key-{i}", writer, reader))
    return out


# -- bitdust-node


def run_ours(n: int, ops: int) -> dict[str, Any]:
    from twisted.internet import defer, task

    from bitdust_node.dht.node import DhtConfig, DhtNode
    from bitdust_node.dht.protocol import DhtProtocol
    from bitdust_node.dht.store import dump_value

    async def main(reactor: Any) -> dict[str, Any]:
        base = memory_start()
        nodes = []
        for _ in range(n):
            protocol = DhtProtocol(reactor)
            node = DhtNode(protocol, reactor, DhtConfig(k=K, alpha=ALPHA))
            port = reactor.listenUDP(0, protocol, interface="127.0.0.1", maxPacketSize=65535)
            node.udp_port = port.getHost().port
            node.start()
            nodes.append(node)
        seed = ("127.0.0.1", nodes[0].udp_port)
        start = time.perf_counter()
        for node in nodes[1:]:
            await node.join([seed])
        boot = time.perf_counter() - start

        def requests() -> int:
            return sum(sum(s.rpc_calls.values()) for nd in nodes for s in nd.protocol.stats.values())

        sets, gets, rpcs, ok = [], [], [], 0
        steps = plan(n, ops)
        for name, writer, _ in steps:
            key = hashlib.sha1(name.encode()).hexdigest()
            t = time.perf_counter()
            await nodes[writer].set_value(key, dump_value({"type": "bench", "name": name}))
            sets.append(time.perf_counter() - t)
        for name, _, reader in steps:
            key = hashlib.sha1(name.encode()).hexdigest()
            before = requests()
            t = time.perf_counter()
            found, _ = await nodes[reader].find_value(key)
            gets.append(time.perf_counter() - t)
            rpcs.append(requests() - before)
            ok += found is not None and json.loads(found.value).get("name") == name
        out = summary("bitdust-node", n, boot, sets, gets, ok, rpcs, base)
        for node in nodes:
            node.stop()
        await defer.succeed(None)
        return out

    result: dict[str, Any] = {}

    async def wrapped(reactor: Any) -> None:
        result.update(await main(reactor))

    try:
        task.react(lambda reactor: defer.ensureDeferred(wrapped(reactor)))
    except SystemExit:
        pass
    return result


# -- kademlia (PyPI)


def run_kademlia(n: int, ops: int) -> dict[str, Any]:
    from kademlia.network import Server
    from kademlia.protocol import KademliaProtocol

    logging.getLogger("kademlia").setLevel(logging.CRITICAL)
    logging.getLogger("rpcudp").setLevel(logging.CRITICAL)
    counter = {"requests": 0}
    original = KademliaProtocol._accept_request

    async def counting(self: Any, msg_id: Any, data: Any, address: Any) -> Any:
        counter["requests"] += 1
        return await original(self, msg_id, data, address)

    KademliaProtocol._accept_request = counting  # type: ignore[method-assign]

    async def main() -> dict[str, Any]:
        base = memory_start()
        servers = []
        for _ in range(n):
            server = Server(ksize=K, alpha=ALPHA)
            await server.listen(0, interface="127.0.0.1")
            servers.append(server)
        seed_port = servers[0].transport.get_extra_info("sockname")[1]
        start = time.perf_counter()
        for server in servers[1:]:
            await server.bootstrap([("127.0.0.1", seed_port)])
        boot = time.perf_counter() - start
        sets, gets, rpcs, ok, set_errors = [], [], [], 0, 0
        steps = plan(n, ops)
        for name, writer, _ in steps:
            t = time.perf_counter()
            try:
                await servers[writer].set(name, json.dumps({"type": "bench", "name": name}))
            except ValueError:
                # kademlia 2.2.3 raises from set_digest when its crawl comes back empty
                set_errors += 1
            sets.append(time.perf_counter() - t)
        for name, _, reader in steps:
            before = counter["requests"]
            t = time.perf_counter()
            value = await servers[reader].get(name)
            gets.append(time.perf_counter() - t)
            rpcs.append(counter["requests"] - before)
            ok += value is not None and json.loads(value).get("name") == name
        out = summary("kademlia", n, boot, sets, gets, ok, rpcs, base)
        out["set_errors"] = set_errors
        for server in servers:
            server.stop()
        return out

    return asyncio.run(main())


def line(r: dict[str, Any]) -> str:
    return (
        f"{r['system']:<13} N={r['n']:<4} bootstrap={r['bootstrap_s']:.3f}s "
        f"set p50={r['set_p50_ms']:.2f}ms p95={r['set_p95_ms']:.2f}ms "
        f"get p50={r['get_p50_ms']:.2f}ms p95={r['get_p95_ms']:.2f}ms "
        f"get_success={r['get_success_pct']:.1f}% rpcs/lookup={r['rpcs_per_lookup']:.2f} "
        f"peak_heap/node={r['peak_kb_per_node']:.1f}KiB"
        + (f" set_errors={r['set_errors']}" if r.get("set_errors") else "")
    )


def worker(system: str, n: int, ops: int, traced: bool) -> dict[str, Any] | str:
    """Run one system in a fresh process; the parsed figures, or the error text."""
    command = [sys.executable, __file__, "--worker", system, "--sizes", str(n), "--ops", str(ops)]
    proc = subprocess.run(command + (["--traced"] if traced else []), capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return proc.stderr.strip()[-300:]
    figures: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 512])
    parser.add_argument("--ops", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3, help="runs of each system per N; medians are printed")
    parser.add_argument("--worker", choices=("bitdust-node", "kademlia"), help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run = run_ours if args.worker == "bitdust-node" else run_kademlia
        print(json.dumps(run(args.sizes[0], args.ops)))
        return
    for n in args.sizes:
        # the systems take turns, so a slow spell of this shared machine falls on both
        runs: dict[str, list[dict[str, Any]]] = {"bitdust-node": [], "kademlia": []}
        failed: dict[str, str] = {}
        for _ in range(args.runs):
            for system in runs:
                timed = worker(system, n, args.ops, traced=False)
                if isinstance(timed, str):
                    failed[system] = timed
                else:
                    runs[system].append(timed)
        for system, results in runs.items():
            traced = worker(system, n, args.ops, traced=True)
            if system in failed or isinstance(traced, str):
                print(f"{system:<13} N={n:<4} FAILED: {failed.get(system) or traced}")
                continue
            # each timing the median of the runs, the heap peak from the tracemalloc run
            figures = median_figures(results)
            figures["peak_kb_per_node"] = traced["peak_kb_per_node"]
            print(line(figures), flush=True)


def median_figures(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Each numeric figure's median over the runs (the other fields from the first run)."""
    out = dict(results[0])
    for key, value in out.items():
        if isinstance(value, (int, float)) and key != "n":
            out[key] = statistics.median(r[key] for r in results)
    return out

if __name__ == "__main__":
    main()
