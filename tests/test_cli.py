"""The `bitdust` command as a user types it, against a real node on a loopback address."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import treq
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from bitdust_node.services.catalog import DEPENDS as GRAPH
from tests.support.nodes import api, eventually, make_home, run_cli, start_node

ADDRESS = "127.0.0.20"


class CliAgainstRunningNode(TestCase):
    async def test_states_and_services(self) -> None:
        node = await start_node(self, ADDRESS)
        states = await run_cli(node.home, "states")
        self.assertEqual(states.code, 0, states.err)
        lines = states.out.splitlines()
        self.assertIn("service_network(ON)", states.out)
        for line in lines:
            self.assertRegex(line, r"^\d+: \w+\([A-Z_]+\)$")
        services = await run_cli(node.home, "services")
        self.assertEqual(services.code, 0, services.err)
        listed = {re.match(r"^\d+: service_(\w+)\(", line).group(1) for line in services.out.splitlines()}  # type: ignore[union-attr]
        self.assertEqual(listed, set(GRAPH))
        self.assertRegex(services.out, r"\d+: service_identity_server\(OFF\) DISABLED")

    async def test_switching_network_off_and_on_live(self) -> None:
        node = await start_node(self, ADDRESS)
        off = await run_cli(node.home, "set", "services/network/enabled", "false")
        self.assertEqual(off.code, 0, off.err)
        services = (await run_cli(node.home, "services")).out
        self.assertRegex(services, r"service_network\(OFF\) DISABLED")
        # its dependents are down too, each OFF, DEPENDS_OFF or not installed - never ON
        self.assertNotIn("(ON)", services)
        on = await run_cli(node.home, "set", "services/network/enabled", "true")
        self.assertEqual(on.code, 0, on.err)
        self.assertIn("service_network(ON)", (await run_cli(node.home, "states")).out)

    async def test_set_get_round_trip_and_refusals(self) -> None:
        node = await start_node(self, ADDRESS)
        done = await run_cli(node.home, "set", "services/supplier/donated-space", "50 GB")
        self.assertEqual(done.code, 0, done.err)
        got = await run_cli(node.home, "get", "services/supplier/donated-space")
        self.assertEqual(got.out.strip(), "services/supplier/donated-space (disk space) : 50 GB")
        before = (node.home / "config.json").read_bytes()
        banana = await run_cli(node.home, "set", "services/entangled-dht/udp-port", "banana")
        self.assertEqual(banana.code, 2)
        self.assertEqual(len(banana.err.strip().splitlines()), 1)
        self.assertIn("services/entangled-dht/udp-port", banana.err)
        self.assertNotIn("Traceback", banana.err)
        unknown = await run_cli(node.home, "set", "no/such/key", "1")
        self.assertEqual(unknown.code, 2)
        self.assertIn("no/such/key", unknown.err)
        self.assertEqual((node.home / "config.json").read_bytes(), before)
        self.assertEqual(node.settings.get("services/entangled-dht/udp-port"), 14441)

    async def test_rest_listens_on_loopback_only(self) -> None:
        node = await start_node(self, ADDRESS)
        assert node.rest_port is not None
        self.assertEqual(node.rest_port.getHost().host, ADDRESS)
        code, reply = await api(node, "GET", "/process/health/v1", secret=False)
        self.assertEqual((code, reply["status"]), (401, "ERROR"))
        code, reply = await api(node, "GET", "/process/health/v1")
        self.assertEqual((code, reply["status"]), (200, "OK"))
        # the same port on every other local address is closed
        for other in ("127.0.0.1", *node.graph.service("network").addresses):  # type: ignore[union-attr]
            if other == ADDRESS:
                continue
            with socket.socket() as sock:
                sock.settimeout(1)
                self.assertNotEqual(sock.connect_ex((other, node.rest_port.getHost().port)), 0, other)

    async def test_stop_over_rest(self) -> None:
        node = await start_node(self, ADDRESS)
        stopped = await run_cli(node.home, "stop")
        self.assertEqual(stopped.code, 0, stopped.err)
        self.assertFalse(node.running)


class CliWithoutNode(TestCase):
    async def test_settings_edit_the_home(self) -> None:
        home = make_home(self, ADDRESS)
        done = await run_cli(home, "set", "services/supplier/donated-space", "512 MB")
        self.assertEqual(done.code, 0, done.err)
        self.assertEqual(json.loads((home / "config.json").read_text())["services/supplier/donated-space"], "512 MB")
        got = await run_cli(home, "get", "services/supplier")
        self.assertIn("services/supplier/donated-space (disk space) : 512 MB", got.out)
        bad = await run_cli(home, "set", "services/supplier/donated-space", "lots")
        self.assertEqual(bad.code, 2)

    async def test_process_commands_say_no_node(self) -> None:
        home = Path(self.mktemp())
        for command in ("status", "stop", "states", "services"):
            result = await run_cli(home, command)
            self.assertEqual(result.code, 1, command)
            self.assertIn("no node is running", result.out + result.err)
            self.assertNotIn("Traceback", result.err)

    async def test_help_on_every_command(self) -> None:
        for command in ("set", "get", "daemon", "stop", "restart", "status", "states", "services"):
            result = await run_cli(Path(self.mktemp()), command, "--help")
            self.assertEqual(result.code, 0, command)
            self.assertIn("usage: bitdust", result.out)


class DaemonLifeCycle(TestCase):
    """`bitdust daemon`, `status`, `restart`, `stop` with a real twistd process."""

    timeout = 120

    async def test_daemon_restart_keeps_settings(self) -> None:
        home = make_home(self, "127.0.0.21")
        self.addCleanup(lambda: run_cli(home, "stop"))
        started = await run_cli(home, "daemon")
        self.assertEqual(started.code, 0, started.out + started.err)
        self.assertIn("node started", started.out)
        again = await run_cli(home, "daemon")
        self.assertEqual(again.code, 1)
        self.assertIn("already running", again.err)
        await run_cli(home, "set", "services/supplier/donated-space", "50 GB")
        await run_cli(home, "set", "services/network/enabled", "false")
        restarted = await run_cli(home, "restart")
        self.assertEqual(restarted.code, 0, restarted.out + restarted.err)
        status = await run_cli(home, "status")
        self.assertEqual(status.code, 0)
        self.assertIn("node is running", status.out)
        got = await run_cli(home, "get", "services/supplier/donated-space")
        self.assertIn(": 50 GB", got.out)
        self.assertRegex((await run_cli(home, "services")).out, r"service_network\(OFF\) DISABLED")
        stopped = await run_cli(home, "stop")
        self.assertEqual(stopped.code, 0, stopped.err)
        await deferLater(reactor, 0, lambda: None)
        self.assertEqual((await run_cli(home, "status")).code, 1)

    async def test_no_seeds_is_said_once_with_what_to_set(self) -> None:
        home = make_home(self, "127.0.0.23")  # known-nodes left at its default: empty
        self.addCleanup(lambda: run_cli(home, "stop"))
        started = await run_cli(home, "daemon")
        self.assertEqual(started.code, 0, started.out + started.err)
        log = home / "logs" / "node.log"
        await eventually(lambda: log.exists() and "no DHT seeds configured" in log.read_text())
        status = await run_cli(home, "status")
        self.assertIn("service_entangled_dht: no DHT seeds configured: set services/entangled-dht/known-nodes",
                      status.out)
        secret = {b"api_secret": [(home / "apisecret").read_bytes().strip()]}
        pool = HTTPConnectionPool(reactor, persistent=False)
        reply = await treq.get("http://127.0.0.23:8180/network/status/v1?dht=1", headers=secret, pool=pool)
        dht = json.loads(await reply.content())["result"]["dht"]
        self.assertEqual(dht["bootstrap"]["state"], "NO_SEEDS")
        self.assertIn("set services/entangled-dht/known-nodes", dht["bootstrap"]["reason"])
        # the old node retried at 2, 4, 8 s for ever; this one said it once and waits for a setting
        await deferLater(reactor, 7.0, lambda: None)
        text = log.read_text()
        self.assertEqual(text.count("no DHT seeds configured"), 1, text)
        self.assertNotIn("no DHT seed answered", text)
        settings = json.loads((home / "config.json").read_text())
        self.assertNotIn("services/entangled-dht/known-nodes", settings)
        reply = await run_cli(home, "dht", "get", "anything")
        self.assertNotIn("Traceback", reply.err)

    async def test_daemon_reports_a_busy_port_in_one_line(self) -> None:
        node = await start_node(self, "127.0.0.22")
        home = make_home(self, "127.0.0.22")
        failed = await run_cli(home, "daemon")
        self.assertEqual(failed.code, 1)
        self.assertIn("did not start", failed.err)
        self.assertIn("127.0.0.22:8180", failed.err)
        self.assertNotIn("Traceback", failed.err)
        self.assertTrue(node.running)
