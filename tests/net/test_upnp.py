"""The UPnP port mapper's decisions with a Clock, a fake router and a runner that stands for the thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.fsm import Registry, trace
from bitdust_node.net.upnp import FIRST_RETRY, LEASE_SECONDS, Mapping, UpnpCore, UpnpError, UpnpMachine

PORTS = ((7771, "TCP"), (14441, "UDP"))


class FakeRouter:
    """An IGD that answers as told and remembers what it forwards."""

    def __init__(self) -> None:
        self.answering = True
        self.forwarded: dict[tuple[int, str], tuple[str, int]] = {}
        self.adds = 0

    def discover(self) -> str:
        if not self.answering:
            raise UpnpError("no UPnP router answered")
        return "192.168.1.20"

    def external_ip(self) -> str:
        return "198.51.100.30"

    def add_mapping(self, port: tuple[int, str], lan_ip: str, description: str, lease: int) -> None:
        self.adds += 1
        self.forwarded[port] = (lan_ip, lease)

    def remove_mapping(self, port: tuple[int, str]) -> None:
        self.forwarded.pop(port, None)


class HeldThread:
    """Stands for the worker thread: the work runs when the test releases it."""

    def __init__(self) -> None:
        self.held: list[tuple[Callable[[], Any], defer.Deferred[Any]]] = []

    def __call__(self, work: Callable[[], Any]) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        self.held.append((work, d))
        return d

    def release(self) -> None:
        work, d = self.held.pop(0)
        try:
            d.callback(work())
        except Exception:
            d.errback()


class UpnpTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.router = FakeRouter()
        self.thread = HeldThread()
        self.mapped: list[Mapping] = []
        self.lost: list[int] = []
        self.attempts: list[int] = []
        self.core = UpnpCore(self.router, self.thread, self.clock, PORTS, self.mapped.append,
                             lambda: self.lost.append(1), lambda: self.attempts.append(1))
        self.machine: Any = UpnpMachine(self.core)
        self.entry = Registry().register("upnp_port_mapper", "AT_STARTUP")
        trace(self.machine, self.entry)
        self.machine.start()

    def test_maps_my_tcp_port_and_renews_at_half_the_lease(self) -> None:
        self.assertEqual(self.entry.state, "MAPPING")
        self.assertEqual(self.attempts, [])
        self.thread.release()
        self.assertEqual(self.attempts, [1])
        self.assertEqual(self.entry.state, "MAPPED")
        self.assertEqual(self.mapped, [Mapping("198.51.100.30", "192.168.1.20", PORTS)])
        self.assertEqual(self.router.forwarded, {port: ("192.168.1.20", LEASE_SECONDS) for port in PORTS})
        self.clock.advance(LEASE_SECONDS / 2)
        self.assertEqual(self.entry.state, "MAPPING")
        self.thread.release()
        self.assertEqual(self.router.adds, 4)

    def test_no_router_is_retried_later_and_later(self) -> None:
        self.router.answering = False
        self.thread.release()
        self.assertEqual(self.entry.state, "WAITING")
        self.assertIn("no UPnP router", self.core.error)
        self.assertEqual(self.attempts, [1])
        self.clock.advance(FIRST_RETRY)
        self.thread.release()
        self.clock.advance(FIRST_RETRY)
        self.assertEqual(self.entry.state, "WAITING")
        self.clock.advance(FIRST_RETRY)
        self.assertEqual(self.entry.state, "MAPPING")
        self.router.answering = True
        self.thread.release()
        self.assertEqual(self.entry.state, "MAPPED")
        self.assertEqual(self.core.error, "")

    def test_a_renewal_the_router_refuses_loses_the_mapping(self) -> None:
        self.thread.release()
        self.clock.advance(LEASE_SECONDS / 2)
        self.router.answering = False
        self.thread.release()
        self.assertEqual(self.lost, [1])
        self.assertIsNone(self.core.mapping)

    def test_stop_removes_the_mapping_and_fires_when_done(self) -> None:
        self.thread.release()
        stopped = self.machine.stop()
        self.assertNoResult(stopped)
        self.assertEqual(self.entry.state, "UNMAPPING")
        self.thread.release()
        self.successResultOf(stopped)
        self.assertEqual(self.router.forwarded, {})
        self.assertEqual(self.entry.state, "STOPPED")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.successResultOf(self.machine.stop())

    def test_stop_while_mapping_removes_what_the_thread_makes(self) -> None:
        stopped = self.machine.stop()
        self.thread.release()  # the mapping the thread was making
        self.assertEqual(len(self.router.forwarded), 2)
        self.thread.release()  # its removal
        self.successResultOf(stopped)
        self.assertEqual(self.router.forwarded, {})
        self.assertEqual(self.mapped, [])

    def test_stop_while_waiting_needs_nothing_removed(self) -> None:
        self.router.answering = False
        self.thread.release()
        self.successResultOf(self.machine.stop())
        self.assertEqual(self.clock.getDelayedCalls(), [])
