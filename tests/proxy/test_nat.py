"""NAT for real: bob's node sits in its own network namespace whose firewall drops every inbound connection,
so only connections bob opens work. Alice, in a second namespace, sends bob a private message; it reaches
him through the router in a third, and the router's traffic, captured on its link, never holds the text.

Needs root (namespaces, veth, a bridge, nftables); without it the test says so and skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from twisted.internet import reactor, utils
from twisted.trial.unittest import SkipTest, TestCase

from bitdust_node.identity.cache import identity_http
from bitdust_node.settings import Settings
from bitdust_node.wire import identity_xml
from tests.support.nodes import eventually
from tests.support.processes import ROOT, NodeProcess

BRIDGE = "bdnat0"
HOST = "10.77.0.1"
# name -> (namespace, address); the seed and identity server run outside, on the bridge
PLACES = {"router": ("bdnat-r", "10.77.0.2"), "alice": ("bdnat-a", "10.77.0.3"), "bob": ("bdnat-b", "10.77.0.4")}
SERVER_REST = "127.0.0.70"
# two halves, each unique: a segment boundary can cut one of them, never both
SECRET = ("plaintext-first-half-4c1d9e", "plaintext-second-half-77ab02")
INBOUND_DROPPED = (
    "add table inet bdnat; "
    "add chain inet bdnat input { type filter hook input priority 0 ; policy drop ; } ; "
    "add rule inet bdnat input iif lo accept ; "
    "add rule inet bdnat input ct state established,related accept"
)
CAPTURE = """
import socket, sys
link = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))
link.bind((sys.argv[1], 0))
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        out.write(link.recv(262144))
"""


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def can_make_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def tear_down_network() -> None:
    for namespace, _address in PLACES.values():
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)


def build_network() -> None:
    tear_down_network()  # what a killed earlier run left
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "addr", "add", f"{HOST}/24", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    for namespace, address in PLACES.values():
        outside, inside = namespace + "-h", namespace + "-n"
        sh("ip", "netns", "add", namespace)
        sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        sh("ip", "link", "set", inside, "netns", namespace)
        sh("ip", "link", "set", outside, "master", BRIDGE, "up")
        sh("ip", "netns", "exec", namespace, "ip", "addr", "add", f"{address}/24", "dev", inside)
        sh("ip", "netns", "exec", namespace, "ip", "link", "set", inside, "up")
        sh("ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up")
    sh("ip", "netns", "exec", PLACES["bob"][0], "nft", INBOUND_DROPPED)


def node_home(test: TestCase, address: str, rest_host: str, extra: dict[str, Any]) -> Path:
    home = Path(test.mktemp()).resolve()
    settings = Settings.load(home)
    base = {
        "services/network/bind-address": address,
        "interface/api/rest-http-host": rest_host,
        "services/identity-propagate/known-servers": f"{HOST}:8084",
        "services/identity-propagate/min-servers": 1,
        "personal/private-key-size": 1024,
        "services/entangled-dht/known-nodes": f"{HOST}:14441",
        "services/proxy-transport/enabled": False,
    }
    for key, value in {**base, **extra}.items():
        settings.set(key, value)
    return home


async def cli(namespace: str | None, home: Path, *args: str) -> tuple[int, str]:
    """`bitdust --config HOME ARGS` run where the node runs (inside its namespace)."""
    command = [sys.executable, "-m", "bitdust_node.cli", "--config", str(home), *args]
    if namespace is not None:
        command = ["ip", "netns", "exec", namespace, *command]
    out, err, code = await utils.getProcessOutputAndValue(command[0], command[1:], env=dict(os.environ),
                                                          path=str(ROOT))
    return code, (out + err).decode()


async def reachable(namespace: str, host: str, port: int) -> bool:
    probe = f"import socket; socket.create_connection(({host!r}, {port}), timeout=2)"
    _out, _err, code = await utils.getProcessOutputAndValue("ip", ["netns", "exec", namespace, sys.executable,
                                                                   "-c", probe])
    return code == 0


class NatTests(TestCase):
    timeout = 180

    def setUp(self) -> None:
        why = can_make_namespaces()
        if why is not None:
            raise SkipTest(why)
        build_network()
        self.addCleanup(tear_down_network)

    def start(self, name: str | None, extra: dict[str, Any]) -> tuple[NodeProcess, Path]:
        if name is None:
            home = node_home(self, HOST, SERVER_REST, extra)
            return NodeProcess(self, HOST, {}, home=home), home
        namespace, address = PLACES[name]
        home = node_home(self, address, "127.0.0.1", extra)
        return NodeProcess(self, address, {}, home=home, prefix=("ip", "netns", "exec", namespace)), home

    async def create(self, name: str | None, home: Path, username: str) -> None:
        namespace = PLACES[name][0] if name else None

        async def created() -> bool:
            code, out = await cli(namespace, home, "identity", "create", username)
            return code == 0 or "already exist" in out

        await eventually(created, timeout=30, interval=0.5)

    async def test_a_user_behind_nat_gets_a_message_through_a_router(self) -> None:
        _server, server_home = self.start(None, {
            "services/identity-server/enabled": True, "services/identity-server/host": HOST,
            "services/entangled-dht/known-nodes": "genesis",
        })
        await self.create(None, server_home, "seed")
        _router, router_home = self.start("router", {"services/proxy-server/enabled": True})
        await self.create("router", router_home, "router")
        _alice, alice_home = self.start("alice", {})
        await self.create("alice", alice_home, "alice")
        _bob, bob_home = self.start("bob", {"services/proxy-transport/enabled": True})
        await self.create("bob", bob_home, "bob")
        bob_ns = PLACES["bob"][0]

        async def bob_routed() -> bool:
            _code, out = await cli(bob_ns, bob_home, "states")
            return "proxy_receiver(LISTEN)" in out

        await eventually(bob_routed, timeout=90, interval=0.5)
        # nobody can open a connection to bob; his identity sends them to the router instead
        self.assertFalse(await reachable(PLACES["alice"][0], PLACES["bob"][1], 7771))
        reply = await identity_http(reactor).get(f"http://{HOST}:8084/bob.xml")
        self.assertEqual(identity_xml.parse(reply.body).contacts, (f"tcp://{PLACES['router'][1]}:7771",))
        capture_file = Path(self.mktemp())
        capture = subprocess.Popen([sys.executable, "-c", CAPTURE, PLACES["router"][0] + "-h", str(capture_file)])
        self.addCleanup(lambda: capture.poll() is not None or capture.kill())
        text = " ".join(SECRET)
        code, out = await cli(PLACES["alice"][0], alice_home, "msg", "send", "bob", text)
        self.assertEqual(code, 0, out)

        async def delivered() -> bool:
            _code, out = await cli(bob_ns, bob_home, "msg", "history")
            return text in out

        await eventually(delivered, timeout=20, interval=0.5)
        capture.kill()
        capture.wait()
        seen = capture_file.read_bytes()
        self.assertIn(b"RelayIn", seen, "the capture did not see the router's traffic")
        for half in SECRET:
            self.assertNotIn(half.encode(), seen, "the message's text crossed the router in the clear")
        code, out = await cli(PLACES["router"][0], router_home, "states", "-v")
        self.assertRegex(out, r"proxy_router\(LISTEN\).* routes 1/20")
