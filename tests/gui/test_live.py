"""Live updates with a Clock and dummy requests: bounded streams, a heartbeat, only changed panels sent,
a stream dropped when its connection closes or its session ends, nothing left running after the last."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import defer
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from bitdust_node.gui.endpoints import Answer
from bitdust_node.gui.live import LiveHub


class NoMessages:
    """The endpoint table's stand-in: a long poll that is answered when the test says so."""

    def __init__(self) -> None:
        self.polls: list[defer.Deferred[Answer]] = []

    def call(self, method: str, path: str, args: Any = None, body: Any = None) -> defer.Deferred[Answer]:
        self.polls.append(defer.Deferred())
        return self.polls[-1]


class LiveHubTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.panels = {"services": "<section>ON</section>", "dht": "<section>1</section>"}
        self.messages = NoMessages()
        self.hub = LiveHub(self.clock, self.render, self.messages, max_streams=2, heartbeat=15, tick_every=1)  # type: ignore[arg-type]

    async def render(self, page: str, args: Any) -> dict[str, str]:
        return dict(self.panels)

    def open(self, alive: list[bool] | None = None, page: str = "overview") -> DummyRequest:
        request = DummyRequest([b"gui", b"events"])
        flag = alive if alive is not None else [True]
        view = self.hub.drawn(self.panels)
        self.assertIsNotNone(self.hub.open(request, page, (), lambda: flag[0], view))
        return request

    def events(self, request: DummyRequest) -> list[dict[str, Any]]:
        found = []
        for block in b"".join(request.written).decode().split("\n\n"):
            if block.startswith("event: panel"):
                found.append(json.loads(block.split("data: ", 1)[1]))
        return found

    def test_only_changed_panels_are_sent(self) -> None:
        request = self.open()
        self.assertEqual(request.responseHeaders.getRawHeaders(b"content-type"), [b"text/event-stream; charset=utf-8"])
        self.clock.advance(1)
        self.assertEqual(self.events(request), [], "the page served is the starting point")
        self.panels["dht"] = "<section>2</section>"
        self.clock.advance(1)
        self.assertEqual(self.events(request), [{"id": "panel-dht", "html": "<section>2</section>"}])
        self.clock.advance(5)
        self.assertEqual(len(self.events(request)), 1)

    def test_streams_are_bounded(self) -> None:
        self.open()
        self.open()
        self.assertIsNone(self.hub.open(DummyRequest([b""]), "overview", (), lambda: True))

    def test_a_heartbeat_keeps_a_quiet_stream_open(self) -> None:
        request = self.open()
        before = len(request.written)
        self.clock.advance(14)
        self.assertEqual(len(request.written), before)
        self.clock.advance(1)
        self.assertEqual(request.written[-1], b": keep-alive\n\n")

    def test_a_closed_connection_or_an_ended_session_drops_the_stream(self) -> None:
        alive = [True]
        gone = self.open()
        ending = self.open(alive)
        gone.processingFailed(Failure(ConnectionDone()))
        self.assertEqual(len(self.hub.streams), 1)
        alive[0] = False
        self.clock.advance(1)
        self.assertIn(b"event: end", b"".join(ending.written))
        self.assertEqual(self.hub.streams, [])
        self.assertEqual(self.clock.getDelayedCalls(), [], "nothing runs once no one watches")

    def test_a_message_received_is_pushed_at_once(self) -> None:
        request = self.open(page="messages")
        self.assertEqual(len(self.messages.polls), 1)
        self.panels["services"] = "<section>new message</section>"
        self.messages.polls[0].callback(Answer([{"data": {"message": "hi"}}]))
        self.assertEqual([e["id"] for e in self.events(request)], ["panel-services"])
        self.assertEqual(len(self.messages.polls), 2, "the next long poll is under way")
        request.processingFailed(Failure(ConnectionDone()))
        self.messages.polls[1].callback(Answer([]))
        self.assertEqual(len(self.messages.polls), 2, "no poll once the last watcher left")
