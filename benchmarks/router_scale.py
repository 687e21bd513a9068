"""One proxy router holding 1,000 routes at rest, then 20 of them relaying at once: the router's memory.

    .venv/bin/python benchmarks/router_scale.py [--users 1000] [--user-procs 4] [--active 20] [--mib 16]
        [--rest 30]

Every part is the real one, on loopback, each user a real identity with its own key and its own TCP connection
(from its own address, 127.20.<process>.<n>) to the router (127.19.0.1:7771): a routed user is the node's proxy
client (the `proxy_receiver` machine), which introduces itself with a signed Identity packet, rents its route
with a signed RequestService `service_proxy_server`, republishes its identity with the router's contact and then
sends a keep-alive every 10 s. Users share processes (--user-procs of them); their keys are throwaway 1024-bit
RSA keys, since 1,000 keys of 2048 bits take minutes to make; the router and the senders have 2048-bit keys. The
router is composed as service_proxy_server composes it in a node: one receive budget for its TCP transport, its
gateway and its routes, the node's heap tuning.

1. The router starts: its resident memory is the baseline.
2. The users rent their routes and hold them at rest for --rest seconds; the router then gives its free heap back,
   as a node does every minute: its resident memory is `rest_mib`, and (rest - baseline) / routes the cost of an
   idle route.
3. --active senders (not routed, each its own node process identity on 127.21.0.<n>) each send --mib MiB as 1 MiB
   Data packets, 16 in flight, to a distinct routed user through the router (RelayIn to the user, its signed Ack
   back as RelayOut). The router's peak resident memory over this phase (VmHWM, reset when it starts) is
   `peak_mib`, and (peak - rest) / active the cost of an active route; `relayed_mb_s` is the bytes relayed over
   the phase's wall time.

Ends with one line:
`router_scale routes=N rest_mib=.. per_idle_route_kib=.. active=20 peak_mib=.. per_active_route_mib=.. relayed_mb_s=..`
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROUTER_HOST = "127.19.0.1"
# where the run's identities are served (a folder behind twisted.web, as an identity server serves them)
IDS_HOST = "127.19.0.2"
PORT = 7771
WINDOW = 16
# how long a sender waits for a Data packet's Ack: a refused packet fails the run, a slow one does not
ANSWER_TIMEOUT = 300.0
USERS_PER_PROCESS_MAX = 250


def idurl(name: str) -> str:
    return f"http://{IDS_HOST}:8084/{name}.xml"


def user_name(process: int, number: int) -> str:
    return f"user{process}-{number:03d}"


def user_host(process: int, number: int) -> str:
    return f"127.20.{process}.{number + 1}"


def sender_name(number: int) -> str:
    return f"sender{number:02d}"


def sender_host(number: int) -> str:
    return f"127.21.0.{number + 1}"


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} for process {pid}")


def reset_peak(pid: int) -> None:
    """Start the process's peak resident memory (VmHWM) again from what it holds now."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_identity(work: Path, home: Path, name: str, host: str, bits: int) -> Any:
    """A fresh key and self-signed identity kept in `home` and published in the run's identity folder; the
    MyIdentityHolder."""
    from bitdust_node.crypto import keys
    from bitdust_node.identity.holder import MyIdentityHolder
    from bitdust_node.identity.my_identity import MyIdentity
    from bitdust_node.identity.signing import sign_identity
    from bitdust_node.wire import identity_xml

    key = keys.generate_key(bits)
    identity = identity_xml.Identity(sources=(idurl(name),), contacts=(f"tcp://{host}:{PORT}",),
                                     date="Dec 01, 2026")
    holder = MyIdentityHolder(home)
    holder.adopt(MyIdentity(sign_identity(identity, key), key))
    (work / "ids" / f"{name}.xml").write_bytes(holder.require().xml)
    return holder


class Stack:
    """The packet path of one node: identity, identity cache, gateway and TCP transport sharing one budget."""

    def __init__(self, reactor: Any, home: Path, holder: Any, host: str, listen: bool) -> None:
        from bitdust_node.identity.cache import IdentityCache
        from bitdust_node.net.budget import ReceiveBudget
        from bitdust_node.net.http import CappedHttp
        from bitdust_node.transport.gateway import Gateway
        from bitdust_node.transport.hookups import Hookups
        from bitdust_node.transport.tcp import TcpNode

        self.reactor, self.holder = reactor, holder
        self.cache = IdentityCache(home / "cache", CappedHttp(reactor))
        self.cache.load()
        self.budget = ReceiveBudget()
        self.gateway = Gateway(reactor, holder, self.cache, budget=self.budget)
        self.hookups = Hookups(self.gateway, holder, self.cache, reactor, lambda service: "ON")
        self.tcp = TcpNode(reactor, lambda: (host, PORT), lambda: holder.require().idurl,
                           lambda connection, data: self.gateway.file_received(data, connection), bind_source=True,
                           budget=self.budget)
        self.gateway.attach(self.tcp)
        if listen:
            reactor.listenTCP(PORT, self.tcp.factory(), backlog=512, interface=host)

    def ack_data(self) -> None:
        def on_data(inbound: Any) -> None:
            self.gateway.reply(inbound, "Ack", str(len(inbound.packet.payload)).encode())

        self.gateway.register("Data", on_data)


def raise_file_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def control(on_line: Any, on_close: Any) -> None:
    """Lines from the parent on stdin; `on_close` when it closes stdin."""
    from twisted.internet import protocol, stdio
    from twisted.protocols.basic import LineReceiver

    class Control(LineReceiver):
        delimiter = b"\n"

        def lineReceived(self, line: bytes) -> None:
            on_line(line.decode().strip())

        def connectionLost(self, reason: Any = protocol.connectionDone) -> None:
            on_close()

    stdio.StandardIO(Control())


def say(word: str, fields: dict[str, Any]) -> None:
    try:
        print(word + " " + json.dumps(fields), flush=True)
    except BrokenPipeError:
        pass  # the parent is gone: the child stops all the same


# -- the router

def run_router(work: Path, routes: int) -> None:
    from twisted.internet import reactor

    from bitdust_node.heap import release_free_memory
    from bitdust_node.identity.holder import MyIdentityHolder
    from bitdust_node.proxy.router import SERVICE_NAME, ProxyRouter, RouterLimits

    home = work / "router"
    stack = Stack(reactor, home, MyIdentityHolder.load(home), ROUTER_HOST, listen=True)
    # the senders' identities are learned from the Identity packets they introduce themselves with
    router = ProxyRouter(stack.gateway, stack.holder, stack.cache, reactor, stack.tcp.sessions_of,
                         RouterLimits(routes=routes, route_rate=0), budget=stack.budget)
    router.start()
    stack.hookups.accept_requests(SERVICE_NAME, router)

    def figures() -> dict[str, Any]:
        return {"routes": len(router.routes), "connections": len(stack.tcp.connections),
                "counters": dict(router.counters), "refused": dict(router.refusals),
                "budget": stack.budget.status(), "dropped": dict(stack.gateway.dropped),
                "tcp": dict(stack.tcp.counters)}

    def on_line(line: str) -> None:
        if line == "trim":
            release_free_memory()  # what the node does every minute (bitdust_node.tap)
        say("STATUS", figures())

    def on_close() -> None:
        say("DONE", figures())
        reactor.stop()

    control(on_line, on_close)
    reactor.callWhenRunning(lambda: say("READY", {}))
    if os.environ.get("ROUTER_SCALE_DEBUG"):
        from twisted.internet import task

        def dump() -> None:
            busy = {r.idurl.rsplit("/", 1)[-1]: (r.incoming.held, r.incoming.waiting, r.outgoing.held,
                                                 r.outgoing.waiting) for r in router.routes.values()
                    if r.incoming.held or r.outgoing.held or r.incoming.waiting or r.outgoing.waiting}
            held = [(c.describe(), c._read_holds, c._waiting_frames is not None, c.queued_bytes(),
                     len(c._awaiting_ok)) for c in stack.tcp.connections if c._read_holds or c.queued_bytes()]
            print(f"DEBUG budget {stack.budget.status()} relaying {router.relaying.held}/{router.relaying.waiting} "
                  f"routes {busy} connections {held} counters {dict(router.counters)}", file=sys.stderr, flush=True)

        task.LoopingCall(dump).start(5.0)
    reactor.run()


# -- the identity server

def run_ids(work: Path) -> None:
    from twisted.internet import reactor
    from twisted.web.server import Site
    from twisted.web.static import File

    reactor.listenTCP(8084, Site(File(str(work / "ids"))), interface=IDS_HOST)  # type: ignore[arg-type]
    control(lambda line: None, reactor.stop)
    reactor.callWhenRunning(lambda: say("READY", {}))
    reactor.run()


# -- the routed users

class FolderPublisher:
    """Publishes a user's routed identity (the router's contacts) to the run's folder, where senders read it."""

    def __init__(self, holder: Any, name: str, host: str, folder: Path) -> None:
        self.holder, self.name, self.host, self.folder = holder, name, host, folder

    def use_contacts(self, contacts: tuple[str, ...] | None) -> Any:
        from twisted.internet import defer

        me = self.holder.require()
        wanted = contacts or (f"tcp://{self.host}:{PORT}",)
        if wanted != me.identity.contacts:
            newer = me.next_revision(wanted, time.time())
            self.holder.adopt(newer)
            (self.folder / "ids" / f"{self.name}.xml").write_bytes(newer.xml)
        return defer.succeed(None)


class NoDhtLookup:
    async def random_nodes(self, layer_id: int, count: int = 1) -> list[Any]:
        raise LookupError("the users name their router in preferred routers; there is no DHT")


def run_users(work: Path, process: int, count: int) -> None:
    from twisted.internet import reactor, task

    from bitdust_node.fsm import Registry
    from bitdust_node.proxy.client import ProxyClient

    router_xml = (work / "ids" / "router.xml").read_bytes()
    clients = []
    registry = Registry()
    stacks = []
    for number in range(count):
        name, host = user_name(process, number), user_host(process, number)
        home = work / "users" / name
        stack = Stack(reactor, home, make_identity(work, home, name, host, 1024), host, listen=False)
        stack.cache.accept(idurl("router"), router_xml)
        stack.ack_data()
        client = ProxyClient(stack.gateway, stack.holder, stack.cache, reactor, NoDhtLookup(), stack.tcp,
                             FolderPublisher(stack.holder, name, host, work), lambda: [idurl("router")],
                             registry.register("proxy_receiver", "AT_STARTUP", label=name))
        clients.append(client)
        stacks.append(stack)

    started = time.monotonic()
    # started a few milliseconds apart, as users come and go, not as one burst of a thousand handshakes
    starting = iter(clients)

    def start_next() -> None:
        client = next(starting, None)
        if client is None:
            starter.stop()
            return
        client.start()

    starter = task.LoopingCall(start_next)
    starter.start(0.01)

    def check() -> None:
        listening = sum(client.listening for client in clients)
        if listening == count:
            poll.stop()
            say("READY", {"listening": listening, "seconds": time.monotonic() - started})
        elif time.monotonic() - started > 600:
            poll.stop()
            say("READY", {"listening": listening, "seconds": time.monotonic() - started,
                          "states": sorted({c.state for c in clients})})

    poll = task.LoopingCall(check)
    poll.start(0.25, now=False)

    def on_close() -> None:
        say("DONE", {"listening": sum(client.listening for client in clients),
                     "relay_in": sum(c.counters["relay_in"] for c in clients)})
        reactor.stop()

    control(lambda line: say("STATUS", {"listening": sum(c.listening for c in clients)}), on_close)
    reactor.run()


# -- the senders

def run_senders(work: Path, numbers: list[int], receivers: list[str], mib: int) -> None:
    from twisted.internet import defer, reactor

    from bitdust_node.identity.holder import MyIdentityHolder

    stacks = []
    for number in numbers:
        home = work / "senders" / sender_name(number)
        stack = Stack(reactor, home, MyIdentityHolder.load(home), sender_host(number), listen=True)
        stack.cache.accept(idurl("router"), (work / "ids" / "router.xml").read_bytes())
        stacks.append(stack)
    raw = os.urandom(768 * 1024)

    async def introduce(stack: Stack) -> None:
        """My identity to the router (its Ack awaited), as a node's first contact does."""
        router = stack.cache.get(idurl("router"))
        assert router is not None
        me = stack.holder.require()
        packet = stack.gateway.outbox("Identity", router.sources[0], me.xml, packet_id=stack.gateway.new_packet_id())
        await stack.gateway.request(packet, router, timeout=60)

    async def send(stack: Stack, receiver: str) -> dict[str, float]:
        target = await stack.cache.fetch(idurl(receiver))
        assert target.contacts == (f"tcp://{ROUTER_HOST}:{PORT}",), target.contacts
        start = time.monotonic()
        window: list[defer.Deferred[Any]] = []
        for n in range(mib):
            # a file piece is base64 made for the packet, as a customer makes it
            payload = base64.b64encode(raw)
            packet = stack.gateway.outbox("Data", target.sources[0], payload, packet_id=f"bench/{n}",
                                          payload_is_base64=True)
            window.append(stack.gateway.request(packet, target, timeout=ANSWER_TIMEOUT))
            if len(window) >= WINDOW:
                answer = await window.pop(0)
                assert answer.command == "Ack", answer
        for pending in window:
            assert (await pending).command == "Ack"
        return {"start": start, "end": time.monotonic()}

    async def ready() -> None:
        await defer.gatherResults([defer.ensureDeferred(introduce(stack)) for stack in stacks], consumeErrors=True)
        say("READY", {})

    async def transfer() -> None:
        cpu = cpu_seconds()
        results = await defer.gatherResults(
            [defer.ensureDeferred(send(stack, receiver)) for stack, receiver in zip(stacks, receivers, strict=True)],
            consumeErrors=True)
        say("DONE", {"transfers": results, "cpu": cpu_seconds() - cpu})

    def failed(failure: Any) -> None:
        say("FAILED", {"error": failure.getTraceback()[-2000:]})
        reactor.stop()

    def on_line(line: str) -> None:
        if line == "go":
            defer.ensureDeferred(transfer()).addErrback(failed).addBoth(lambda _: reactor.callLater(0.2, reactor.stop))

    control(on_line, lambda: None)
    reactor.callWhenRunning(lambda: defer.ensureDeferred(ready()).addErrback(failed))
    reactor.run()


# -- the run

class Child:
    # every child started, so that a run that fails leaves none behind
    started: list[Child] = []

    def __init__(self, *argv: str) -> None:
        self.argv = argv
        self.proc = subprocess.Popen([sys.executable, __file__, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        Child.started.append(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tell(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, word: str) -> dict[str, Any]:
        """The fields of the next line that starts with `word` (other lines are passed through)."""
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit(f"child {self.argv} ended before saying {word}")
            head, _, rest = line.strip().partition(" ")
            if head == "FAILED":
                raise SystemExit(f"child {self.argv} failed: {json.loads(rest)['error']}")
            if head == word:
                return dict(json.loads(rest))
            print(line, end="", file=sys.stderr)

    def close(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        fields = self.expect("DONE")
        self.proc.wait(timeout=60)
        return fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--user-procs", type=int, default=4)
    parser.add_argument("--active", type=int, default=20)
    parser.add_argument("--sender-procs", type=int, default=2)
    parser.add_argument("--mib", type=int, default=16, help="MiB each active sender relays")
    parser.add_argument("--rest", type=float, default=30.0, help="seconds the routes are held at rest")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--process", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--numbers", help=argparse.SUPPRESS)
    parser.add_argument("--receivers", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        from twisted.internet import reactor

        from bitdust_node.heap import tune_node_process

        raise_file_limit()
        if os.environ.get("ROUTER_SCALE_LOG"):  # the children's logs on stderr, to see what goes wrong
            from twisted.logger import globalLogBeginner, textFileLogObserver

            globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
        tune_node_process(reactor)  # as `twistd bitdust` does for a node process
        work = Path(args.work)
        if args.role == "router":
            return run_router(work, args.users)
        if args.role == "ids":
            return run_ids(work)
        if args.role == "users":
            return run_users(work, args.process, args.count)
        return run_senders(work, [int(n) for n in args.numbers.split(",")], args.receivers.split(","), args.mib)

    per_process = -(-args.users // args.user_procs)
    if per_process > USERS_PER_PROCESS_MAX:
        raise SystemExit(f"at most {USERS_PER_PROCESS_MAX} users a process (addresses 127.20.<p>.1-250)")
    counts = [min(per_process, args.users - p * per_process) for p in range(args.user_procs)]
    # the active users spread over the user processes: each receives its share of the relayed bytes
    receivers = [user_name(n % args.user_procs, n // args.user_procs) for n in range(args.active)]
    if any(n // args.user_procs >= counts[n % args.user_procs] for n in range(args.active)):
        raise SystemExit("more active users than users")
    with tempfile.TemporaryDirectory(prefix="router_scale.") as tmp:
        try:
            figures = measure(args, Path(tmp), counts, receivers)
        finally:
            for child in Child.started:
                if child.proc.poll() is None:
                    child.proc.kill()
                    child.proc.wait()
    print(figures)


def measure(args: argparse.Namespace, work: Path, counts: list[int], receivers: list[str]) -> str:
    """The run, in `work`: what the router says on stderr as it goes, the line of figures returned."""
    tmp = str(work)
    (work / "ids").mkdir()
    make_identity(work, work / "router", "router", ROUTER_HOST, 2048)
    for number in range(args.active):
        make_identity(work, work / "senders" / sender_name(number), sender_name(number), sender_host(number), 2048)
    common = ["--work", tmp, "--users", str(args.users), "--mib", str(args.mib)]
    Child("--role", "ids", *common).expect("READY")
    router = Child("--role", "router", *common)
    router.expect("READY")
    router.tell("trim")
    router.expect("STATUS")
    baseline = status_kib(router.pid, "VmRSS") / 1024
    started = time.monotonic()
    users = [Child("--role", "users", "--process", str(p), "--count", str(n), *common)
             for p, n in enumerate(counts) if n]
    listening = 0
    for child in users:
        got = child.expect("READY")
        listening += got["listening"]
        if "states" in got:
            print(f"users of {child.argv[2:4]}: {got}", file=sys.stderr)
    print(f"{listening} of {args.users} users routed in {time.monotonic() - started:.0f} s; at rest "
          f"{args.rest:.0f} s", file=sys.stderr)
    time.sleep(args.rest)
    router.tell("trim")
    at_rest = router.expect("STATUS")
    rest = status_kib(router.pid, "VmRSS") / 1024
    routes = at_rest["routes"]

    senders = []
    for p in range(args.sender_procs):
        numbers = list(range(p, args.active, args.sender_procs))
        if numbers:
            senders.append(Child("--role", "senders", *common, "--numbers", ",".join(map(str, numbers)),
                                 "--receivers", ",".join(receivers[n] for n in numbers)))
    for child in senders:
        child.expect("READY")
    reset_peak(router.pid)
    rss_before = status_kib(router.pid, "VmRSS") / 1024
    for child in senders:
        child.tell("go")
    try:
        transfers = [t for child in senders for t in child.expect("DONE")["transfers"]]
    except SystemExit:
        router.tell("status")
        print(f"router: {router.expect('STATUS')}", file=sys.stderr)
        raise
    peak = status_kib(router.pid, "VmHWM") / 1024
    after = router.close()
    for child in users:
        child.close()
    for child in senders:
        child.proc.wait(timeout=60)
    seconds = max(t["end"] for t in transfers) - min(t["start"] for t in transfers)
    relayed = args.active * args.mib * 2**20
    print(f"router: baseline {baseline:.1f} MiB, rest {rest:.1f} MiB with {routes} routes, before the transfers "
          f"{rss_before:.1f} MiB, peak {peak:.1f} MiB; counters {after['counters']}; refused {after['refused']}; "
          f"dropped {after['dropped']}; budget {after['budget']}; tcp {after['tcp']}", file=sys.stderr)
    return (f"router_scale routes={routes} rest_mib={rest:.1f} "
            f"per_idle_route_kib={(rest - baseline) * 1024 / max(routes, 1):.1f} active={args.active} "
            f"peak_mib={peak:.1f} per_active_route_mib={(peak - rest) / max(args.active, 1):.2f} "
            f"relayed_mb_s={relayed / seconds / 1e6:.1f}")


if __name__ == "__main__":
    main()
