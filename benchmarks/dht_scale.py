"""The DHT at 1,000 and 10,000 nodes, simulated: the real protocol, routing and upkeep code of every
node, over an in-memory datagram network on one clock (tests/dht/simnet.py), no sockets.

    .venv/bin/python benchmarks/dht_scale.py [--sizes 1000,10000] [--values 200] [--lookups 300] [--rpc-timeout 10]

For each N: the nodes join one by one through the first three; random-key lookups from random nodes
(hops, RPCs, whether the k closest found are the true k closest) against log2(N); values set from
random nodes and read from others; then 10 % and, on a freshly grown network, 30 % of the nodes
are killed without a word and the values read again, before and after one repair round (one upkeep
period of every survivor: pings of the neighbours of held keys, then re-replication). Right after
each kill (before the repair), how long lookups take in simulated seconds, mean, median and p95: random-key
findNode lookups and reads of stored values, each from a node that has not looked up anything since
the kill, taking turns between the short timeout (a call unanswered for a few round trips no longer
holds the lookup up, dht/patience.py) and waiting every call out to the RPC timeout (10 s, then a retry,
as before it). Memory per node is the growth of this process's resident memory while growing, divided
by N. One line per N, then the growth from the first size to the last and tables for the README. "still held" is the
share of values with at least one live holder: what no lookup can beat.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from dht_bench import ALPHA, K, rss_kb  # noqa: E402

from bitdust_node.dht.layers import DhtConfig  # noqa: E402
from bitdust_node.dht.routing import id_int  # noqa: E402
from tests.dht.simnet import SimDht  # noqa: E402

# simulated seconds a lookup may take: waiting out the dead, one after another, takes minutes
PATIENT = 1800.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def grown(n: int, seed: int, rpc_timeout: float) -> tuple[SimDht, float, int]:
    before = rss_kb()
    started = time.perf_counter()
    sim = SimDht(DhtConfig(k=K, alpha=ALPHA), seed=seed, rpc_timeout=rpc_timeout)
    sim.grow(n)
    sim.clock.advance(5.0)  # the last joins' lookups and answers settle
    return sim, time.perf_counter() - started, (rss_kb() - before) * 1024 // n


def lookups(sim: SimDht, count: int) -> dict[str, float]:
    hops, rpcs, exact = [], [], 0
    alive = sim.alive()
    ids = sorted((id_int(n.node_id), n.node_id) for n in alive)
    for _ in range(count):
        node = sim.rng.choice(alive)
        target = sim.rng.getrandbits(160)
        result = sim.resolve(node.find_node(f"{target:040x}"))
        hops.append(result.hops)
        rpcs.append(result.rpcs)
        truth = {nid for _, nid in sorted(ids, key=lambda pair: pair[0] ^ target)[:K] if nid != node.node_id}
        found = {c.node_id for c in result.closest}
        exact += truth <= found | {node.node_id}
    return {
        "hops_mean": statistics.fmean(hops), "hops_p95": percentile(hops, 0.95), "hops_max": max(hops),
        "rpcs_mean": statistics.fmean(rpcs), "exact": exact / count,
    }


def set_values(sim: SimDht, count: int) -> dict[str, str]:
    values = {}
    for number in range(count):
        key = hashlib.sha1(b"value-%d" % number).hexdigest()
        value = json.dumps({"type": "note", "number": number})
        publisher = sim.rng.choice(sim.alive())
        stored, _ = sim.resolve(publisher.set_value(key, value))
        if not stored:
            raise SystemExit(f"value {number} was stored nowhere")
        values[key] = value
    return values


def get_success(sim: SimDht, values: dict[str, str]) -> float:
    alive = sim.alive()
    found = 0
    for key, value in values.items():
        reader = sim.rng.choice(alive)
        item, _ = sim.resolve(reader.find_value(key))
        found += item is not None and item.value == value
    return found / len(values)


def latencies(sim: SimDht, values: dict[str, str], count: int) -> dict[str, float]:
    """Simulated seconds of `count` lookups and `count` reads with the short timeout and as many without,
    taking turns, each from a node that has not looked anything up since the kill (its table still holds
    the dead, as every table does until its own calls time out)."""
    fresh = sim.rng.sample(sim.alive(), min(len(sim.alive()), 4 * count))
    keys = list(values)
    took: dict[str, list[float]] = {"lookup_on": [], "lookup_off": [], "get_on": [], "get_off": []}
    for turn in range(min(count, len(fresh) // 4)):
        modes = ("on", "off") if turn % 2 == 0 else ("off", "on")
        for mode in modes:
            sim.config.short_timeout = mode == "on"
            target = f"{sim.rng.getrandbits(160):040x}"
            took[f"lookup_{mode}"].append(sim.timed(fresh.pop().find_node(target), PATIENT)[1])
            took[f"get_{mode}"].append(sim.timed(fresh.pop().find_value(sim.rng.choice(keys)), PATIENT)[1])
    sim.config.short_timeout = True
    figures = {}
    for name, seconds in took.items():
        # about half the lookups meet a dead node: the median jumps between the two, the mean does not
        figures[f"{name}_mean"] = statistics.fmean(seconds)
        figures[f"{name}_p50"] = statistics.median(seconds)
        figures[f"{name}_p95"] = percentile(seconds, 0.95)
    return figures


LATENCIES = ("lookup_on", "lookup_off", "get_on", "get_off")


def seconds(figures: dict[str, float], name: str, between: str) -> str:
    return between.join(f"{figures[f'{name}_{which}']:.2f}" for which in ("mean", "p50", "p95"))


def repair_round(sim: SimDht) -> None:
    config = sim.config
    # every survivor's upkeep ticks once; silent neighbours time out and the repair follows
    sim.clock.advance(config.maintenance_interval + config.repair_delay + 4 * sim.rpc_timeout)


def kill_scenario(n: int, fraction: float, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    sim, build_s, per_node = grown(n, seed, args.rpc_timeout)
    figures: dict[str, Any] = {"build_s": build_s, "bytes_per_node": per_node}
    figures.update(lookups(sim, args.lookups))
    values = set_values(sim, args.values)
    figures["get_ok"] = get_success(sim, values)
    sim.kill(fraction)
    # the ceiling: a value all of whose holders died is gone whatever the lookups do
    alive = sim.alive()
    figures["surviving"] = sum(any(n.holds(key) for n in alive) for key in values) / len(values)
    figures["killed_get_ok"] = get_success(sim, values)
    figures["killed"] = latencies(sim, values, args.lookups // 3)
    repair_round(sim)
    figures["repaired_get_ok"] = get_success(sim, values)
    after = lookups(sim, args.lookups // 3)
    figures["killed_hops_mean"] = after["hops_mean"]
    figures["killed_rpcs_mean"] = after["rpcs_mean"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--values", type=int, default=200)
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--rpc-timeout", type=float, default=10.0, help="seconds (the network's constant: 10)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for n in sizes:
        ten = kill_scenario(n, 0.10, args, seed=n)
        thirty = kill_scenario(n, 0.30, args, seed=n + 1)
        log2n = math.log2(n)
        row = {"n": n, "log2n": log2n, **ten, "thirty_killed_get_ok": thirty["killed_get_ok"],
               "thirty_killed": thirty["killed"],
               "thirty_surviving": thirty["surviving"],
               "thirty_repaired_get_ok": thirty["repaired_get_ok"], "thirty_hops_mean": thirty["killed_hops_mean"]}
        rows.append(row)
        print(
            f"dht_scale n={n} log2n={log2n:.2f} hops_mean={row['hops_mean']:.2f} hops_p95={row['hops_p95']:.0f} "
            f"hops_max={row['hops_max']} rpcs_mean={row['rpcs_mean']:.1f} exact_k_closest={row['exact']:.3f} "
            f"get_ok={row['get_ok']:.3f} kill10_get_ok={row['killed_get_ok']:.3f} "
            f"kill10_repaired_get_ok={row['repaired_get_ok']:.3f} kill10_held={row['surviving']:.3f} "
            f"kill30_held={row['thirty_surviving']:.3f} kill30_get_ok={row['thirty_killed_get_ok']:.3f} "
            f"kill30_repaired_get_ok={row['thirty_repaired_get_ok']:.3f} "
            f"kill30_hops_mean={row['thirty_hops_mean']:.2f} "
            f"bytes_per_node={row['bytes_per_node']} grow_s={row['build_s']:.1f} k={K} alpha={ALPHA}",
            flush=True,
        )
        for label, killed in (("kill10", row["killed"]), ("kill30", row["thirty_killed"])):
            print(f"dht_scale n={n} {label} simulated seconds (mean/p50/p95) rpc_timeout={args.rpc_timeout:g}: "
                  + " ".join(f"{name}={seconds(killed, name, '/')}" for name in LATENCIES), flush=True)
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        print(
            f"growth {first['n']}->{last['n']}: log2n x{last['log2n'] / first['log2n']:.2f}, "
            f"hops x{last['hops_mean'] / first['hops_mean']:.2f}, rpcs x{last['rpcs_mean'] / first['rpcs_mean']:.2f}, "
            f"bytes/node x{last['bytes_per_node'] / max(1, first['bytes_per_node']):.2f}"
        )
    print()
    print("| N | log2 N | hops mean / p95 / max | RPCs per lookup | exact k closest | get ok | 10 % killed: "
          "still held / before / after repair | 30 % killed: still held / before / after repair | memory per node |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['n']:,} | {r['log2n']:.1f} | {r['hops_mean']:.2f} / {r['hops_p95']:.0f} / {r['hops_max']} | "
            f"{r['rpcs_mean']:.1f} | {r['exact'] * 100:.1f} % | {r['get_ok'] * 100:.1f} % | "
            f"{r['surviving'] * 100:.1f} / {r['killed_get_ok'] * 100:.1f} / {r['repaired_get_ok'] * 100:.1f} % | "
            f"{r['thirty_surviving'] * 100:.1f} / {r['thirty_killed_get_ok'] * 100:.1f} / "
            f"{r['thirty_repaired_get_ok'] * 100:.1f} % | "
            f"{r['bytes_per_node'] / 1024:.1f} KiB |"
        )
    print()
    print("| N | killed | lookup s, short timeout: mean / median / p95 | waiting every call out | "
          "value read s, short timeout | waiting every call out |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        for share, killed in (("10 %", r["killed"]), ("30 %", r["thirty_killed"])):
            print(f"| {r['n']:,} | {share} | " + " | ".join(
                seconds(killed, name, " / ") for name in LATENCIES) + " |")


if __name__ == "__main__":
    main()
