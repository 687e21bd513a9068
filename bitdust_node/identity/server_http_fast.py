"""The identity server's fast GET, beside the plain twisted.web front in server_http.py that it must agree with.

A hosted identity is what an identity server mostly serves: its keep-alive `GET /<name>.xml HTTP/1.1` is
answered from a reply prepared once per stored file (status line, headers and body in one buffer),
straight from the channel's bytes when the request is alone and plain, else from the Request. Anything
else goes to twisted.web. tests/identity/test_server_fronts.py holds the two fronts' answers together.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.web import http, server

from bitdust_node.identity.server import IdServer
from bitdust_node.identity.server_http import (
    IDENTITY_PATH,
    IDLE_TIMEOUT,
    REQUEST_DEADLINE,
    CappedRequest,
    IdServerResource,
    IdServerSite,
    guarded,
)
from bitdust_node.identity.server_store import StoredIdentity
from bitdust_node.net.budget import ReceiveBudget
from bitdust_node.net.clock import TimeSource
from bitdust_node.net.deadline import DeadlineFactory, request_complete

# prepared GET replies kept at most (one per hosted identity; a server holds tens of thousands)
MAX_PREPARED = 200_000
# their bytes past what the server hosts: the replies of names since removed, until the next clearing
PREPARED_SLACK = 4 * 1024 * 1024
# and a reply's status line and headers, beside the file (about 150 bytes)
PREPARED_HEAD = 256
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

    def __init__(self, max_bytes: int) -> None:
        self._replies: dict[str, tuple[StoredIdentity, bytes, bytes]] = {}
        self._bytes = 0
        self.max_bytes = max_bytes
        self._date: tuple[int, bytes] = (-1, b"")  # no second yet: the first reply dates itself

    def held_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._replies)

    def reply(self, name: str, stored: StoredIdentity, now: float) -> bytes:
        cached = self._replies.get(name)
        if cached is None or cached[0] is not stored:
            head = (
                b"HTTP/1.1 200 OK\r\nServer: " + server.version + b"\r\nContent-Type: application/xml\r\n"
                b"Last-Modified: " + http.datetimeToString(stored.touched) + b"\r\n"
                b"Content-Length: %d\r\n" % len(stored.xml)
            )
            cached = (stored, head, b"\r\n" + stored.xml)
            if len(self._replies) > MAX_PREPARED or self._bytes > self.max_bytes + PREPARED_HEAD * len(self._replies):
                self._replies.clear()  # removed names leave entries behind; a bound, not a policy
                self._bytes = 0
            old = self._replies.get(name)
            self._bytes += _size(cached) - (_size(old) if old is not None else 0)
            self._replies[name] = cached
        second = int(now)
        if self._date[0] != second:
            self._date = (second, b"Date: " + http.datetimeToString(second) + b"\r\n")
        return b"".join((cached[1], self._date[1], cached[2]))


def _size(reply: tuple[StoredIdentity, bytes, bytes]) -> int:
    return len(reply[1]) + len(reply[2])


class PreparedIdServerResource(IdServerResource):
    """The plain resource, with a prepared reply per hosted identity."""

    def __init__(self, idserver: IdServer, other_servers: tuple[str, ...] = ()) -> None:
        super().__init__(idserver, other_servers)
        self.prepared = PreparedReplies(idserver.max_hosted_bytes + PREPARED_SLACK)

    def prepared_get(self, path: bytes) -> bytes | None:
        """The whole keep-alive reply to GET `path` when it names a hosted identity, else None."""
        match = IDENTITY_PATH.fullmatch(path)
        if match is None:
            return None
        name = match.group(1).decode()
        stored = self.idserver.store.get(name)
        if stored is None:
            return None
        return self.prepared.reply(name, stored, self.idserver.clock.seconds())


class PreparedRequest(CappedRequest):
    """A capped request; a keep-alive HTTP/1.1 GET of a hosted identity is answered from PreparedReplies."""

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


def prepared_get(site: Any, path: bytes) -> bytes | None:
    """The prepared keep-alive reply of `site` (an identity server's) to GET `path`, else None."""
    target = getattr(site, "resource", None)
    return target.prepared_get(path) if isinstance(target, PreparedIdServerResource) else None


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


class PreparedIdServerSite(IdServerSite):
    # no HTTP/2 negotiation wrapper: nothing here speaks TLS, and the channel answers reads itself
    protocol = IdentityChannel  # type: ignore[assignment]


def make_site(
    idserver: IdServer,
    clock: TimeSource,
    other_servers: tuple[str, ...] = (),
    deadline: float = REQUEST_DEADLINE,
    budget: ReceiveBudget | None = None,
) -> DeadlineFactory:
    """The identity server's web front as the node runs it."""
    site = PreparedIdServerSite(PreparedIdServerResource(idserver, other_servers), timeout=IDLE_TIMEOUT, reactor=clock)
    site.requestFactory = PreparedRequest
    return guarded(site, clock, deadline, budget)
