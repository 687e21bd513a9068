"""The proxy_receiver machine alone, with a Clock and collaborators that record what they were asked: each state
holds what it waits for, and leaving the state (a result, a failure, or stop) cancels it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.fsm import Registry, trace
from bitdust_node.proxy.receiver import ReceiverCore, ReceiverInputs, ReceiverMachine
from bitdust_node.transport.interfaces import Timeout
from bitdust_node.wire.identity_xml import Identity
from tests.proxy.fakes import FakePublisher, captured_me

ALICE = captured_me("alice").identity
CAROL = captured_me("carol").identity


@attrs.define(eq=False)
class Asked:
    """A Deferred handed out by a fake, and whether the machine cancelled it."""

    what: str
    router: Identity | None
    deferred: defer.Deferred[Any]
    cancelled: bool = False


@attrs.define
class Collaborators:
    """The finder, asker, line and carrier of the machine in one recorder: `events` says what happened in order."""

    events: list[str] = attrs.field(factory=list)
    asked: list[Asked] = attrs.field(factory=list)
    connected: bool = True
    # what a cancelled wait fires with anyway (an HTTP fetch that falls back to a cached copy), if anything
    swallowed_with: object = None
    closed_watchers: list[Callable[[], None]] = attrs.field(factory=list)
    lost: list[Callable[[str], None]] = attrs.field(factory=list)

    def _ask(self, what: str, router: Identity | None) -> defer.Deferred[Any]:
        def cancelled(d: defer.Deferred[Any]) -> None:
            asked.cancelled = True
            if self.swallowed_with is not None:
                d.callback(self.swallowed_with)

        asked = Asked(what, router, defer.Deferred(cancelled))
        self.asked.append(asked)
        self.events.append(f"{what} {_name(router)}".strip())
        return asked.deferred

    def last(self, what: str) -> Asked:
        return [a for a in self.asked if a.what == what][-1]

    # RouterFinder
    def find(self) -> defer.Deferred[Identity]:
        return self._ask("find", None)

    def set_aside(self, router: Identity, why: str) -> None:
        self.events.append(f"aside {_name(router)}: {why}")

    # RouterAsker
    def introduce(self, router: Identity) -> defer.Deferred[None]:
        return self._ask("introduce", router)

    def request_route(self, router: Identity) -> defer.Deferred[None]:
        return self._ask("request_route", router)

    def check(self, router: Identity) -> defer.Deferred[None]:
        return self._ask("check", router)

    def cancel_route(self, router: Identity) -> defer.Deferred[None]:
        self.events.append(f"cancel_route {_name(router)}")
        return defer.succeed(None)

    # RouterLine
    def keep_alive(self, router: Identity) -> bool:
        self.events.append(f"keep_alive {_name(router)}" if self.connected else "no connection")
        return self.connected

    def watch_closed(self, router: Identity, closed: Callable[[], None]) -> Callable[[], None]:
        self.closed_watchers.append(closed)
        return lambda: self.closed_watchers.remove(closed)

    # PacketCarrier
    def hold(self, router: Identity | None) -> Callable[[], None]:
        self.events.append(f"hold {_name(router)}".strip())
        return lambda: self.events.append(f"release hold {_name(router)}".strip())

    def relay(self, router: Identity, lost: Callable[[str], None]) -> Callable[[], None]:
        self.events.append(f"relay {_name(router)}")
        self.lost.append(lost)
        return lambda: self.events.append(f"release relay {_name(router)}")


def _name(router: Identity | None) -> str:
    return router.sources[0].rsplit("/", 1)[1].removesuffix(".xml") if router is not None else ""


class Harness:
    def __init__(self) -> None:
        self.clock = Clock()
        self.fake = Collaborators()
        self.publisher = FakePublisher()
        self.entry = Registry().register("proxy_receiver", "AT_STARTUP")
        self.core = ReceiverCore(self.fake, self.fake, self.fake, self.fake, self.publisher, self.clock)
        self.machine: ReceiverInputs = ReceiverMachine(self.core)
        trace(self.machine, self.entry)

    @property
    def state(self) -> str:
        return self.entry.state

    def to_find_node(self) -> None:
        self.machine.start()

    def to_ack(self, router: Identity = ALICE) -> None:
        if self.state != "FIND_NODE?":
            self.to_find_node()
        self.fake.last("find").deferred.callback(router)

    def to_service(self, router: Identity = ALICE) -> None:
        self.to_ack(router)
        self.fake.last("introduce").deferred.callback(None)

    def to_listen(self, router: Identity = ALICE) -> None:
        self.to_service(router)
        self.fake.last("request_route").deferred.callback(None)

    def to_offline(self) -> None:
        self.to_find_node()
        self.fake.last("find").deferred.errback(Timeout("no DHT node answered"))


class RouteTests(SynchronousTestCase):
    def test_a_router_is_found_asked_and_routes_me(self) -> None:
        h = Harness()
        h.to_listen()
        self.assertEqual(h.state, "LISTEN")
        self.assertEqual(h.entry.past, ["AT_STARTUP", "FIND_NODE?", "ACK?", "SERVICE?"])
        self.assertEqual(h.fake.events, [
            "hold", "find", "hold alice", "introduce alice", "release hold", "hold alice", "request_route alice",
            "release hold alice", "relay alice", "release hold alice",
        ])
        self.assertEqual(h.publisher.published, [ALICE.contacts])

    def test_listen_keeps_the_connection_alive_every_ten_seconds(self) -> None:
        h = Harness()
        h.to_listen()
        del h.fake.events[:]
        h.clock.pump([10, 10, 10])
        self.assertEqual(h.fake.events, ["keep_alive alice"] * 3)
        self.assertEqual(h.state, "LISTEN")


class OfflineTests(SynchronousTestCase):
    def test_offline_waits_two_four_eight_seconds_up_to_a_minute_with_my_own_contacts(self) -> None:
        h = Harness()
        h.to_offline()
        self.assertEqual((h.state, h.publisher.published), ("OFFLINE", [None]))
        waits = []
        for _ in range(8):
            (retry,) = h.clock.calls
            waits.append(retry.getTime() - h.clock.seconds())
            h.clock.advance(waits[-1])
            self.assertEqual(h.state, "FIND_NODE?")
            h.fake.last("find").deferred.errback(Timeout("no DHT node answered"))
        self.assertEqual(waits, [2, 4, 8, 16, 32, 60, 60, 60])
        self.assertEqual([e for e in h.fake.events if e == "find"], ["find"] * 9)

    def test_the_backoff_starts_again_after_a_route(self) -> None:
        h = Harness()
        h.to_offline()
        h.clock.advance(2)
        h.fake.last("find").deferred.errback(Timeout("no DHT node answered"))
        h.clock.advance(4)
        h.to_listen()
        h.fake.lost[-1]("the router says route not exist")
        h.fake.last("find").deferred.errback(Timeout("no DHT node answered"))
        (retry,) = h.clock.calls
        self.assertEqual(retry.getTime() - h.clock.seconds(), 2)


class RouterFailureTests(SynchronousTestCase):
    def test_a_router_dying_in_ack_is_set_aside_before_the_next_search(self) -> None:
        h = Harness()
        h.to_ack()
        del h.fake.events[:]
        h.fake.last("introduce").deferred.errback(Timeout("no answer to Identity in 15 s"))
        self.assertEqual(h.state, "FIND_NODE?")
        self.assertEqual(h.fake.events, ["aside alice: no answer to Identity in 15 s", "hold", "find",
                                         "release hold alice"])

    def test_a_router_dying_in_service_is_set_aside_and_another_one_asked(self) -> None:
        h = Harness()
        h.to_service()
        h.fake.last("request_route").deferred.errback(Timeout("no answer to RequestService in 15 s"))
        h.to_ack(CAROL)
        self.assertEqual(h.state, "ACK?")
        self.assertIn("aside alice: no answer to RequestService in 15 s", h.fake.events)
        self.assertEqual(h.fake.events[-2:], ["introduce carol", "release hold"])

    def test_a_search_cancelled_by_someone_else_is_a_failure_the_machine_hears_of(self) -> None:
        h = Harness()
        h.to_find_node()
        h.fake.last("find").deferred.cancel()
        self.assertEqual(h.state, "OFFLINE")

    def test_a_router_that_forgot_my_route_is_lost(self) -> None:
        h = Harness()
        h.to_listen()
        del h.fake.events[:]
        h.fake.lost[-1]("the router says route not exist")
        self.assertEqual(h.state, "FIND_NODE?")
        self.assertEqual(h.fake.events, ["aside alice: the router says route not exist", "hold", "find",
                                         "release relay alice"])
        self.assertEqual((h.fake.closed_watchers, h.clock.getDelayedCalls()), ([], []))

    def test_no_connection_to_the_router_checks_it_and_silence_loses_it(self) -> None:
        h = Harness()
        h.to_listen()
        h.fake.connected = False
        h.clock.advance(10)
        check = h.fake.last("check")
        self.assertEqual(h.state, "LISTEN")
        check.deferred.errback(Timeout("no answer to Identity in 10 s"))
        self.assertEqual(h.state, "FIND_NODE?")
        self.assertIn("aside alice: no connection to the router; no answer to Identity in 10 s", h.fake.events)

    def test_a_closed_connection_checks_the_router_once_and_an_answer_keeps_the_route(self) -> None:
        h = Harness()
        h.to_listen()
        (closed,) = h.fake.closed_watchers
        closed()
        closed()
        self.assertEqual([a.what for a in h.fake.asked].count("check"), 1)
        h.fake.last("check").deferred.callback(None)
        self.assertEqual(h.state, "LISTEN")
        closed()
        self.assertEqual([a.what for a in h.fake.asked].count("check"), 2)


class StopTests(SynchronousTestCase):
    def stopped(self, h: Harness) -> list[str]:
        del h.fake.events[:]
        done = h.machine.stop()
        self.assertIsNone(self.successResultOf(done))
        self.assertEqual(h.state, "CLOSED")
        self.assertEqual(h.clock.getDelayedCalls(), [], "a timer outlived its state")
        return h.fake.events

    def test_stop_at_startup(self) -> None:
        self.assertEqual(self.stopped(Harness()), [])

    def test_stop_in_find_node_cancels_the_search(self) -> None:
        h = Harness()
        h.to_find_node()
        self.assertEqual(self.stopped(h), ["release hold"])
        self.assertTrue(h.fake.last("find").cancelled)

    def test_stop_in_ack_and_service_cancels_the_request(self) -> None:
        for state, to, asked in (("ACK?", Harness.to_ack, "introduce"), ("SERVICE?", Harness.to_service,
                                                                            "request_route")):
            h = Harness()
            to(h)
            self.assertEqual(h.state, state)
            # a cancelled request sets nobody aside
            self.assertEqual(self.stopped(h), ["release hold alice"])
            self.assertTrue(h.fake.last(asked).cancelled)

    def test_stop_in_offline_cancels_the_retry(self) -> None:
        h = Harness()
        h.to_offline()
        self.assertEqual(self.stopped(h), [])
        h.clock.advance(60)
        self.assertEqual(h.state, "CLOSED")

    def test_stop_in_listen_cancels_keep_alive_and_check_and_tells_the_router(self) -> None:
        h = Harness()
        h.to_listen()
        h.fake.closed_watchers[0]()
        self.assertEqual(self.stopped(h), ["release relay alice", "cancel_route alice"])
        self.assertTrue(h.fake.last("check").cancelled)
        self.assertEqual(h.fake.closed_watchers, [])

    def test_a_result_that_comes_although_its_wait_was_cancelled_reaches_nobody(self) -> None:
        for state, to in (("FIND_NODE?", Harness.to_find_node), ("ACK?", Harness.to_ack),
                          ("SERVICE?", Harness.to_service)):
            h = Harness()
            to(h)
            h.fake.swallowed_with = ALICE
            self.assertEqual(self.stopped(h), ["release hold alice" if state != "FIND_NODE?" else "release hold"])
            self.assertTrue(h.fake.asked[-1].cancelled)
        h = Harness()
        h.to_listen()
        h.fake.closed_watchers[0]()
        h.fake.swallowed_with = ALICE
        h.fake.lost[-1]("the router says route not exist")
        self.assertEqual(h.state, "FIND_NODE?")

    def test_stop_twice(self) -> None:
        h = Harness()
        h.to_listen()
        self.stopped(h)
        self.assertEqual(self.stopped(h), [])
