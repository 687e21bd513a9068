"""Helpers for identity server tests: signed identities, raw HTTP/TCP clients, a running server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
from cryptography.hazmat.primitives.asymmetric import rsa
from twisted.internet import defer, protocol
from twisted.internet import reactor as _global_reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from bitdust_node.identity.server import IdServer
from bitdust_node.identity.server_http_fast import make_site
from bitdust_node.identity.server_store import IdentityStore
from bitdust_node.identity.server_tcp import make_receiver
from bitdust_node.identity.signing import sign_identity
from bitdust_node.wire import identity_xml

# zope interfaces confuse mypy; the global reactor is all tests need
reactor: Any = _global_reactor
# loopback address reserved for the identity tests
LISTEN = "127.0.0.10"


def make_identity(
    name: str,
    key: rsa.RSAPrivateKey,
    hosts: tuple[str, ...] = ("127.0.0.1:8084",),
    revision: int = 0,
    contact: str = "tcp://127.0.0.1:7771",
) -> bytes:
    identity = identity_xml.Identity(
        sources=tuple(f"http://{h}/{name}.xml" for h in hosts),
        contacts=(contact,),
        date="Nov 25, 2026",
        version="sources" if revision else "",
        revision=revision,
    )
    return identity_xml.serialize(sign_identity(identity, key))


class _Collect(protocol.Protocol):
    """Send `parts` with `gap` seconds between them; collect the reply until the server closes."""

    def __init__(self, parts: list[bytes], gap: float) -> None:
        self.parts = parts
        self.gap = gap
        self.received = bytearray()
        self.done: defer.Deferred[bytes] = defer.Deferred()
        self._call: Any = None

    def _transport(self) -> Any:
        return self.transport

    def connectionMade(self) -> None:
        self._send_next(0)

    def _send_next(self, index: int) -> None:
        self._transport().write(self.parts[index])
        if index + 1 < len(self.parts):
            self._call = reactor.callLater(self.gap, self._send_next, index + 1)

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Any = None) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self.done.callback(bytes(self.received))


def paced(port: int, parts: list[bytes], gap: float, address: str = LISTEN) -> defer.Deferred[bytes]:
    """Send each part `gap` seconds after the previous one to address:port; the whole reply."""
    client = _Collect(parts, gap)
    endpoint = TCP4ClientEndpoint(reactor, address, port, timeout=10)
    connected = connectProtocol(endpoint, client)
    return connected.addCallback(lambda _: client.done)


def exchange(port: int, payload: bytes, trickle: float | None = None, address: str = LISTEN) -> defer.Deferred[bytes]:
    """Send raw bytes (all at once, or one byte every `trickle` seconds) and collect the reply."""
    if trickle is None:
        return paced(port, [payload], 0.0, address)
    return paced(port, [payload[i : i + 1] for i in range(len(payload))], trickle, address)


def http_request(method: str, path: str, body: bytes = b"", host: str = "127.0.0.1:8084") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nConnection: close\r\nHost: {host}\r\n"
    if method == "POST":
        head += f"Content-Length: {len(body)}\r\nUser-Agent: BitDust HTTP client\r\n"
    return head.encode() + b"\r\n" + body


def split_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0] else 0
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


@attrs.define
class RunningServer:
    idserver: IdServer
    web: Any
    tcp: Any
    root: Path

    @property
    def web_port(self) -> int:
        return int(self.web.getHost().port)

    @property
    def tcp_port(self) -> int:
        return int(self.tcp.getHost().port)

    def files(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir())

    async def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        raw = await exchange(self.web_port, http_request("GET", path))
        return split_response(raw)

    async def post(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        raw = await exchange(self.web_port, http_request("POST", "/", body))
        return split_response(raw)

    def stop(self) -> defer.Deferred[Any]:
        self.idserver.machine.stop()
        return defer.gatherResults(
            [
                defer.maybeDeferred(self.web.stopListening),
                defer.maybeDeferred(self.tcp.stopListening),
            ]
        )


def start_server(root: Path, host: str = "127.0.0.1", deadline: float = 20.0, clock: Any = None) -> RunningServer:
    store = IdentityStore(root)
    store.load()
    idserver = IdServer(host=host, store=store, clock=clock or reactor, expire_days=60)
    web = reactor.listenTCP(
        0,
        make_site(idserver, reactor, ("127.0.0.1:8084",), deadline),
        backlog=1024,
        interface=LISTEN,
    )
    tcp = reactor.listenTCP(0, make_receiver(idserver, reactor, deadline), interface=LISTEN)
    idserver.machine.start()
    return RunningServer(idserver, web, tcp, root)
