"""Relayed against direct: Data packets from alice to bob through a proxy router, next to the same transfer
over a direct session between them, in one run (three processes on loopback).

    .venv/bin/python benchmarks/relay_bench.py [--mib 64] [--packet-kib 1024] [--rounds 20]

Direct: alice -> bob, bob's signed Ack back. Relayed: bob rents a route on the router (RequestService, his
identity republished with the router's contact); alice sends to the router's address, the router wraps each
packet as RelayIn encrypted to bob, bob's Ack goes back as RelayOut and the router forwards it to alice.
Figures: the round trip of one 1 MiB packet (median of --rounds), 64 MiB throughput (MB/s, 16 packets in
flight), ping p50, and the router's resident memory at rest and at its peak (per route: the difference).
Ends with one line and the ratio relayed/direct, then a line for each side (sender, router, receiver) of the
relayed transfer: the CPU it spent over the throughput phase a MiB of payload (`cpu_per_mib_ms`) next to the
protocol's floor (`floor_ms`, benchmarks/relay_floor.py, its pieces timed in this run before and after the
transfers, the lower taken), and the same for the direct transfer's two sides. Each process is composed as in a
node (one receive budget for its transport, gateway and router; the node's heap tuning); the sender base64-encodes
each piece as a customer does.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# the node code the processes run: this tree's, or an earlier commit's checkout (--code)
CODE = Path(os.environ.get("RELAY_BENCH_CODE", ROOT))
sys.path.insert(0, str(CODE))
sys.path.insert(0, str(ROOT / "benchmarks"))

ADDRESSES = {"alice": "127.0.0.50", "bob": "127.0.0.51", "router": "127.0.0.52"}
PORT = 7771
WINDOW = 16


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def idurl(name: str) -> str:
    return f"http://127.0.0.1:8084/{name}.xml"


# -- the parts of a node the relay path uses, each the real one


class Parts:
    def __init__(self, name: str, homes: Path) -> None:
        from twisted.internet import reactor

        from bitdust_node.identity.cache import IdentityCache
        from bitdust_node.identity.holder import MyIdentityHolder
        from bitdust_node.net.budget import ReceiveBudget
        from bitdust_node.net.http import CappedHttp
        from bitdust_node.transport.gateway import Gateway
        from bitdust_node.transport.hookups import Hookups
        from bitdust_node.transport.tcp import TcpNode

        self.name, self.homes, self.reactor = name, homes, reactor
        # one receive budget for the transport, the gateway and a router, as service_network hands it out
        self.budget = ReceiveBudget()
        home = homes / name
        self.holder = MyIdentityHolder.load(home)
        self.cache = IdentityCache(home / "cache", CappedHttp(reactor))
        self.cache.load()
        self.learn_identities()
        self.gateway = Gateway(reactor, self.holder, self.cache, budget=self.budget)
        self.hookups = Hookups(self.gateway, self.holder, self.cache, reactor, lambda service: "ON")
        address = ADDRESSES[name]
        self.tcp = TcpNode(reactor, lambda: (address, PORT), lambda: self.holder.require().idurl,
                           lambda connection, data: self.gateway.file_received(data, connection), bind_source=True,
                           budget=self.budget)
        self.gateway.attach(self.tcp)
        reactor.listenTCP(PORT, self.tcp.factory(), interface=address)  # type: ignore[attr-defined]

    def learn_identities(self) -> None:
        """Everyone's newest identity from the shared folder (there is no identity server in this run)."""
        for other in ADDRESSES:
            if other != self.name:
                self.cache.accept(idurl(other), (self.homes / f"{other}.xml").read_bytes())

    def ack_data(self) -> None:
        def on_data(inbound: Any) -> None:
            self.gateway.reply(inbound, "Ack", str(len(inbound.packet.payload)).encode())

        self.gateway.register("Data", on_data)

    def run_until_stdin_closes(self, ready: dict[str, Any]) -> None:
        self.serve(ready)
        self.reactor.run()  # type: ignore[attr-defined]

    def serve(self, ready: dict[str, Any]) -> None:
        """Say READY (with `ready`); say MARK with the CPU spent so far when the parent says `mark`; when the parent
        closes stdin, print the peak memory and stop."""
        from twisted.internet import protocol, stdio
        from twisted.protocols.basic import LineReceiver

        parts = self

        class Control(LineReceiver):
            delimiter = b"\n"

            def lineReceived(self, line: bytes) -> None:
                print("MARK " + json.dumps({"cpu": cpu_seconds()}), flush=True)

            def connectionLost(self, reason: Any = protocol.connectionDone) -> None:
                print(json.dumps({"peak_mib": peak_mib(), "cpu": cpu_seconds(), **parts.extra()}), flush=True)
                parts.reactor.stop()  # type: ignore[attr-defined]

        stdio.StandardIO(Control())
        print("READY " + json.dumps(ready), flush=True)

    def extra(self) -> dict[str, Any]:
        return {}


class SharedFolderPublisher:
    """Publishes bob's new contacts the way identity_propagate does, to the run's shared folder."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    def use_contacts(self, contacts: tuple[str, ...] | None) -> Any:
        from twisted.internet import defer

        me = self.parts.holder.require()
        wanted = contacts or (f"tcp://{ADDRESSES[self.parts.name]}:{PORT}",)
        if wanted != me.identity.contacts:
            newer = me.next_revision(wanted, time.time())
            self.parts.holder.adopt(newer)
            (self.parts.homes / f"{self.parts.name}.xml").write_bytes(newer.xml)
        return defer.succeed(None)


class NoDhtLookup:
    async def random_nodes(self, layer_id: int, count: int = 1) -> list[Any]:
        raise LookupError("this run names its router in preferred routers; there is no DHT")


def run_router(homes: Path) -> None:
    from bitdust_node.proxy.router import SERVICE_NAME, ProxyRouter, RouterLimits

    parts = Parts("router", homes)
    router = ProxyRouter(parts.gateway, parts.holder, parts.cache, parts.reactor, parts.tcp.sessions_of,
                         RouterLimits(route_rate=0), budget=parts.budget)
    router.start()
    parts.hookups.accept_requests(SERVICE_NAME, router)
    parts.extra = lambda: {"routes": len(router.routes), "relayed": dict(router.counters),  # type: ignore[method-assign]
                           "budget_peak": parts.budget.peak}
    parts.run_until_stdin_closes({"rss_mib": rss_mib()})


def run_bob(homes: Path, routed: bool) -> None:
    from twisted.internet import task

    from bitdust_node.fsm import Registry
    from bitdust_node.proxy.client import ProxyClient

    parts = Parts("bob", homes)
    parts.ack_data()
    if not routed:
        parts.run_until_stdin_closes({})
        return
    client = ProxyClient(parts.gateway, parts.holder, parts.cache, parts.reactor, NoDhtLookup(), parts.tcp,
                         SharedFolderPublisher(parts), lambda: [idurl("router")],
                         Registry().register("proxy_receiver", "AT_STARTUP"))
    client.start()

    def check() -> None:
        if client.listening:
            poll.stop()
            parts.serve({"router": client.router.sources[0] if client.router else None})

    poll = task.LoopingCall(check)
    poll.start(0.05)
    parts.reactor.run()  # type: ignore[attr-defined]


def run_alice(homes: Path, total: int, packet_bytes: int, rounds: int) -> None:
    import pybase64
    from twisted.internet import defer, stdio
    from twisted.protocols.basic import LineReceiver

    parts = Parts("alice", homes)
    gateway, reactor = parts.gateway, parts.reactor
    bob = parts.cache.get(idurl("bob"))
    assert bob is not None
    piece = os.urandom(packet_bytes * 3 // 4)
    told: list[defer.Deferred[None]] = []

    class Told(LineReceiver):
        delimiter = b"\n"

        def lineReceived(self, line: bytes) -> None:
            told.pop(0).callback(None)

    stdio.StandardIO(Told())

    def phase(name: str) -> defer.Deferred[None]:
        """Say the phase that begins; go on when the parent says so (it marks the others' CPU meanwhile)."""
        told.append(defer.Deferred())
        print("PHASE " + name, flush=True)
        return told[-1]

    async def one(number: int) -> None:
        # a file piece travels as base64 made for its packet, as a customer makes it
        payload = pybase64.b64encode(piece)
        packet = gateway.outbox("Data", bob.sources[0], payload, packet_id=f"bench/{number}", payload_is_base64=True)
        answer = await gateway.request(packet, bob, timeout=120)
        assert answer.command == "Ack" and answer.payload == str(len(payload)).encode(), answer

    async def run() -> None:
        await one(-1)  # the connections made, the identities exchanged
        single = []
        for n in range(rounds):
            started = time.perf_counter()
            await one(-2 - n)
            single.append((time.perf_counter() - started) * 1000)
        count = total // packet_bytes
        await phase("throughput")
        started, cpu = time.perf_counter(), cpu_seconds()
        window: list[defer.Deferred[Any]] = []
        for n in range(count):
            window.append(defer.ensureDeferred(one(n)))
            if len(window) >= WINDOW:
                await window.pop(0)
        for pending in window:
            await pending
        seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
        await phase("pings")
        pings = []
        me_xml = parts.holder.require().xml
        for _ in range(rounds):
            packet = gateway.outbox("Identity", bob.sources[0], me_xml, packet_id=parts.hookups.channel_id("bench"))
            started = time.perf_counter()
            await gateway.request(packet, bob, wide=True, timeout=20)
            pings.append((time.perf_counter() - started) * 1000)
        print(json.dumps({
            "contacts": list(bob.contacts), "single_ms": statistics.median(single), "seconds": seconds,
            "packets": count, "ping_ms": statistics.median(pings), "peak_mib": peak_mib(), "cpu": cpu,
        }), flush=True)

    def done(result: Any) -> None:
        if hasattr(result, "printTraceback"):
            result.printTraceback()
        reactor.callLater(0.1, reactor.stop)  # type: ignore[attr-defined]

    reactor.callWhenRunning(lambda: defer.ensureDeferred(run()).addBoth(done))  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


# -- the run


def make_homes(root: Path) -> None:
    from bitdust_node.crypto import keys
    from bitdust_node.identity.holder import MyIdentityHolder
    from bitdust_node.identity.my_identity import MyIdentity
    from bitdust_node.identity.signing import sign_identity
    from bitdust_node.wire import identity_xml

    for name, address in ADDRESSES.items():
        key = keys.generate_key(2048)
        identity = identity_xml.Identity(sources=(idurl(name),), contacts=(f"tcp://{address}:{PORT}",),
                                         date="Dec 01, 2026")
        me = MyIdentity(sign_identity(identity, key), key)
        MyIdentityHolder(root / name).adopt(me)
        (root / f"{name}.xml").write_bytes(me.xml)


# every child started, so that a run that fails leaves none behind (they hold fixed addresses)
CHILDREN: list[subprocess.Popen[str]] = []


def child(*argv: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, __file__, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "RELAY_BENCH_CODE": str(CODE)})
    CHILDREN.append(proc)
    return proc


def ready(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("READY"):
        raise SystemExit(f"child did not start: {line!r}")
    return dict(json.loads(line.removeprefix("READY").strip() or "{}"))


def finish(proc: subprocess.Popen[str], timeout: float = 900) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    return dict(json.loads(out.strip().splitlines()[-1]))


def tell(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def expect(proc: subprocess.Popen[str], word: str) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith(word):
        raise SystemExit(f"expected {word} from a child, got {line!r}")
    return line.removeprefix(word).strip()


def mark(procs: list[subprocess.Popen[str]]) -> list[float]:
    """The CPU seconds each process has spent so far."""
    for proc in procs:
        tell(proc, "mark")
    return [float(json.loads(expect(proc, "MARK"))["cpu"]) for proc in procs]


def transfer(alice: subprocess.Popen[str], others: list[subprocess.Popen[str]]) -> tuple[dict[str, Any], list[float]]:
    """Alice's run; the CPU seconds each of `others` spent over its throughput phase."""
    expect(alice, "PHASE throughput")
    before = mark(others)
    tell(alice, "go")
    expect(alice, "PHASE pings")
    spent = [after - start for after, start in zip(mark(others), before, strict=True)]
    tell(alice, "go")
    return finish(alice), spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--packet-kib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--code", help="run the node code of this checkout of an earlier commit (git worktree add "
                                       "DIR COMMIT, or git archive), this script's figures and harness")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--homes", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.code:
        global CODE
        CODE = Path(args.code).resolve()  # nothing of the node is imported yet: the children and this process
        sys.path.insert(0, str(CODE))
    if args.role:
        from twisted.internet import reactor

        from bitdust_node.heap import tune_node_process

        tune_node_process(reactor)  # as `twistd bitdust` does for a node process
    total, packet_bytes = args.mib << 20, args.packet_kib << 10
    if args.role:
        homes = Path(args.homes)
        if args.role == "router":
            profile = os.environ.get("RELAY_BENCH_PROFILE")  # a folder: the router's cProfile stats go there
            if profile:
                import cProfile

                cProfile.runctx("run_router(homes)", globals(), locals(), str(Path(profile) / "router.prof"))
                return None
            return run_router(homes)
        if args.role in ("bob", "bob-routed"):
            return run_bob(homes, routed=args.role == "bob-routed")
        return run_alice(homes, total, packet_bytes, args.rounds)

    from relay_floor import RelayCosts, receiver, routed_receiver, router, sender

    common = ["--mib", str(args.mib), "--packet-kib", str(args.packet_kib), "--rounds", str(args.rounds)]
    costs = [RelayCosts.measure()]
    with tempfile.TemporaryDirectory() as tmp:
        homes = Path(tmp)
        make_homes(homes)
        bob = child("--role", "bob", "--homes", tmp, *common)
        ready(bob)
        direct, (direct_bob_cpu,) = transfer(child("--role", "alice", "--homes", tmp, *common), [bob])
        finish(bob)
        router_proc = child("--role", "router", "--homes", tmp, *common)
        at_rest = ready(router_proc)["rss_mib"]
        bob = child("--role", "bob-routed", "--homes", tmp, *common)
        ready(bob)
        relayed, (router_cpu, bob_cpu) = transfer(child("--role", "alice", "--homes", tmp, *common),
                                                  [router_proc, bob])
        finish(bob)
        router_end = finish(router_proc)
    costs.append(RelayCosts.measure())
    lowest = RelayCosts.lowest(costs)
    assert relayed["contacts"] == [f"tcp://{ADDRESSES['router']}:{PORT}"], relayed["contacts"]
    assert router_end["relayed"].get("relayed_in", 0) >= relayed["packets"], router_end
    direct_mbs = total / direct["seconds"] / 1e6
    relayed_mbs = total / relayed["seconds"] / 1e6
    print(
        f"relay {args.mib} MiB as {relayed['packets']} x {args.packet_kib} KiB Data packets: "
        f"relayed {relayed_mbs:.0f} MB/s vs direct {direct_mbs:.0f} MB/s (ratio {relayed_mbs / direct_mbs:.2f}); "
        f"1 MiB round trip relayed {relayed['single_ms']:.1f} ms vs direct {direct['single_ms']:.1f} ms; "
        f"ping relayed {relayed['ping_ms']:.2f} ms vs direct {direct['ping_ms']:.2f} ms; "
        f"router RSS {at_rest:.0f} MiB at rest, peak {router_end['peak_mib']:.0f} MiB with 1 route "
        f"(+{router_end['peak_mib'] - at_rest:.0f} MiB per route, receive budget peak "
        f"{router_end.get('budget_peak', 0) / 2**20:.1f} MiB)"
    )
    print(lowest.describe())
    packet_mib = packet_bytes / 2**20
    sides = (
        ("relayed sender", relayed["cpu"], sender(lowest, packet_mib)),
        ("relayed router", router_cpu, router(lowest, packet_mib)),
        ("relayed receiver", bob_cpu, routed_receiver(lowest, packet_mib)),
        ("direct sender", direct["cpu"], sender(lowest, packet_mib)),
        ("direct receiver", direct_bob_cpu, receiver(lowest, packet_mib)),
    )
    for side, seconds, floor_ms in sides:
        mine = seconds * 1000 / args.mib
        print(f"relay {side} cpu_per_mib_ms={mine:.2f} floor_ms={floor_ms:.2f} (x{mine / floor_ms:.2f})")


if __name__ == "__main__":
    try:
        main()
    finally:
        for proc in CHILDREN:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
