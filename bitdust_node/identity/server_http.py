"""The identity server's web front: GET /<name>.xml, the index page, POST / with raw XML."""

from __future__ import annotations

import html
import ipaddress
import re
from io import BytesIO
from typing import Any

from twisted.web import http, resource, server

from bitdust_node.identity.acceptance import IdentityRefused
from bitdust_node.identity.server import IdServer
from bitdust_node.identity.server_store import StoredIdentity
from bitdust_node.net.deadline import DeadlineFactory, request_complete
from bitdust_node.wire.identity_xml import MAX_IDENTITY_BYTES

NOT_FOUND_BODY = (
    b"\n<html>\n  <head><title>404 - No Such Resource</title></head>\n  <body>\n"
    b"    <h1>No Such Resource</h1>\n    <p>Not found</p>\n  </body>\n</html>\n"
)
_IDENTITY_PATH = re.compile(rb"/([a-z0-9_-]{3,20})\.xml")
# a slow client gets this long to send a whole request
REQUEST_DEADLINE = 20.0
IDLE_TIMEOUT = 60.0
# prepared GET replies kept at most (one per hosted identity; a server holds tens of thousands)
MAX_PREPARED = 200_000
# a browser's GET head is under 1 KiB; a longer one is left to twisted.web (which caps heads at 16 KiB)
MAX_FAST_HEAD = 8192
_FAST_REQUEST_LINE = re.compile(rb"GET (/[a-z0-9_-]{3,20}\.xml) HTTP/1\.1")
# a header line as RFC 9110 writes it, printable ASCII only; anything else takes the general path
_PLAIN_HEADER = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\x20-\x7e\t]*)")
# headers that bring a body, end the connection or change the exchange: twisted.web handles those
_GENERAL_HEADERS = frozenset((b"content-length", b"transfer-encoding", b"expect", b"upgrade", b"te", b"trailer"))


class PreparedReplies:
    """GET /<name>.xml answers made once per stored file: status line, headers and body in one buffer,
    so a read costs a dictionary lookup and one write instead of twisted.web's per-request headers."""

    def __init__(self) -> None:
        self._replies: dict[str, tuple[StoredIdentity, bytes, bytes]] = {}
        self._date: tuple[int, bytes] = (-1, b"")  # no second yet: the first reply dates itself

    def reply(self, name: str, stored: StoredIdentity, now: float) -> bytes:
        cached = self._replies.get(name)
        if cached is None or cached[0] is not stored:
            head = (
                b"HTTP/1.1 200 OK\r\nServer: " + server.version + b"\r\nContent-Type: application/xml\r\n"
                b"Last-Modified: " + http.datetimeToString(stored.touched) + b"\r\n"
                b"Content-Length: %d\r\n" % len(stored.xml)
            )
            cached = (stored, head, b"\r\n" + stored.xml)
            if len(self._replies) > MAX_PREPARED:
                self._replies.clear()  # removed names leave entries behind; a bound, not a policy
            self._replies[name] = cached
        second = int(now)
        if self._date[0] != second:
            self._date = (second, b"Date: " + http.datetimeToString(second) + b"\r\n")
        return b"".join((cached[1], self._date[1], cached[2]))


class CappedRequest(server.Request):
    """A request whose body is refused with 413 once it passes the cap, before it is buffered;
    a keep-alive HTTP/1.1 GET of a hosted identity is answered from PreparedReplies."""

    max_body = MAX_IDENTITY_BYTES
    _refused = False
    _received = 0

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self.max_body:
            self._refuse()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        if self._received > self.max_body:
            self._refuse()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._refused:
            return
        request_complete(self.channel.transport)
        super().requestReceived(command, path, version)

    def process(self) -> None:
        reply = self._prepared_reply()
        if reply is None:
            super().process()
            return
        channel: Any = self.channel
        self.site = channel.site
        # the whole response is in `reply`: finish() must add neither headers nor chunks
        self.startedWriting = 1
        self.channel.write(reply)
        self.finish()

    def _prepared_reply(self) -> bytes | None:
        channel: Any = self.channel
        # HTTP/1.0 and closing connections take the general path, which words their headers
        if self.method != b"GET" or self.clientproto != b"HTTP/1.1" or not channel.persistent:
            return None
        return prepared_get(channel.site, self.path)

    def _refuse(self) -> None:
        self._refused = True
        self.content: Any = BytesIO()
        transport: Any = self.channel.transport
        transport.write(b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        transport.loseConnection()


class IdServerResource(resource.Resource):
    isLeaf = True

    def __init__(self, idserver: IdServer, other_servers: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.idserver = idserver
        self.other_servers = other_servers
        self.prepared = PreparedReplies()

    def prepared_get(self, path: bytes) -> bytes | None:
        """The whole keep-alive reply to GET `path` when it names a hosted identity, else None."""
        match = _IDENTITY_PATH.fullmatch(path)
        if match is None:
            return None
        name = match.group(1).decode()
        stored = self.idserver.store.get(name)
        if stored is None:
            return None
        return self.prepared.reply(name, stored, self.idserver.clock.seconds())

    def render_GET(self, request: server.Request) -> bytes:
        path = request.path
        if path == b"/":
            request.setHeader(b"Content-Type", b"text/html")
            return self._index(request)
        match = _IDENTITY_PATH.fullmatch(path)
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


def prepared_get(site: Any, path: bytes) -> bytes | None:
    """The prepared keep-alive reply of `site` (an identity server's) to GET `path`, else None."""
    target = getattr(site, "resource", None)
    return target.prepared_get(path) if isinstance(target, IdServerResource) else None


class IdentityChannel(http.HTTPChannel):
    """twisted.web's channel, with the request an identity server lives on answered straight from the bytes.

    A whole keep-alive `GET /<name>.xml HTTP/1.1` of a hosted identity, alone in what arrived (no pipelined
    request behind it) and with plain headers, is answered from PreparedReplies without a Request object.
    The first input that is anything else (another method or path, a body, pipelining, odd or non-ASCII
    headers, a head over MAX_FAST_HEAD) goes to twisted.web, which then parses the rest of the connection.
    """

    site: Any = None  # set by Site.buildProtocol
    transport: Any
    _general = False
    _head = b""

    def dataReceived(self, data: bytes) -> None:
        if self._general:
            super().dataReceived(data)
            return
        head = self._head + data if self._head else data
        end = head.find(b"\r\n\r\n")
        if end < 0 and len(head) <= MAX_FAST_HEAD:
            self._head = head  # the deadline wrapper times a head that never completes
            self.resetTimeout()
            return
        self._head = b""
        reply = self._fast_reply(head[:end]) if end + 4 == len(head) else None
        if reply is None:
            self._general = True
            super().dataReceived(head)
            return
        self.resetTimeout()
        request_complete(self.transport)
        self.transport.write(reply)

    def _fast_reply(self, head: bytes) -> bytes | None:
        lines = head.split(b"\r\n")
        match = _FAST_REQUEST_LINE.fullmatch(lines[0])
        if match is None:
            return None
        for line in lines[1:]:
            header = _PLAIN_HEADER.fullmatch(line)
            if header is None:
                return None
            name = header.group(1).lower()
            if name in _GENERAL_HEADERS:
                return None
            if name == b"connection" and header.group(2).strip().lower() != b"keep-alive":
                return None
        return prepared_get(self.site, match.group(1))


class IdServerSite(server.Site):
    # no HTTP/2 negotiation wrapper: nothing here speaks TLS, and the channel answers reads itself
    protocol = IdentityChannel  # type: ignore[assignment]

    def log(self, request: Any) -> None:
        """No access log line: formatting one costs a tenth of GET throughput; a proxy in front logs."""


def make_site(
    idserver: IdServer,
    clock: Any,
    other_servers: tuple[str, ...] = (),
    deadline: float = REQUEST_DEADLINE,
) -> DeadlineFactory:
    site = IdServerSite(IdServerResource(idserver, other_servers), timeout=IDLE_TIMEOUT, reactor=clock)
    site.requestFactory = CappedRequest
    site.displayTracebacks = False
    site.noisy = False
    return DeadlineFactory(site, deadline, clock)
