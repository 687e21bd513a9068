"""Peer-to-peer transport throughput and latency between two processes on loopback.

    .venv/bin/python benchmarks/transport_bench.py [--mib 64] [--packet-kib 1024] [--pings 200]
        [--against DIR [--rounds 3] [--harness DIR]]

In one run, side by side:
* ours: 64 MiB as signed Data packets from one node process to another (each verified by the receiver
  and answered by a signed Ack, up to 16 in flight), then Identity pings (round trip p50, p95); the
  TCP transport and the gateway share one receive budget of the default size, as in a node;
* raw: the same bytes over one plain Twisted TCP connection between two processes.
Each side reports its peak resident memory, and the CPU it spent a MiB of payload (`cpu_per_mib_ms`) next to the
protocol's floor (`floor_ms`, benchmarks/relay_floor.py: the SHA-1, RSA and base64 work the wire format cannot do
without, its pieces timed in this run before and after the transfers, the lower taken) and next to what raw TCP
spent (`raw_ms`: the sockets' own cost, which no signed transfer avoids either). The sender base64-encodes each
piece as a customer does. Ends with one line of figures and the ratio.

With --against DIR (a checkout of an earlier commit: `git worktree add DIR COMMIT`), the node processes of
that tree run the same transfer too, the two taking turns for --rounds rounds, and a line for each gives the
median of the rounds, then their ratio: before and after a change in the same minutes. With --harness DIR
too, the sender and receiver processes of DIR's script drive both trees' code: the same workload before and
after when this script's own workload has changed since.
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
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SENDER, RECEIVER = "127.0.0.50", "127.0.0.51"
PORT = 7771
RAW_PORT = 7790
WINDOW = 16


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User and system time of this process so far, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- raw TCP, the peer to compare with

def raw_receiver(total: int) -> None:
    from twisted.internet import protocol, reactor

    class Count(protocol.Protocol):
        seen = 0
        cpu = 0.0

        def dataReceived(self, data: bytes) -> None:
            if not self.seen:
                self.cpu = cpu_seconds()
            self.seen += len(data)
            if self.seen >= total:
                self.cpu = cpu_seconds() - self.cpu
                self.transport.write(b"!")  # type: ignore[union-attr]

        def connectionLost(self, reason: Any = None) -> None:
            print(json.dumps({"peak_mib": peak_mib(), "cpu": self.cpu}), flush=True)
            reactor.stop()  # type: ignore[attr-defined]

    factory = protocol.Factory.forProtocol(Count)
    reactor.listenTCP(RAW_PORT, factory, interface=RECEIVER)  # type: ignore[attr-defined]
    print("READY", flush=True)
    reactor.run()  # type: ignore[attr-defined]


def raw_sender(total: int) -> None:
    from twisted.internet import protocol, reactor
    from twisted.internet.interfaces import IPushProducer
    from zope.interface import implementer

    chunk = os.urandom(1 << 20)

    @implementer(IPushProducer)
    class Send(protocol.Protocol):
        sent = 0
        paused = False

        def connectionMade(self) -> None:
            self.started, self.cpu = time.perf_counter(), cpu_seconds()
            self.transport.registerProducer(self, True)  # type: ignore[union-attr]
            self.resumeProducing()

        def resumeProducing(self) -> None:
            self.paused = False
            while not self.paused and self.sent < total:
                self.transport.write(chunk)  # type: ignore[union-attr]
                self.sent += len(chunk)

        def pauseProducing(self) -> None:
            self.paused = True

        def stopProducing(self) -> None:
            self.paused = True

        def dataReceived(self, data: bytes) -> None:
            seconds = time.perf_counter() - self.started
            print(json.dumps({"seconds": seconds, "peak_mib": peak_mib(), "cpu": cpu_seconds() - self.cpu}), flush=True)
            self.transport.loseConnection()  # type: ignore[union-attr]
            reactor.callLater(0.1, reactor.stop)  # type: ignore[attr-defined]

    protocol.ClientCreator(reactor, Send).connectTCP(RECEIVER, RAW_PORT)
    reactor.run()  # type: ignore[attr-defined]


# -- our nodes: TCP transport + gateway, identities known to each other without a server

def our_node(home: Path, address: str, peer_home: Path, role: str, total: int, packet_bytes: int, pings: int) -> None:
    import pybase64
    from twisted.internet import defer, reactor

    from bitdust_node.identity.cache import IdentityCache
    from bitdust_node.identity.holder import MyIdentityHolder
    from bitdust_node.net.http import CappedHttp
    from bitdust_node.transport.gateway import Gateway
    from bitdust_node.transport.hookups import Hookups
    from bitdust_node.transport.interfaces import Inbound
    from bitdust_node.transport.tcp import TcpNode

    holder = MyIdentityHolder.load(home)
    me = holder.require()
    peer_xml = (peer_home / "identity" / "my_identity.xml").read_bytes()
    cache = IdentityCache(home / "cache", CappedHttp(reactor))
    cache.load()
    peer = cache.accept(json.loads((peer_home / "idurl.json").read_text()), peer_xml)
    # one receive budget for the transport and the gateway, as service_network hands it to both
    from bitdust_node.net.budget import ReceiveBudget

    budget = ReceiveBudget()
    gateway = Gateway(reactor, holder, cache, budget=budget)
    hookups = Hookups(gateway, holder, cache, reactor, lambda name: "ON")
    tcp = TcpNode(reactor, lambda: (address, PORT), lambda: me.idurl, lambda _c, d: gateway.file_received(d),
                  bind_source=True, budget=budget)
    gateway.attach(tcp)
    reactor.listenTCP(PORT, tcp.factory(), interface=address)  # type: ignore[attr-defined]

    count = total // packet_bytes
    data_cpu: list[float] = []  # CPU time at the first and the last Data packet: the receiver's cost

    def on_data(inbound: Inbound) -> None:
        gateway.reply(inbound, "Ack", str(len(inbound.packet.payload)).encode())
        received = int(inbound.packet.packet_id.rpartition("/")[2]) + 1
        if received in (1, count):
            data_cpu.append(cpu_seconds())

    gateway.register("Data", on_data)
    if role == "receiver":
        print("READY", flush=True)
        reactor.callLater(3600, reactor.stop)  # type: ignore[attr-defined]
        gateway.register("Retrieve", lambda inbound: (print(json.dumps({
            "peak_mib": peak_mib(), "cpu_ms_per_packet": (data_cpu[-1] - data_cpu[0]) / max(1, count - 1) * 1e3,
        }), flush=True),
                                                    reactor.callLater(0.1, reactor.stop)))  # type: ignore[attr-defined]
        reactor.run()  # type: ignore[attr-defined]
        return

    async def run() -> None:
        piece = os.urandom(packet_bytes * 3 // 4)
        started, cpu_started = time.perf_counter(), cpu_seconds()
        window: list[defer.Deferred[Any]] = []
        for n in range(count):
            # a file piece travels as base64 made for its packet, as a customer makes it
            payload = pybase64.b64encode(piece)
            packet = gateway.outbox("Data", peer.sources[0], payload, packet_id=f"bench/{n}", payload_is_base64=True)
            window.append(gateway.request(packet, peer, timeout=120))
            if len(window) >= WINDOW:
                await window.pop(0)
        for pending in window:
            await pending
        seconds = time.perf_counter() - started
        cpu_ms_per_packet = (cpu_seconds() - cpu_started) / count * 1e3
        rtts = []
        for _ in range(pings):
            rtts.append((await hookups_ping(hookups, peer.sources[0])) * 1000)
        gateway.send(gateway.outbox("Retrieve", peer.sources[0], b""), peer)
        rtts.sort()
        print(json.dumps({
            "seconds": seconds, "packets": count, "peak_mib": peak_mib(), "cpu_ms_per_packet": cpu_ms_per_packet,
            "ping_p50_ms": statistics.median(rtts), "ping_p95_ms": rtts[int(len(rtts) * 0.95) - 1],
        }), flush=True)

    async def hookups_ping(hookups: Hookups, idurl: str) -> float:
        me_xml = holder.require().xml
        packet = gateway.outbox("Identity", idurl, me_xml, packet_id=hookups.channel_id("bench_ping"))
        start = time.perf_counter()
        await gateway.request(packet, peer, wide=True, timeout=20)
        return time.perf_counter() - start

    def done(result: Any) -> None:
        if hasattr(result, "printTraceback"):
            result.printTraceback()
        reactor.callLater(0.2, reactor.stop)  # type: ignore[attr-defined]

    reactor.callWhenRunning(lambda: defer.ensureDeferred(run()).addBoth(done))  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


def make_home(root: Path, name: str, address: str) -> Path:
    from bitdust_node.crypto import keys
    from bitdust_node.identity.holder import MyIdentityHolder
    from bitdust_node.identity.my_identity import MyIdentity
    from bitdust_node.identity.signing import sign_identity
    from bitdust_node.wire import identity_xml

    home = root / name
    key = keys.generate_key(2048)
    idurl = f"http://127.0.0.1:8084/{name}.xml"
    identity = identity_xml.Identity(sources=(idurl,), contacts=(f"tcp://{address}:{PORT}",), date="Dec 01, 2026")
    MyIdentityHolder(home).adopt(MyIdentity(sign_identity(identity, key), key))
    (home / "idurl.json").write_text(json.dumps(idurl))
    return home


# --harness: the checkout whose node processes (sender and receiver roles) drive every tree's code
HARNESS: Path | None = None


def child(*argv: str, tree: Path = ROOT) -> subprocess.Popen[str]:
    """This script (or the one of another checkout, with that checkout's code) in a process of its own."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    harness = HARNESS if HARNESS is not None and argv[1:2] in (("sender",), ("receiver",)) else tree
    script = harness / "benchmarks" / "transport_bench.py"
    return subprocess.Popen([sys.executable, str(script), *argv], stdout=subprocess.PIPE, text=True, env=env)


def wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "READY":
        raise SystemExit(f"child did not start: {line!r}")


def last_json(proc: subprocess.Popen[str], timeout: float = 600) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--packet-kib", type=int, default=1024)
    parser.add_argument("--pings", type=int, default=200)
    parser.add_argument("--against", help="a checkout of an earlier commit, run in turns with this one")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each tree with --against")
    parser.add_argument("--harness", help="a checkout whose sender and receiver processes drive both trees' code "
                                          "(the same workload before and after when the harness itself changed)")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--homes", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global HARNESS
    HARNESS = Path(args.harness).resolve() if args.harness else None
    if args.role:
        from twisted.internet import reactor

        from bitdust_node.heap import tune_node_process

        tune_node_process(reactor)  # as `twistd bitdust` does for a node process
    total, packet_bytes = args.mib << 20, args.packet_kib << 10
    if args.role == "raw-receiver":
        return raw_receiver(total)
    if args.role == "raw-sender":
        return raw_sender(total)
    if args.role in ("sender", "receiver"):
        home, peer = Path(args.homes[0]), Path(args.homes[1])
        address = SENDER if args.role == "sender" else RECEIVER
        profile = os.environ.get("TRANSPORT_BENCH_PROFILE")  # a folder: each node's cProfile stats go there
        if profile:
            import cProfile

            cProfile.runctx("our_node(home, address, peer, args.role, total, packet_bytes, args.pings)",
                            globals(), locals(), str(Path(profile) / f"{args.role}.prof"))
            return None
        return our_node(home, address, peer, args.role, total, packet_bytes, args.pings)

    from relay_floor import RelayCosts, receiver, sender

    common = ["--mib", str(args.mib), "--packet-kib", str(args.packet_kib), "--pings", str(args.pings)]
    costs = [RelayCosts.measure()]
    trees = [ROOT] if args.against is None else [ROOT, Path(args.against).resolve()]
    runs: dict[Path, list[tuple[dict[str, Any], dict[str, Any]]]] = {tree: [] for tree in trees}
    with tempfile.TemporaryDirectory() as tmp:
        sender_home = make_home(Path(tmp), "sender", SENDER)
        receiver_home = make_home(Path(tmp), "receiver", RECEIVER)
        for round_number in range(args.rounds if args.against else 1):
            # the trees take turns, and which goes first alternates: a slow minute falls on both
            for tree in trees if round_number % 2 == 0 else trees[::-1]:
                runs[tree].append(ours_pair(tree, sender_home, receiver_home, common))
    raw_rx = child("--role", "raw-receiver", *common)
    wait_ready(raw_rx)
    raw = last_json(child("--role", "raw-sender", *common))
    raw_receiver_peak = last_json(raw_rx)
    raw_mbs = total / raw["seconds"] / 1e6
    costs.append(RelayCosts.measure())
    lowest = RelayCosts.lowest(costs)
    packet_mib = packet_bytes / 2**20
    floors = {"sender": sender(lowest, packet_mib), "receiver": receiver(lowest, packet_mib)}
    raw_ms = {"sender": raw["cpu"] * 1000 / args.mib, "receiver": raw_receiver_peak["cpu"] * 1000 / args.mib}
    print(lowest.describe())
    speeds = {}
    for tree in trees:
        ours, ours_receiver = _median_run(runs[tree])
        ours_mbs = speeds[tree] = total / ours["seconds"] / 1e6
        which = "" if args.against is None else f" [{'this tree' if tree == ROOT else tree}]"
        print(
            f"transport{which} {args.mib} MiB as {ours['packets']} x {args.packet_kib} KiB Data packets: "
            f"ours {ours_mbs:.0f} MB/s ({ours['packets'] / ours['seconds']:.0f} packets/s) vs raw TCP "
            f"{raw_mbs:.0f} MB/s (ratio {ours_mbs / raw_mbs:.2f}); ping p50 {ours['ping_p50_ms']:.2f} ms "
            f"p95 {ours['ping_p95_ms']:.2f} ms; peak RSS sender/receiver ours {ours['peak_mib']:.0f}/"
            f"{ours_receiver['peak_mib']:.0f} MiB, raw {raw['peak_mib']:.0f}/{raw_receiver_peak['peak_mib']:.0f} MiB; "
            f"CPU a packet sender/receiver {ours['cpu_ms_per_packet']:.2f}/{ours_receiver['cpu_ms_per_packet']:.2f} ms"
        )
        for side, figures in (("sender", ours), ("receiver", ours_receiver)):
            mine = figures["cpu_ms_per_packet"] / packet_mib
            print(f"transport{which} {side} cpu_per_mib_ms={mine:.2f} floor_ms={floors[side]:.2f} "
                  f"(x{mine / floors[side]:.2f}) raw_ms={raw_ms[side]:.2f}")
    if args.against is not None:
        rounds = [total / a["seconds"] / (total / b["seconds"]) for (a, _), (b, _) in zip(
            runs[ROOT], runs[trees[1]], strict=True)]
        print(f"this tree / {trees[1]}: {speeds[ROOT] / speeds[trees[1]]:.2f} (rounds: "
              + " ".join(f"{r:.2f}" for r in rounds) + ")")


def ours_pair(
    tree: Path, sender_home: Path, receiver_home: Path, common: list[str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One transfer between two node processes of `tree`: the sender's figures, then the receiver's."""
    receiver = child("--role", "receiver", "--homes", str(receiver_home), str(sender_home), *common, tree=tree)
    wait_ready(receiver)
    sender = child("--role", "sender", "--homes", str(sender_home), str(receiver_home), *common, tree=tree)
    return last_json(sender), last_json(receiver)


def _median_run(runs: list[tuple[dict[str, Any], dict[str, Any]]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The round whose transfer took the median time."""
    ordered = sorted(runs, key=lambda run: run[0]["seconds"])
    return ordered[(len(ordered) - 1) // 2]


if __name__ == "__main__":
    main()
