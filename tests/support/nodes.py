"""Start real nodes on loopback addresses inside the test's reactor, and run the real CLI against them."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import attrs
import treq
from twisted.internet import defer, reactor, utils
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from bitdust_node.dht.node import DhtNode
from bitdust_node.node import Node
from bitdust_node.services.entangled_dht import EntangledDhtService
from bitdust_node.settings import Settings

# keep the many-node tests apart from whatever the developer runs on 127.0.0.1
REST_PORT = 8180


def make_home(testcase: TestCase, address: str, settings: dict[str, Any] | None = None) -> Path:
    """A fresh home whose node listens on `address` (its REST API too) with the given settings."""
    home = Path(testcase.mktemp()).resolve()
    stored = Settings.load(home)
    stored.set("services/network/bind-address", address)
    stored.set("interface/api/rest-http-host", address)
    stored.set("interface/api/rest-http-port", REST_PORT)
    for key, value in (settings or {}).items():
        stored.set(key, value)
    return home


async def start_node(
    testcase: TestCase, address: str, settings: dict[str, Any] | None = None, home: Path | None = None,
) -> Node:
    """Start a Node in this reactor; it is stopped when the test ends."""
    home = home or make_home(testcase, address, settings)
    node = Node(home, reactor=reactor)
    node.startService()
    testcase.addCleanup(lambda: node.stopService() if node.running else None)
    assert node.graph is not None
    await node.graph.settled()
    return node


def running_dht(node: Node) -> DhtNode:
    """The DHT of a node whose service_entangled_dht is ON."""
    assert node.graph is not None
    service = node.graph.service("entangled_dht")
    assert isinstance(service, EntangledDhtService) and service.dht is not None, "service_entangled_dht is not ON"
    return service.dht


@attrs.frozen
class CliResult:
    out: str
    err: str
    code: int


async def run_cli(home: Path, *args: str) -> CliResult:
    """Run `bitdust --config HOME ARGS` as a separate process, without blocking the reactor."""
    out, err, code = await utils.getProcessOutputAndValue(
        sys.executable, ["-m", "bitdust_node.cli", "--config", str(home), *args], env=dict(os.environ),
    )
    return CliResult(out.decode(), err.decode(), code)


async def api(node: Node, method: str, path: str, body: Any = None, secret: bool = True) -> tuple[int, Any]:
    """Call a node's REST API over its real socket; returns (HTTP status, parsed JSON)."""
    headers = {b"api_secret": [node.api_secret.encode()]} if secret else {}
    data = json.dumps(body).encode() if body is not None else None
    # a pool without keep-alive leaves no connection behind for trial to complain about
    pool = HTTPConnectionPool(reactor, persistent=False)
    response = await treq.request(method, node.rest_url() + path, data=data, headers=headers, pool=pool)
    content = await response.content()
    return response.code, json.loads(content)


async def eventually(check: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll `check()` (may return a Deferred) until it is truthy, within a bounded deadline."""
    deadline = reactor.seconds() + timeout
    while True:
        value = await defer.maybeDeferred(check)
        if value:
            return value
        if reactor.seconds() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {check}")
        await deferLater(reactor, interval, lambda: None)
