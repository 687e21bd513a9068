"""Live updates: Server-Sent Events streams that carry a page's panels again whenever they change.

At most MAX_STREAMS streams are open at once (one a browser tab); each gets a comment line every
HEARTBEAT seconds so a dead connection is noticed, and is dropped when its connection closes or its
session ends. While any stream is open the panels of the pages watched are drawn again every TICK
seconds, once for all the streams of one page, and only the panels whose HTML changed are sent; a
message received is pushed at once (a consumer of the REST API's long poll).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure

from bitdust_node.gui.endpoints import Endpoints
from bitdust_node.net.clock import TimeSource

log = Logger()

MAX_STREAMS = 8
HEARTBEAT = 15.0
TICK = 1.0
# the long poll the streams share for messages, and the pause after it fails (service off)
MESSAGE_POLL = 30.0
MESSAGE_RETRY = 5.0
CONSUMER = "gui"
# pages drawn but whose stream has not opened yet: what they showed, so the stream sends only changes
MAX_DRAWN = 64

# (page, its query arguments) -> {panel name: html}
Renderer = Callable[[str, tuple[tuple[str, str], ...]], Awaitable[dict[str, str]]]


@attrs.define(eq=False)
class Stream:
    request: Any
    page: str
    args: tuple[tuple[str, str], ...]
    alive: Callable[[], bool]
    closed: defer.Deferred[bytes]
    sent: dict[str, str] = attrs.field(factory=dict)
    last_write: float = 0.0

    def write(self, data: bytes, now: float) -> None:
        self.request.write(data)
        self.last_write = now


def event(kind: str, data: Any) -> bytes:
    # json.dumps escapes newlines, so the whole event is one data line
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


@attrs.define(eq=False)
class LiveHub:
    clock: TimeSource
    render: Renderer
    endpoints: Endpoints
    max_streams: int = MAX_STREAMS
    heartbeat: float = HEARTBEAT
    tick_every: float = TICK
    streams: list[Stream] = attrs.field(factory=list)
    _loop: task.LoopingCall | None = None
    _drawing: bool = False
    _again: bool = False
    _polling: bool = False
    _retry: defer.Deferred[None] | None = None
    _drawn: dict[str, dict[str, str]] = attrs.field(factory=dict)

    def drawn(self, panels: dict[str, str]) -> str:
        """Remember what a page served shows; the id its stream names to start from there."""
        while len(self._drawn) >= MAX_DRAWN:
            del self._drawn[next(iter(self._drawn))]
        view_id = secrets.token_urlsafe(12)
        self._drawn[view_id] = dict(panels)
        return view_id

    def open(self, request: Any, page: str, args: tuple[tuple[str, str], ...],
             alive: Callable[[], bool], view_id: str = "") -> defer.Deferred[bytes] | None:
        """Start a stream on `request`; None when MAX_STREAMS are open. The Deferred fires when it ends."""
        if len(self.streams) >= self.max_streams:
            return None
        stream = Stream(request, page, args, alive, defer.Deferred(), sent=self._drawn.pop(view_id, {}))
        self.streams.append(stream)
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"x-accel-buffering", b"no")
        stream.write(b"retry: 3000\n: live\n\n", self.clock.seconds())
        request.notifyFinish().addBoth(lambda _: self._forget(stream))
        if self._loop is None:
            self._loop = task.LoopingCall(self.tick)
            self._loop.clock = self.clock
            self._loop.start(self.tick_every, now=False).addErrback(lambda f: log.failure("live loop", f))
        if page == "messages":
            self._watch_messages()
        self.poke()
        return stream.closed

    def close_all(self) -> None:
        for stream in list(self.streams):
            self._end(stream)

    def _forget(self, stream: Stream) -> None:
        if stream in self.streams:
            self.streams.remove(stream)
        if not stream.closed.called:
            stream.closed.callback(b"")
        if not self.streams:
            if self._loop is not None and self._loop.running:
                self._loop.stop()
            self._loop = None
            if self._retry is not None:
                self._retry.cancel()

    def _end(self, stream: Stream) -> None:
        try:
            stream.write(event("end", "session ended"), self.clock.seconds())
        finally:
            self._forget(stream)

    def tick(self) -> None:
        now = self.clock.seconds()
        for stream in list(self.streams):
            if not stream.alive():
                self._end(stream)
            elif now - stream.last_write >= self.heartbeat:
                stream.write(b": keep-alive\n\n", now)
        self.poke()

    def poke(self) -> None:
        """Draw the watched panels now (or right after the drawing under way)."""
        if self._drawing:
            self._again = True
            return
        defer.ensureDeferred(self._draw())

    async def _draw(self) -> None:
        self._drawing = True
        try:
            views = {(s.page, s.args) for s in self.streams}
            for page, args in views:
                try:
                    panels = await self.render(page, args)
                except Exception:
                    log.failure("drawing the {page} page's panels failed", Failure(), page=page)
                    continue
                for stream in [s for s in self.streams if (s.page, s.args) == (page, args)]:
                    self._send(stream, panels)
        finally:
            self._drawing = False
        if self._again and self.streams:
            self._again = False
            self.poke()

    def _send(self, stream: Stream, panels: dict[str, str]) -> None:
        now = self.clock.seconds()
        for name, html in panels.items():
            if stream.sent.get(name) != html:
                stream.sent[name] = html
                stream.write(event("panel", {"id": f"panel-{name}", "html": html}), now)

    # -- messages: pushed as they arrive while someone watches the Messages page

    def _watch_messages(self) -> None:
        if not self._polling:
            self._polling = True
            defer.ensureDeferred(self._poll_messages())

    async def _poll_messages(self) -> None:
        try:
            while any(s.page == "messages" for s in self.streams):
                answer = await self.endpoints.call("GET", "/message/receive/<consumer>/v1",
                                                   {"consumer": CONSUMER, "polling_timeout": str(int(MESSAGE_POLL))})
                if answer.ok and answer.result:
                    self.poke()
                elif not answer.ok and self.streams:
                    self._retry = task.deferLater(self.clock, MESSAGE_RETRY, lambda: None)
                    try:
                        await self._retry
                    except defer.CancelledError:
                        return
                    finally:
                        self._retry = None
        finally:
            self._polling = False
