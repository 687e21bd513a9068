"""The node's log: level from logs/debug-level (live), text or JSON lines, rotation, flood guard,
a real daemon writing one line per refused input, with the peer and the reason, and the same log on every
start path: `bitdust-node`, `twistd bitdust` and `twistd -n bitdust` (a real one, flooded)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import struct
import sys
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.logger import Logger, LogLevel, LogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bitdust_node import logs
from bitdust_node.errors import InvalidSettingValue
from bitdust_node.launcher import split_argv
from bitdust_node.settings import Settings
from tests.support.nodes import eventually, make_home, run_cli
from tests.support.process_output import ProcessOutput

DAEMON_ADDRESS = "127.0.0.24"
TWISTD_ADDRESS = "127.0.0.27"
ROOT = Path(__file__).resolve().parents[1]


def event(text: str, level: LogLevel = LogLevel.info, at: float = 1_700_000_000.0, **fields: Any) -> dict[str, Any]:
    return {"log_format": text, "log_level": level, "log_time": at, "log_namespace": "test", **fields}


class FloodGuardTests(SynchronousTestCase):
    def test_a_burst_then_a_rate_and_the_count_of_what_was_left_out(self) -> None:
        seen: list[dict[str, Any]] = []
        guard = logs.FloodGuard(seen.append, burst=3, per_second=1.0)
        for _ in range(10):
            guard(event("refused from {peer}", peer="1.2.3.4"))
        self.assertEqual(len(seen), 3)
        guard(event("another kind"))
        self.assertEqual(len(seen), 4)
        guard(event("refused from {peer}", at=1_700_000_002.0, peer="1.2.3.4"))
        self.assertEqual(len(seen), 5)
        self.assertEqual(seen[-1]["log_skipped"], 7)
        self.assertIn("7 similar lines left out", logs.text_line(seen[-1]))


class LineTests(SynchronousTestCase):
    def test_json_line_holds_the_text_and_the_fields(self) -> None:
        line = logs.json_line(event("refused from {peer}: {why}", LogLevel.warn, peer="1.2.3.4:7771", why="too big"))
        record = json.loads(line)
        self.assertEqual(line.count("\n"), 1)
        self.assertEqual(record["text"], "refused from 1.2.3.4:7771: too big")
        self.assertEqual((record["level"], record["peer"], record["why"]), ("warn", "1.2.3.4:7771", "too big"))

    def test_text_line_without_the_time_for_the_journal(self) -> None:
        self.assertEqual(logs.text_line(event("hello"), stamped=False), "[test#info] hello\n")
        self.assertRegex(logs.text_line(event("hello")), r"^2023-11-14 \d\d:13:20\+0000 \[test#info\] hello\n$")


class LevelTests(SynchronousTestCase):
    def test_debug_level_applies_while_running(self) -> None:
        out = io.StringIO()
        settings = Settings(None)
        node_log = logs.NodeLog(logs.LineWriter(out))
        node_log.apply(settings)
        publisher = LogPublisher(node_log)
        log = Logger(namespace="test", observer=publisher)
        log.debug("hidden")
        log.info("shown")
        logs._current[:] = [node_log]
        self.addCleanup(logs._current.clear)
        logs.follow(settings)
        settings.set("logs/debug-level", 10)
        log.debug("now shown")
        settings.set("logs/format", "json")
        log.info("as json {n}", n=1)
        lines = out.getvalue().splitlines()
        self.assertEqual([line.split("] ", 1)[1] for line in lines[:2]], ["shown", "now shown"])
        self.assertEqual(json.loads(lines[2])["text"], "as json 1")

    def test_rotation_keeps_at_most_max_files(self) -> None:
        home = Path(self.mktemp())
        settings = Settings.load(home)
        settings.set("logs/max-size", "64 KB")
        settings.set("logs/max-files", 2)
        out = logs.rotated_file(home, settings)
        for _ in range(300):
            out.write("x" * 1000 + "\n")
        out.close()
        names = sorted(p.name for p in (home / "logs").iterdir())
        self.assertEqual(names, ["node.log", "node.log.1", "node.log.2"])
        self.assertLessEqual((home / "logs" / "node.log").stat().st_size, 66 * 1024)
        self.assertEqual((home / "logs" / "node.log").stat().st_mode & 0o777, 0o600)

    def test_bad_settings_are_refused(self) -> None:
        settings = Settings(None)
        for key, value in (("logs/format", "xml"), ("logs/max-size", "1 KB"), ("logs/debug-level", -1)):
            with self.assertRaises(InvalidSettingValue):
                settings.set(key, value)


class LauncherArgvTests(SynchronousTestCase):
    def test_node_options_follow_the_subcommand(self) -> None:
        self.assertEqual(
            split_argv(["--nodaemon", "--pidfile=", "--config", "/h", "-r", "epoll"]),
            (["--nodaemon", "--pidfile=", "-r", "epoll"], ["--config", "/h"]),
        )
        self.assertEqual(split_argv(["-n", "bitdust", "--config=/h"]), (["-n"], ["--config=/h"]))


class StartPathTests(SynchronousTestCase):
    """Every way of starting a node gets the node's log unless the command line names another."""

    def options(self, parse: Any, *argv: str) -> Any:
        self.addCleanup(logs._prepared.clear)
        config = parse()
        config.parseOptions(list(argv))
        return config

    def test_bitdust_node_and_twistd_bitdust_log_alike(self) -> None:
        from twisted.scripts.twistd import ServerOptions

        from bitdust_node.launcher import server_options

        home = Path(self.mktemp()).resolve()
        for parse in (server_options, ServerOptions):
            for foreground in (True, False):
                argv = [*(["--nodaemon"] if foreground else []), "bitdust", "--config", str(home)]
                config = self.options(parse, *argv)
                self.assertIs(config["logger"], logs.node_observer)
                self.assertEqual(logs._prepared, [(home, foreground)])
                node_log = config["logger"]()
                self.addCleanup(logs._current.clear)
                self.assertIsInstance(node_log, logs.NodeLog)
                self.assertEqual(node_log.writer.out is sys.stdout, foreground)

    def test_a_log_named_on_the_command_line_is_honoured(self) -> None:
        from twisted.scripts.twistd import ServerOptions

        for argv in (["--logfile", "x.log"], ["--logfile=-"], ["--logger", "twisted.logger.textFileLogObserver"]):
            config = self.options(ServerOptions, "-n", *argv, "bitdust", "--config", self.mktemp())
            self.assertIsNot(config["logger"], logs.node_observer)
            self.assertEqual(logs._prepared, [])

    def test_the_systemd_unit_runs_bitdust_node_in_the_foreground(self) -> None:
        unit = (ROOT / "debian" / "bitdust.service").read_text()
        start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
        self.assertIn("/bin/bitdust-node --nodaemon", start)
        self.assertNotIn("--logfile", start)


class TwistdFloodTests(TestCase):
    timeout = 90

    async def test_twistd_n_bitdust_cuts_a_flood_of_refusals_to_a_few_lines(self) -> None:
        home = make_home(self, TWISTD_ADDRESS)
        output = ProcessOutput()
        twistd = str(Path(sys.executable).parent / "twistd")
        args = [twistd, "-n", "--pidfile=", "bitdust", "--config", str(home)]
        spawner: Any = reactor
        process = spawner.spawnProcess(output, twistd, args, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                       path=str(home))
        self.addCleanup(lambda: output.ended)
        self.addCleanup(lambda: process.signalProcess("TERM") if output.ended.called is False else None)
        await eventually(lambda: b"listening on tcp" in output.out.lower() or _accepts(TWISTD_ADDRESS, 7771),
                         timeout=40)
        started = reactor.seconds()
        for _ in range(300):  # each a frame length over the cap: one refusal, one line, without the guard
            with socket.create_connection((TWISTD_ADDRESS, 7771), timeout=5) as tcp:
                tcp.sendall(struct.pack(">I", 2**31) + b"1h")
                with contextlib.suppress(OSError):
                    tcp.recv(10)
        await eventually(lambda: output.out.count(b"refused from") >= logs.BURST, timeout=20)
        await deferLater(reactor, 1.5, lambda: None)  # a line of the kind after the burst says what was cut
        with socket.create_connection((TWISTD_ADDRESS, 7771), timeout=5) as tcp:
            tcp.sendall(struct.pack(">I", 2**31) + b"1h")
        await eventually(lambda: b"similar lines left out" in output.out, timeout=10)
        lines = [line for line in output.out.decode(errors="replace").splitlines() if "refused from" in line]
        seconds = reactor.seconds() - started
        self.assertLessEqual(len(lines), logs.BURST + logs.PER_SECOND * seconds + 1)
        self.assertNotIn("Traceback", output.out.decode(errors="replace"))


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


class DaemonLogTests(TestCase):
    timeout = 90

    async def test_refusals_are_one_json_line_each_with_peer_and_reason(self) -> None:
        home = make_home(self, DAEMON_ADDRESS, {"logs/format": "json"})
        self.addCleanup(lambda: run_cli(home, "stop"))
        started = await run_cli(home, "daemon")
        self.assertEqual(started.code, 0, started.out + started.err)
        log = home / "logs" / "node.log"
        # a TCP frame announcing a length over the cap, and a datagram that is not bencode
        with socket.create_connection((DAEMON_ADDRESS, 7771), timeout=5, source_address=(DAEMON_ADDRESS, 0)) as tcp:
            tcp.sendall(struct.pack(">I", 2**31) + b"1h")
            peer = tcp.getsockname()
            with contextlib.suppress(ConnectionResetError):
                tcp.recv(10)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((DAEMON_ADDRESS, 0))
            udp.sendto(b"\xff not bencode", (DAEMON_ADDRESS, 14441))
            sender = udp.getsockname()
        await eventually(lambda: log.exists() and "DHT dropped input" in log.read_text())
        await deferLater(reactor, 0.2, lambda: None)
        records = [json.loads(line) for line in log.read_text().splitlines()]
        refused = [r for r in records if r["text"].startswith("refused from")]
        self.assertEqual(len(refused), 1, records)
        self.assertIn(f"{peer[0]}:{peer[1]}", refused[0]["text"])
        dropped = [r for r in records if "DHT dropped input" in r["text"]]
        self.assertEqual(len(dropped), 1)
        self.assertIn(f"from {sender[0]}:{sender[1]}: ", dropped[0]["text"])
        self.assertFalse([r for r in records if "traceback" in r or "Traceback" in r["text"]])
