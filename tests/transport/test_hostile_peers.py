"""A node process attacked as the issue's attacker would: 16 connections from one address and one from each of
sixteen others complete a valid hello, then send 16 MiB of a file they never finish and stall. The node's
resident memory grows by less than 100 MB (its receive budget is 64 MiB), a verified peer's ping and private
message go through meanwhile, the refusals are counted in /service/list/v1, and its log has no traceback."""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path
from typing import Any

import treq
from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.interfaces import IPushProducer
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool
from twisted.web.http_headers import Headers
from zope.interface import implementer

from bitdust_node import home as home_paths
from bitdust_node.wire import tcp_frames
from tests.support.network import node_settings, start_named
from tests.support.nodes import REST_PORT, api, eventually, make_home, start_node
from tests.support.process_output import ProcessOutput

ROOT = Path(__file__).resolve().parents[2]
SERVER, ALICE, BOB = "127.0.0.140", "127.0.0.141", "127.0.0.142"
CROWD = "127.0.0.150"  # sixteen connections from here
LONERS = [f"127.0.0.{n}" for n in range(151, 167)]  # and one from each of these
SENT = 16 * 1024 * 1024
ANNOUNCED = SENT + tcp_frames.MAX_CHUNK  # a file never finished
STEP = 64  # frames a write: 1 MiB


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@implementer(IPushProducer)
class Attacker(protocol.Protocol):
    """A valid hello, then SENT bytes of a file announced a chunk longer, written as the socket takes them; then
    nothing: the connection stays open, the file unfinished."""

    def __init__(self, file_id: int) -> None:
        self.file_id = file_id
        self.sent = 0
        self.paused = False
        self.done: defer.Deferred[None] = defer.Deferred()
        self.closed: defer.Deferred[None] = defer.Deferred()
        self.frame = (struct.pack(">I", 10 + tcp_frames.MAX_CHUNK) + b"1d" + struct.pack("<ii", file_id, ANNOUNCED)
                      + b"A" * tcp_frames.MAX_CHUNK)

    def connectionMade(self) -> None:
        host = self.transport.getHost().host  # type: ignore[union-attr]
        hello = f"{host}:7771 http://{SERVER}:8084/nobody{self.file_id}.xml".encode()
        self.transport.write(tcp_frames.encode_frame(tcp_frames.HELLO, hello))  # type: ignore[union-attr]
        self.transport.registerProducer(self, True)  # type: ignore[union-attr]
        self.resumeProducing()

    def resumeProducing(self) -> None:
        self.paused = False
        while not self.paused and self.sent < SENT:
            self.transport.write(self.frame * STEP)  # type: ignore[union-attr]
            self.sent += STEP * tcp_frames.MAX_CHUNK
        if self.sent >= SENT and not self.done.called:
            self.done.callback(None)

    def pauseProducing(self) -> None:
        self.paused = True

    def stopProducing(self) -> None:
        self.paused = True

    def dataReceived(self, data: bytes) -> None:
        pass

    def connectionLost(self, reason: Any = None) -> None:
        self.closed.callback(None)
        if not self.done.called:
            self.done.callback(None)


class HostilePeersTests(TestCase):
    timeout = 300

    async def node_process(self, address: str, name: str) -> tuple[Any, ProcessOutput, Path]:
        """`bitdust-node --nodaemon` (as the systemd unit runs it) on `address`, its identity `name` created."""
        home = make_home(self, address, node_settings(SERVER))
        output = ProcessOutput()
        args = [sys.executable, "-c", "from bitdust_node.launcher import run; run()", "--nodaemon", "--pidfile=",
                "--config", str(home)]
        spawner: Any = reactor
        process = spawner.spawnProcess(output, sys.executable, args, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                       path=str(home))
        self.addCleanup(lambda: output.ended)
        self.addCleanup(lambda: None if output.ended.called else process.signalProcess("KILL"))
        await eventually(lambda: self.call(home, address, "GET", "/process/info/v1").addErrback(lambda _: None),
                         timeout=60, interval=0.3)
        reply = await self.call(home, address, "POST", "/identity/create/v1", {"username": name})
        self.assertEqual(reply["status"], "OK", reply)
        await eventually(lambda: self.state(home, address, "service_private_messages").addCallback(
            lambda state: state == "ON"), timeout=60, interval=0.3)
        return process, output, home

    def call(self, home: Path, address: str, method: str, path: str, body: Any = None) -> defer.Deferred[Any]:
        secret = home_paths.read_api_secret(home) or ""
        pool = HTTPConnectionPool(reactor, persistent=False)
        data = json.dumps(body).encode() if body is not None else None
        d = treq.request(method, f"http://{address}:{REST_PORT}{path}", data=data,
                         headers=Headers({"api_secret": [secret]}), pool=pool)
        return d.addCallback(treq.content).addCallback(json.loads)

    def state(self, home: Path, address: str, name: str) -> defer.Deferred[str | None]:
        def find(reply: dict[str, Any]) -> str | None:
            return next((s["state"] for s in reply.get("result", []) if s["name"] == name), None)

        return self.call(home, address, "GET", "/service/list/v1").addCallback(find)

    async def services(self, home: Path) -> dict[str, dict[str, Any]]:
        reply = await self.call(home, ALICE, "GET", "/service/list/v1")
        return {s["name"]: s for s in reply["result"]}

    async def test_a_flood_of_unfinished_files_is_held_within_the_budget_and_verified_peers_go_on(self) -> None:
        await start_node(self, SERVER, node_settings(SERVER, "server"))
        process, output, alice_home = await self.node_process(ALICE, "alice")
        bob = await start_named(self, "bob", BOB, node_settings(SERVER))
        status, reply = await api(bob, "GET", "/user/ping/v1?id=alice&timeout=15")
        self.assertEqual(status, 200, reply)
        before = resident_bytes(process.pid)

        attackers: list[Attacker] = []
        for n, source in enumerate([CROWD] * 16 + LONERS):
            attacker = Attacker(1000 + n)
            endpoint = TCP4ClientEndpoint(reactor, ALICE, 7771, timeout=10, bindAddress=(source, 0))
            await connectProtocol(endpoint, attacker)
            attackers.append(attacker)
        self.addCleanup(lambda: [a.transport.abortConnection() for a in attackers  # type: ignore[union-attr]
                                 if not a.closed.called])
        peak = before

        def sample() -> None:
            nonlocal peak
            peak = max(peak, resident_bytes(process.pid))

        sampler = _every(0.05, sample)
        try:
            # a ping while the files pour in, then more once they all stall
            pinged = defer.ensureDeferred(api(bob, "GET", "/user/ping/v1?id=alice&timeout=15"))
            await defer.gatherResults([a.done for a in attackers])
            status, reply = await pinged
            self.assertEqual(status, 200, reply)
            # every file stalls, unfinished: the verified peer's ping and message still go through
            status, reply = await api(bob, "GET", "/user/ping/v1?id=alice&timeout=15")
            self.assertEqual(status, 200, reply)
            status, reply = await api(bob, "POST", "/message/send/v1",
                                      {"id": "alice", "data": {"message": "still here"}})
            self.assertEqual(status, 200, reply)
            history = await self.call(alice_home, ALICE, "GET", "/message/history/v1")
            self.assertIn("still here", json.dumps(history))
            sample()
        finally:
            sampler.stop()
        grown = peak - before
        print(f"\nresident memory of the attacked node: {before / 2**20:.1f} MiB before, peak {peak / 2**20:.1f} MiB,"
              f" grown {grown / 2**20:.1f} MiB while 32 peers sent {32 * SENT / 2**20:.0f} MiB of unfinished files")
        self.assertLess(grown, 100 * 1000 * 1000)

        services = await self.services(alice_home)
        budget = services["service_network"]["receive_budget"]
        tcp = services["service_tcp_connections"]["counters"]
        print(f"receive budget: {budget}\ntcp counters: {tcp}")
        self.assertLessEqual(budget["peak"], budget["total"])
        self.assertGreater(budget["refused"].get("unfinished_file", 0) + budget["evicted"].get("unfinished_file", 0), 0)
        self.assertGreater(tcp.get("refused_receive_budget", 0), 0)
        self.assertGreater(tcp.get("files_evicted", 0), 0)
        self.assertFalse(any(a.closed.called for a in attackers))  # refused, not hung up on: they stall
        self.assertNotIn(b"Traceback", output.out)
        self.assertNotIn(b"#critical]", output.out)


def _every(seconds: float, call: Any) -> Any:
    from twisted.internet.task import LoopingCall

    loop = LoopingCall(call)
    loop.start(seconds)
    return loop
