"""The identity server's web front as plain twisted.web: GET /<name>.xml, the index page, POST / with raw XML
(server_http_fast.py answers hosted GETs the same way, faster; the node runs that one)."""

from __future__ import annotations

import html
import ipaddress
import re
from io import BytesIO
from typing import Any

from twisted.web import http, resource, server

from bitdust_node.identity.acceptance import IdentityRefused
from bitdust_node.identity.server import UPLOAD_BUDGET_KIND, IdServer
from bitdust_node.net.budget import Claim, ReceiveBudget
from bitdust_node.net.clock import TimeSource
from bitdust_node.net.connection_caps import ConnectionCaps
from bitdust_node.net.deadline import DeadlineFactory, request_complete
from bitdust_node.wire.identity_xml import MAX_IDENTITY_BYTES

NOT_FOUND_BODY = (
    b"\n<html>\n  <head><title>404 - No Such Resource</title></head>\n  <body>\n"
    b"    <h1>No Such Resource</h1>\n    <p>Not found</p>\n  </body>\n</html>\n"
)
IDENTITY_PATH = re.compile(rb"/([a-z0-9_-]{3,20})\.xml")
# a slow client gets this long to send a whole request
REQUEST_DEADLINE = 20.0
IDLE_TIMEOUT = 60.0


class CappedRequest(server.Request):
    """A request whose body is refused with 413 once it passes the cap, before it is buffered, and whose body
    holds its bytes against the node's receive budget (the site's `budget`) while it is read: 503 when there is
    no room for it, the connection dropped when its room goes to a smaller holder."""

    max_body = MAX_IDENTITY_BYTES
    _refused = False
    _received = 0
    _claim: Claim | None = None

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self.max_body:
            self._refuse(b"413 Request Entity Too Large")
            return
        if length != 0 and not self._hold(self.max_body if length is None else length):
            self._refuse(b"503 Service Unavailable")
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        if self._received > self.max_body:
            self._refuse(b"413 Request Entity Too Large")
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._refused:
            return
        request_complete(self.channel.transport)
        try:
            super().requestReceived(command, path, version)  # rendered at once: the body is read by its end
        finally:
            self._let_go()

    def connectionLost(self, reason: Any) -> None:
        self._let_go()
        super().connectionLost(reason)

    def _hold(self, size: int) -> bool:
        channel: Any = self.channel
        budget: ReceiveBudget | None = getattr(channel.site, "budget", None)
        if budget is None:
            return True
        peer: Any = channel.transport.getPeer()
        self._claim = budget.claim(str(getattr(peer, "host", "")), size, UPLOAD_BUDGET_KIND, on_evicted=self._evicted)
        return self._claim is not None

    def _evicted(self) -> None:
        self._claim = None
        channel: Any = self.channel
        if channel is not None:
            channel.transport.abortConnection()

    def _let_go(self) -> None:
        claim, self._claim = self._claim, None
        if claim is not None:
            claim.release()

    def _refuse(self, status: bytes) -> None:
        self._let_go()
        # twisted.web would answer an Expect: 100-continue after this refusal, inviting the body
        self.requestHeaders.removeHeader(b"expect")
        self._refused = True
        self.content: Any = BytesIO()
        transport: Any = self.channel.transport
        transport.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        transport.loseConnection()


class IdServerResource(resource.Resource):
    isLeaf = True

    def __init__(self, idserver: IdServer, other_servers: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.idserver = idserver
        self.other_servers = other_servers

    def render_GET(self, request: server.Request) -> bytes:
        path = request.path
        if path == b"/":
            request.setHeader(b"Content-Type", b"text/html")
            return self._index(request)
        match = IDENTITY_PATH.fullmatch(path)
        stored = self.idserver.store.get(match.group(1).decode()) if match else None
        if stored is None:
            request.setResponseCode(http.NOT_FOUND)
            request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
            return NOT_FOUND_BODY
        request.setHeader(b"Content-Type", b"application/xml")
        request.setHeader(b"Last-Modified", http.datetimeToString(stored.touched))
        return stored.xml

    def render_POST(self, request: server.Request) -> bytes:
        if request.path != b"/":
            request.setResponseCode(http.NOT_FOUND)
            return NOT_FOUND_BODY
        content: Any = request.content
        data = content.read(MAX_IDENTITY_BYTES + 1)
        try:
            self.idserver.receive(data)
        except IdentityRefused as err:
            request.setResponseCode(http.BAD_REQUEST)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return err.message.encode("utf-8")
        return b""

    def _index(self, request: server.Request) -> bytes:
        return index_page(
            self.idserver.host,
            self.idserver.store.names(),
            self.other_servers,
            _client_host(request),
        ).encode("utf-8")


def _client_host(request: server.Request) -> str:
    """The client's address; behind a reverse proxy on this machine, the one it forwards."""
    peer: Any = request.getClientAddress()
    host = str(getattr(peer, "host", ""))
    port = getattr(peer, "port", "")
    forwarded = request.getHeader(b"x-forwarded-for")
    if forwarded and _is_loopback(host):
        last = forwarded.decode("latin-1").split(",")[-1].strip()
        if _is_address(last):
            host = last
    return f"{host}:{port}"


def _is_loopback(host: str) -> bool:
    return _is_address(host) and ipaddress.ip_address(host).is_loopback


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def index_page(host: str, names: list[str], others: tuple[str, ...], client: str) -> str:
    """Hosted names grouped by first letter; the closing comment tells the client its address."""
    title = html.escape(f"Identities on {host}")
    groups: dict[str, list[str]] = {}
    for name in sorted(names):
        groups.setdefault(name[0].upper(), []).append(name)
    rows = []
    for letter, members in groups.items():
        rows.append(f"<br>\n<h3>{html.escape(letter)}</h3>")
        rows.extend(f'<p><a href="/{n}.xml"><nobr>{n}</nobr></a></p>' for n in members)
    links = "".join(
        f'<a href="http://{html.escape(o)}/"><nobr>{html.escape(o)}</nobr></a>&nbsp;&nbsp;\n' for o in others
    )
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n</head>\n<body>\n"
        f"<h1 align=center>{title}</h1><br>\n"
        + "\n".join(rows)
        + f'\n<br><br><p>Total identities on "{html.escape(host)}": {len(names)}</p><br><br>\n'
        f"<p>Other known identity servers:\n{links}</p><!--CLIENT_HOST={client}-->\n"
        "</body>\n</html>\n"
    )


class IdServerSite(server.Site):
    def log(self, request: Any) -> None:
        """No access log line: formatting one costs a tenth of GET throughput; a proxy in front logs."""


def guarded(
    site: server.Site, clock: TimeSource, deadline: float = REQUEST_DEADLINE, budget: ReceiveBudget | None = None,
) -> DeadlineFactory:
    """The site as it faces the internet: no tracebacks shown, a deadline for every whole request, request bodies
    held against `budget` (a budget of its own without one), and caps on its connections in all and from one
    address."""
    site.displayTracebacks = False
    site.noisy = False
    site.budget = budget if budget is not None else ReceiveBudget()  # type: ignore[attr-defined]
    return DeadlineFactory(site, deadline, clock, ConnectionCaps())


def make_plain_site(
    idserver: IdServer,
    clock: TimeSource,
    other_servers: tuple[str, ...] = (),
    deadline: float = REQUEST_DEADLINE,
    budget: ReceiveBudget | None = None,
) -> DeadlineFactory:
    """The reference front, all twisted.web (server_http_fast.make_site answers hosted GETs faster, alike)."""
    site = IdServerSite(IdServerResource(idserver, other_servers), timeout=IDLE_TIMEOUT, reactor=clock)
    site.requestFactory = CappedRequest
    return guarded(site, clock, deadline, budget)
