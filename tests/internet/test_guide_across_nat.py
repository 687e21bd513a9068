"""The guide on an internet of network namespaces (net.sh): every host behind NAT, as on the real internet.

  a   11.0.0.10 <- 10.10.0.2      one-to-one NAT (cloud VM)  DHT genesis, identity server
  b   11.0.0.11 <- 10.11.0.2      one-to-one NAT             joins the DHT, identity server
  c   11.0.0.12 <- 10.12.0.2      one-to-one NAT             proxy router
  s1  11.0.0.21 <- 192.168.21.2   home router, 7771 (and the DHT's 14441) forwarded   supplier carl
  s2  11.0.0.22 <- 192.168.22.2   home router with miniupnpd, UPnP on in the node     supplier dave
  u   11.0.0.30 <- 192.168.30.2   home router, nothing forwarded: routed by c         customer alice

Every node is a real `bitdust daemon` in its namespace, driven with the CLI and curl there as a user
would; each learns its outside address from the others (STUN through the DHT) and publishes only
that. Needs root and `ip netns` (CI runs as root), nftables and miniupnpd (`.ci/run` installs them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import reactor, utils
from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest, TestCase

HERE = Path(__file__).resolve().parent
NET = HERE / "net.sh"
PROFILES = HERE.parents[1] / "conf" / "settings"
PUBLIC = {"a": "11.0.0.10", "b": "11.0.0.11", "c": "11.0.0.12", "s1": "11.0.0.21", "s2": "11.0.0.22", "u": "11.0.0.30"}
PRIVATE = {"a": "10.10.0.2", "b": "10.11.0.2", "c": "10.12.0.2", "s1": "192.168.21.2", "s2": "192.168.22.2",
           "u": "192.168.30.2"}
SERVERS = (PUBLIC["a"], PUBLIC["b"])
# the guide's profiles with the guide's host names put to the public addresses; identity servers on 8084
NAMES = {"host-a.com:80": f"{PUBLIC['a']}:8084", "host-b.com:80": f"{PUBLIC['b']}:8084",
         "host-a.com": PUBLIC["a"], "host-b.com": PUBLIC["b"]}
FILE_BYTES = 1 << 20


@attrs.frozen
class Host:
    key: str
    home: Path

    @property
    def ns(self) -> str:
        return f"nat-{self.key}"

    @property
    def public(self) -> str:
        return PUBLIC[self.key]


@attrs.frozen
class Done:
    out: str
    err: str
    code: int


def profile(name: str, **changes: Any) -> dict[str, Any]:
    text = (PROFILES / f"{name}.json").read_text()
    for guide_name, address in NAMES.items():
        text = text.replace(guide_name, address)
    settings: dict[str, Any] = json.loads(text)
    settings.update({"personal/private-key-size": 1024, **changes})
    return settings


class GuideAcrossNatTest(TestCase):
    timeout = 420

    def setUp(self) -> None:
        if os.geteuid() != 0:
            raise SkipTest("the internet in network namespaces needs root (CI runs as root)")
        for tool in ("ip", "nft", "curl"):
            if shutil.which(tool) is None:
                raise SkipTest(f"{tool} is not installed (.ci/run installs iproute2, nftables and curl)")
        if not Path("/usr/sbin/miniupnpd").exists():
            raise SkipTest("miniupnpd is not installed (.ci/run installs miniupnpd-nftables)")
        probe = subprocess.run(["ip", "netns", "add", "nat-probe"], capture_output=True, text=True, check=False)
        if probe.returncode != 0:
            raise SkipTest(f"network namespaces cannot be made here: {probe.stderr.strip()}")
        subprocess.run(["ip", "netns", "delete", "nat-probe"], capture_output=True, check=False)
        self.work = Path(self.mktemp()).resolve()
        self.work.mkdir(parents=True)
        self.started = time.monotonic()

    async def run_in(self, ns: str, *args: str) -> Done:
        out, err, code = await utils.getProcessOutputAndValue(
            shutil.which("ip") or "ip", ["netns", "exec", ns, *args], env=dict(os.environ),
        )
        return Done(out.decode(errors="replace"), err.decode(errors="replace"), code)

    async def net(self, action: str) -> None:
        out, err, code = await utils.getProcessOutputAndValue("/bin/bash", [str(NET), action, str(self.work)],
                                                              env=dict(os.environ))
        self.assertEqual(code, 0, f"net.sh {action}: {(out + err).decode(errors='replace')}")

    async def bitdust(self, host: Host, *args: str) -> str:
        """`bitdust --config HOME ARGS` on the host; the step must succeed."""
        done = await self.run_in(host.ns, sys.executable, "-m", "bitdust_node.cli", "--config", str(host.home), *args)
        self.assertEqual(done.code, 0, f"{host.key}: bitdust {' '.join(args)}\n{done.out}\n{done.err}")
        return done.out

    async def curl(self, host: Host, url: str, secret: bool = False) -> tuple[int, str]:
        args = ["curl", "-s", "-m", "20", "-w", "\n%{http_code}"]
        if secret:
            args += ["-H", f"api_secret: {(host.home / 'apisecret').read_text().strip()}"]
        done = await self.run_in(host.ns, *args, url)
        body, _, status = done.out.rpartition("\n")
        return int(status or 0), body

    async def status(self, host: Host) -> dict[str, Any]:
        code, body = await self.curl(host, "http://127.0.0.1:8180/network/status/v1", secret=True)
        self.assertEqual(code, 200, body)
        result: dict[str, Any] = json.loads(body)["result"]
        return result

    async def eventually(self, check: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = await check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout} s\n{await self.dht_views()}")
            await deferLater(reactor, 0.5, lambda: None)

    async def dht_views(self) -> str:
        """What each running node's DHT holds, for a failure's message."""
        lines = []
        for key in PUBLIC:
            host = Host(key, self.work / f"home-{key}")
            if not (host.home / "apisecret").exists():
                continue
            code, body = await self.curl(host, "http://127.0.0.1:8180/network/status/v1?dht=1", secret=True)
            if code == 200:
                layers = json.loads(body)["result"].get("dht", {}).get("layers", [])
                lines.append(f"{key}: " + ", ".join(f"layer {x['layer_id']}: {x['contacts']}" for x in layers
                                                     if x["contacts"]))
        return "\n".join(lines)

    async def start(self, key: str, settings: dict[str, Any]) -> Host:
        host = Host(key, self.work / f"home-{key}")
        path = self.work / f"{key}.json"
        path.write_text(json.dumps(settings))
        await self.bitdust(host, "init", "--profile", str(path))
        self.addCleanup(self.run_in, host.ns, sys.executable, "-m", "bitdust_node.cli", "--config", str(host.home),
                        "stop")
        await self.bitdust(host, "daemon")
        return host

    async def learned_outside(self, host: Host, timeout: float = 90) -> dict[str, Any]:
        """The node's status once STUN taught it its public address."""
        async def check() -> dict[str, Any] | None:
            status = await self.status(host)
            external = status.get("external") or {}
            return status if external.get("source") == "stun" and external.get("address") == host.public else None

        found: dict[str, Any] = await self.eventually(check, timeout, f"{host.key} learns {host.public}")
        return found

    async def served_contacts(self, name: str) -> list[list[str]]:
        """The contacts of `name`'s identity as each identity server serves it (curl from the router's host)."""
        found = []
        for server in SERVERS:
            code, xml = await self.curl(self.c, f"http://{server}:8084/{name}.xml")
            found.append(re.findall(r"<contact>([^<]+)</contact>", xml) if code == 200 else [])
        return found

    async def test_the_guide_across_nat(self) -> None:
        self.addCleanup(self.net, "down")
        await self.net("up")

        # 1. the core hosts, each on a cloud VM behind one-to-one NAT
        a = await self.start("a", profile("seed-node", **{"services/identity-server/host": PUBLIC["a"]}))
        b = await self.start("b", profile("identity-server", **{"services/identity-server/host": PUBLIC["b"]}))
        self.c = c = await self.start("c", profile("proxy-router"))
        for host in (a, b, c):
            status = await self.learned_outside(host)
            self.assertEqual(status["external_address"], host.public)
            self.assertEqual(status["local_addresses"][0], PRIVATE[host.key])
            self.assertTrue(status["external"]["behind_nat"])
            self.assertGreaterEqual(status["external"]["stun"]["last_round"]["answered"], 2)
        await self.bitdust(c, "identity", "create", "hostc")
        self.assertEqual(await self.served_contacts("hostc"), [[f"tcp://{PUBLIC['c']}:7771"]] * 2)

        # the router runs behind NAT and no peer reached it yet: `bitdust services -v` says so
        async def router_line() -> str:
            services = await self.bitdust(c, "services", "-v")
            line = next(line for line in services.splitlines() if "service_proxy_server(" in line)
            return line if "(ON)" in line else ""

        self.assertIn("behind NAT", await self.eventually(router_line, 30, "the proxy server runs"))

        # 2. home suppliers: carl's router forwards the guide's ports, dave's node asks its router by UPnP
        supplier = {"services/proxy-transport/enabled": False, "services/supplier/donated-space": "1 GB"}
        carl = await self.start("s1", profile("supplier", **supplier))
        dave = await self.start("s2", profile("supplier", **supplier, **{"services/network/upnp-enabled": True}))
        # 3. alice's router forwards nothing: she uses the proxy router
        alice = await self.start("u", profile("customer", **{"services/customer/needed-space": "256 MB"}))
        for host, name in ((carl, "carl"), (dave, "dave"), (alice, "alice")):
            # as a new user would: the node is up, its status names the outside address, then the identity
            status = await self.learned_outside(host)
            self.assertNotEqual(status["external"]["local_address"], host.public)
            created = await self.bitdust(host, "identity", "create", name)
            self.assertIn(f"http://{PUBLIC['a']}:8084/{name}.xml", created)
        for host, name in ((carl, "carl"), (dave, "dave")):
            self.assertEqual(await self.served_contacts(name), [[f"tcp://{host.public}:7771"]] * 2)
        upnp = (await self.status(dave))["external"]["upnp"]
        self.assertEqual((upnp["state"], upnp["via"], upnp["external_ip"], upnp["lan_ip"]),
                         ("MAPPED", "UPnP", PUBLIC["s2"], PRIVATE["s2"]))
        self.assertEqual(upnp["mapped_ports"], ["TCP 7771", "UDP 14441"])
        rules = await self.run_in("nat-rs2", "nft", "list", "chain", "inet", "filter", "prerouting_miniupnpd")
        self.assertIn(f"dnat ip to {PRIVATE['s2']}:7771", rules.out)

        # 4. alice rents a route: her identity now names the router's outside address
        router_contact = f"tcp://{PUBLIC['c']}:7771"

        async def routed() -> bool:
            return await self.served_contacts("alice") == [[router_contact]] * 2

        await self.eventually(routed, 90, "alice's identity names her router")

        # 5. a file stored on the home suppliers and restored byte for byte
        await self.bitdust(alice, "set", "services/customer/suppliers-number", "2")

        async def suppliers_connected() -> bool:
            code, body = await self.curl(alice, "http://127.0.0.1:8180/supplier/list/v1", secret=True)
            listed = json.loads(body).get("result", []) if code == 200 else []
            return sum(1 for s in listed if s.get("contact_state") == "CONNECTED") >= 2

        await self.eventually(suppliers_connected, 120, "alice hires carl and dave")
        original = self.work / "report.bin"
        original.write_bytes(os.urandom(FILE_BYTES))
        self.assertIn("stored as report.bin", await self.bitdust(alice, "file", "upload", str(original), "report.bin"))
        restored = self.work / "restored"
        restored.mkdir()
        await self.bitdust(alice, "file", "download", "report.bin", str(restored))
        self.assertEqual((restored / "report.bin").read_bytes(), original.read_bytes())
        for host in (carl, dave):
            _code, body = await self.curl(host, "http://127.0.0.1:8180/space/donated/v1", secret=True)
            self.assertGreater(json.loads(body)["result"]["consumed"], 0, host.key)

        # 6. the routed user messages a supplier, and is answered through her router
        self.assertIn("message sent to carl", await self.bitdust(alice, "msg", "send", "carl", "hello carl"))

        async def history_has(host: Host, text: str) -> bool:
            done = await self.run_in(host.ns, sys.executable, "-m", "bitdust_node.cli", "--config", str(host.home),
                                     "msg", "history")
            return done.code == 0 and text in done.out

        await self.eventually(lambda: history_has(carl, "hello carl"), 60, "carl reads alice's message")
        await self.bitdust(carl, "msg", "send", "alice", "hello alice")
        await self.eventually(lambda: history_has(alice, "hello alice"), 60, "alice reads carl's answer")

        # 7. every identity published holds only outside addresses
        for name in ("hostc", "carl", "dave", "alice"):
            for contacts in await self.served_contacts(name):
                self.assertTrue(contacts, name)
                for contact in contacts:
                    self.assertIn(contact.removeprefix("tcp://").rpartition(":")[0], PUBLIC.values(), name)
        # peers came in from outside: the home suppliers' forwarded ports work, and the router is reached
        for host in (carl, dave, c):
            external = (await self.status(host))["external"]
            self.assertTrue(external["reached"], host.key)
            self.assertTrue(external["port_forwarded"], host.key)
        services = await self.bitdust(c, "services", "-v")
        self.assertNotIn("behind NAT", next(line for line in services.splitlines() if "service_proxy_server(" in line))

        # 8. dave stops: his router forwards nothing any more
        await self.bitdust(dave, "stop")
        rules = await self.run_in("nat-rs2", "nft", "list", "chain", "inet", "filter", "prerouting_miniupnpd")
        self.assertNotIn("dnat", rules.out)
        for host in (alice, carl, c, b, a):
            await self.bitdust(host, "stop")
        print(f"\n    the guide across NAT took {time.monotonic() - self.started:.0f} s")

    async def test_nat_pmp_with_debian_miniupnpd(self) -> None:
        """A router that offers NAT-PMP (miniupnpd does both): the node's client maps a port and removes it."""
        self.addCleanup(self.net, "down")
        await self.net("up")
        client = "from bitdust_node.net.natpmp import NatPmpClient\nclient = NatPmpClient()\nlan = client.discover()\n"
        mapped = await self.run_in("nat-s2", sys.executable, "-c", client + (
            "client.add_mapping((7000, 'TCP'), lan, 'test', 600)\nprint(lan, client.external_ip())\n"))
        self.assertEqual(mapped.code, 0, mapped.err)
        self.assertEqual(mapped.out.split(), [PRIVATE["s2"], PUBLIC["s2"]])
        rules = await self.run_in("nat-rs2", "nft", "list", "chain", "inet", "filter", "prerouting_miniupnpd")
        self.assertIn(f"dnat ip to {PRIVATE['s2']}:7000", rules.out)
        removed = await self.run_in("nat-s2", sys.executable, "-c", client + "client.remove_mapping((7000, 'TCP'))\n")
        self.assertEqual(removed.code, 0, removed.err)
        rules = await self.run_in("nat-rs2", "nft", "list", "chain", "inet", "filter", "prerouting_miniupnpd")
        self.assertNotIn(":7000", rules.out)
