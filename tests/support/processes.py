"""Nodes as real `twistd bitdust` processes on loopback, for tests that SIGKILL them."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import treq
from twisted.internet import defer, protocol, reactor
from twisted.internet.error import ProcessExitedAlready
from twisted.trial import unittest
from twisted.web.client import HTTPConnectionPool
from twisted.web.http_headers import Headers

import bitdust_node
from bitdust_node import home as home_paths
from tests.support.nodes import REST_PORT, make_home
from tests.support.unit import unit_environment

ROOT = Path(bitdust_node.__file__).resolve().parents[1]


class _Watch(protocol.ProcessProtocol):
    def __init__(self) -> None:
        self.ended: defer.Deferred[None] = defer.Deferred()

    def processEnded(self, reason: Any) -> None:
        self.ended.callback(None)


class NodeProcess:
    def __init__(
        self, testcase: unittest.TestCase, address: str, settings: dict[str, Any], home: Path | None = None,
        prefix: tuple[str, ...] = (),
    ) -> None:
        self.address = address
        self.home: Path = home or make_home(testcase, address, settings)
        self.watch = _Watch()
        twistd = str(Path(sys.executable).parent / "twistd")
        # a prefix runs the node elsewhere, e.g. `ip netns exec NS` in a network namespace
        args = [
            *prefix,
            twistd,
            "-n",
            "--pidfile=",
            "--logfile",
            str(self.home / "twistd.log"),
            "bitdust",
            "--config",
            str(self.home),
        ]
        # as the unit runs the node (its environment: byte code level, home); twistd finds the bitdust dropin
        # under the source tree's twisted/plugins
        env = {**os.environ, **unit_environment(), "BITDUST_HOME": str(self.home), "PYTHONPATH": str(ROOT)}
        spawner: Any = reactor
        self.process: Any = spawner.spawnProcess(self.watch, args[0], args, env=env, path=str(ROOT))
        self.alive = True
        testcase.addCleanup(self.kill)

    def kill(self) -> defer.Deferred[None]:
        if self.alive:
            self.alive = False
            try:
                self.process.signalProcess("KILL")
            except ProcessExitedAlready:
                pass
        return self.watch.ended

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        secret = home_paths.read_api_secret(self.home) or ""
        pool = HTTPConnectionPool(reactor, persistent=False)
        data = json.dumps(body).encode() if body is not None else None
        response = await treq.request(
            method,
            f"http://{self.address}:{REST_PORT}{path}",
            data=data,
            headers=Headers({"api_secret": [secret]}),
            pool=pool,
        )
        return json.loads(await response.content())
