"""The service graph: order, conflicts, live switching, DEPENDS_OFF, NOT_INSTALLED, failures."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from bitdust_node.errors import ServiceOff
from bitdust_node.fsm import Registry
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.identity.my_identity import MyIdentity
from bitdust_node.services import graph as graph_module
from bitdust_node.services.base import Service, UndeclaredDependency
from bitdust_node.services.catalog import DEPENDS as GRAPH
from bitdust_node.services.catalog import discover
from bitdust_node.services.graph import GraphError, ServiceGraph, dependency_order
from bitdust_node.settings import Settings
from tests.identity import vectors
from tests.support.nodes import eventually, start_node


@attrs.define
class FakeNode:
    """A node context without sockets: real settings, registry and identity holder, plus a journal."""

    home: Path
    settings: Settings = attrs.field(factory=lambda: Settings.load(None))
    registry: Registry = attrs.field(factory=Registry)
    identity: MyIdentityHolder = attrs.field(
        default=attrs.Factory(lambda self: MyIdentityHolder(self.home), takes_self=True)
    )
    journal: list[str] = attrs.field(factory=list)
    # name -> Deferred the test fires by hand; services not listed start at once
    pending: dict[str, defer.Deferred[None]] = attrs.field(factory=dict)
    fail: set[str] = attrs.field(factory=set)
    reactor: Clock = attrs.field(factory=Clock)


def recording(name: str, **extra: Any) -> type[Service]:
    """A service that writes its starts and stops into the node's journal."""

    class Recording(Service):
        def start(self) -> defer.Deferred[None]:
            node: FakeNode = self.ctx  # type: ignore[assignment]
            node.journal.append(f"start {self.name}")
            if self.name in node.fail:
                return defer.fail(OSError("Address already in use"))
            if self.name in node.pending:
                return node.pending[self.name]
            return defer.succeed(None)

        def stop(self) -> defer.Deferred[None]:
            self.ctx.journal.append(f"stop {self.name}")  # type: ignore[attr-defined]
            return defer.succeed(None)

    Recording.name = name
    for key, value in extra.items():
        setattr(Recording, key, value)
    return Recording


def spec_classes() -> dict[str, type[Service]]:
    """The real dependency table of SPEC.md with recording services in place of real ones."""
    return {name: recording(name) for name in GRAPH}


class DependencyOrderTests(TestCase):
    def test_dependencies_come_first(self) -> None:
        order = dependency_order(GRAPH)
        for name, deps in GRAPH.items():
            for dep in deps:
                self.assertLess(order.index(dep), order.index(name), f"{dep} before {name}")

    def test_cycle_and_unknown_dependency_are_refused(self) -> None:
        self.assertRaises(GraphError, dependency_order, {"a": ("b",), "b": ("a",)})
        self.assertRaises(GraphError, dependency_order, {"a": ("nope",)})

    def test_catalog_covers_every_spec_service(self) -> None:
        names = set(discover())
        for name in ("network", "tcp_connections", "udp_datagrams", "gateway", "tcp_transport",
                     "entangled_dht", "identity_server", "identity_propagate", "p2p_hookups",
                     "nodes_lookup", "proxy_server", "proxy_transport", "private_messages",
                     "supplier", "customer"):
            self.assertIn(name, names)


class GraphTests(TestCase):
    def make(self, classes: dict[str, type[Service]] | None = None, **node_args: Any) -> tuple[FakeNode, ServiceGraph]:
        node = FakeNode(Path(self.mktemp()), **node_args)
        graph = ServiceGraph(node, classes or spec_classes())  # type: ignore[arg-type]
        graph.reconcile()
        return node, graph

    def states(self, graph: ServiceGraph) -> dict[str, str]:
        return {name: graph.state(name) for name in graph.managed}

    def test_defaults_start_in_dependency_order(self) -> None:
        node, graph = self.make()
        starts = [line.split()[1] for line in node.journal]
        for name in starts:
            for dep in GRAPH[name]:
                self.assertLess(starts.index(dep), starts.index(name))
        states = self.states(graph)
        self.assertEqual(states["customer"], "ON")
        self.assertEqual(states["identity_server"], "OFF")
        self.assertEqual(states["proxy_server"], "OFF")
        self.assertTrue(graph.is_settled())

    def test_machines_are_registered_with_indexes(self) -> None:
        node, _graph = self.make()
        entries = node.registry.entries()
        self.assertEqual([e.index for e in entries], list(range(1, len(GRAPH) + 1)))
        self.assertIn("service_network", [e.id for e in entries])
        network = node.registry.find("service_network")
        assert network is not None
        self.assertEqual((network.state, network.past), ("ON", ["OFF", "STARTING"]))

    def test_switching_a_dependency_off_stops_dependents_first_and_back(self) -> None:
        node, graph = self.make()
        node.journal.clear()
        node.settings.set("services/network/enabled", False)
        stops = [line.split()[1] for line in node.journal]
        self.assertEqual(stops[-1], "network")
        for name in stops:
            for dep in GRAPH[name]:
                self.assertGreater(stops.index(dep), stops.index(name), f"{name} stops before {dep}")
        states = self.states(graph)
        self.assertEqual(states["network"], "OFF")
        self.assertEqual(states["entangled_dht"], "DEPENDS_OFF")
        self.assertEqual(states["customer"], "DEPENDS_OFF")
        self.assertEqual(states["identity_server"], "OFF")  # disabled, so OFF rather than DEPENDS_OFF
        node.settings.set("services/network/enabled", True)
        self.assertEqual(self.states(graph)["customer"], "ON")

    def test_enabling_a_service_starts_it_live(self) -> None:
        node, graph = self.make()
        node.settings.set("services/identity-server/enabled", True)
        self.assertEqual(graph.state("identity_server"), "ON")
        node.settings.set("services/identity-server/enabled", False)
        self.assertEqual(graph.state("identity_server"), "OFF")
        self.assertEqual(node.journal[-1], "stop identity_server")

    def test_proxy_server_stays_off_while_proxy_transport_is_enabled(self) -> None:
        node, graph = self.make()
        node.settings.set("services/proxy-server/enabled", True)
        self.assertEqual(graph.state("proxy_server"), "OFF")
        self.assertIn("service_proxy_transport", graph.describe("proxy_server")["reason"])
        node.settings.set("services/proxy-transport/enabled", False)
        self.assertEqual(graph.state("proxy_server"), "ON")
        self.assertEqual(graph.state("proxy_transport"), "OFF")
        node.settings.set("services/proxy-transport/enabled", True)
        self.assertEqual(graph.state("proxy_server"), "OFF")
        self.assertEqual(graph.state("proxy_transport"), "ON")

    def test_needs_identity_is_not_installed_until_one_exists(self) -> None:
        classes = spec_classes()
        classes["supplier"] = recording("supplier", needs_identity=True)
        node, graph = self.make(classes)
        self.assertEqual(graph.state("supplier"), "NOT_INSTALLED")
        self.assertIn("identity", graph.describe("supplier")["reason"])
        # adopting an identity is enough: the graph hears of it and starts the service
        node.identity.adopt(MyIdentity(vectors.identity("alice"), vectors.private_key("alice")))
        self.assertEqual(graph.state("supplier"), "ON")

    def test_not_built_service_is_never_started(self) -> None:
        classes = spec_classes()
        classes["gateway"] = recording("gateway", not_built="not built yet")
        node, graph = self.make(classes)
        self.assertEqual(graph.state("gateway"), "NOT_INSTALLED")
        self.assertEqual(graph.state("tcp_transport"), "DEPENDS_OFF")
        self.assertNotIn("start gateway", node.journal)

    def test_dependents_wait_for_a_slow_start(self) -> None:
        slow: defer.Deferred[None] = defer.Deferred()
        node, graph = self.make(pending={"udp_datagrams": slow})
        self.assertEqual(graph.state("udp_datagrams"), "STARTING")
        self.assertIn(graph.state("entangled_dht"), ("OFF", "DEPENDS_OFF"))
        self.assertNotIn("start entangled_dht", node.journal)
        self.assertFalse(graph.is_settled())
        settled = graph.settled()
        self.assertNoResult(settled)
        slow.callback(None)
        self.assertEqual(graph.state("entangled_dht"), "ON")
        self.successResultOf(settled)

    def test_failed_start_rests_off_with_reason_until_settings_change(self) -> None:
        node, graph = self.make(fail={"udp_datagrams"})
        self.assertEqual(graph.state("udp_datagrams"), "OFF")
        self.assertIn("Address already in use", graph.describe("udp_datagrams")["reason"])
        self.assertEqual(graph.state("entangled_dht"), "DEPENDS_OFF")
        self.assertEqual(node.journal.count("start udp_datagrams"), 1)  # no retry loop
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.assertTrue(graph.is_settled())
        node.fail.clear()
        node.settings.set("services/udp-datagrams/udp-port", 8883)
        self.assertEqual(graph.state("entangled_dht"), "ON")

    def test_a_failed_start_is_tried_again_ever_later_and_its_dependents_follow_it_up(self) -> None:
        node, graph = self.make(fail={"udp_datagrams"})
        self.flushLoggedErrors(OSError)
        self.assertIn("failed 1 time in a row; tried again in 10 s", graph.describe("udp_datagrams")["reason"])
        tries = []
        for wait in (10, 20, 40, 80, 160, 320, 600, 600):
            node.reactor.advance(wait - 0.5)
            tries.append(node.journal.count("start udp_datagrams"))
            node.reactor.advance(0.5)
            self.flushLoggedErrors(OSError)
        # each try came when it was due, not before: 9 in all
        self.assertEqual(tries, list(range(1, 9)))
        self.assertEqual(node.journal.count("start udp_datagrams"), 9)
        self.assertIn("failed 9 times in a row; tried again in 600 s", graph.describe("udp_datagrams")["reason"])
        node.fail.clear()  # the address is up now
        node.reactor.advance(600)
        self.assertEqual(graph.state("udp_datagrams"), "ON")
        self.assertEqual(graph.state("entangled_dht"), "ON")
        self.assertEqual(graph._failures, {})  # started: a later failure counts from one
        # its next failure is a first one again
        self.assertEqual(graph.state("customer"), "ON")
        node.fail.add("udp_datagrams")
        node.settings.set("services/udp-datagrams/udp-port", 8884)
        self.flushLoggedErrors(OSError)
        self.assertIn("failed 1 time in a row", graph.describe("udp_datagrams")["reason"])
        self.assertEqual(node.reactor.getDelayedCalls()[0].getTime() - node.reactor.seconds(), 10)

    def test_a_service_failing_for_a_week_is_still_tried_every_ten_minutes(self) -> None:
        node, graph = self.make(fail={"udp_datagrams"})
        for _ in range(1100):  # over a thousand failures: 2 ** 1024 would not make a float
            node.reactor.advance(600)
            self.flushLoggedErrors(OSError)
        self.assertEqual(len(node.reactor.getDelayedCalls()), 1)
        self.assertIn("failed 1101 times in a row; tried again in 600 s", graph.describe("udp_datagrams")["reason"])
        node.fail.clear()
        node.reactor.advance(600)
        self.assertEqual(graph.state("entangled_dht"), "ON")

    def test_a_start_that_fails_after_a_setting_changed_is_tried_again_at_once(self) -> None:
        # from helper-46's review: the start under way had the old setting; the fixed one waited for the backoff
        slow: defer.Deferred[None] = defer.Deferred()
        node, graph = self.make(pending={"udp_datagrams": slow})
        node.settings.set("services/udp-datagrams/udp-port", 8883)
        del node.pending["udp_datagrams"]
        slow.errback(OSError("Address already in use"))
        self.flushLoggedErrors(OSError)
        self.assertEqual(node.journal.count("start udp_datagrams"), 2)
        self.assertEqual(graph.state("entangled_dht"), "ON")

    def test_no_try_is_left_waiting_once_the_node_stops(self) -> None:
        node, graph = self.make(fail={"udp_datagrams"})
        self.flushLoggedErrors(OSError)
        self.assertEqual(len(node.reactor.getDelayedCalls()), 1)
        self.successResultOf(graph.shutdown())
        self.assertEqual(node.reactor.getDelayedCalls(), [])

    def test_a_start_that_fails_later_is_remembered_too(self) -> None:
        slow: defer.Deferred[None] = defer.Deferred()
        node, graph = self.make(pending={"udp_datagrams": slow})
        slow.errback(OSError("Address already in use"))
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.assertEqual(graph.state("udp_datagrams"), "OFF")
        self.assertIn("Address already in use", graph.describe("udp_datagrams")["reason"])
        self.assertEqual(node.journal.count("start udp_datagrams"), 1)
        self.assertEqual(graph.state("entangled_dht"), "DEPENDS_OFF")
        self.assertTrue(graph.is_settled())

    def test_changed_settings_restart_the_service_and_its_dependents(self) -> None:
        node, graph = self.make()
        node.journal.clear()
        node.settings.set("services/udp-datagrams/udp-port", 8883)
        self.assertIn("stop udp_datagrams", node.journal)
        self.assertLess(node.journal.index("stop entangled_dht"), node.journal.index("stop udp_datagrams"))
        self.assertLess(node.journal.index("stop udp_datagrams"), node.journal.index("start udp_datagrams"))
        self.assertLess(node.journal.index("start udp_datagrams"), node.journal.index("start entangled_dht"))
        self.assertNotIn("stop network", node.journal)
        self.assertEqual(graph.state("customer"), "ON")
        self.assertTrue(graph.is_settled())

    def test_shutdown_stops_everything_in_reverse_order(self) -> None:
        node, graph = self.make()
        node.journal.clear()
        done = graph.shutdown()
        self.successResultOf(done)
        stopped = [line.split()[1] for line in node.journal]
        self.assertEqual(stopped[-1], "network")
        self.assertTrue(all(s in ("OFF", "DEPENDS_OFF", "NOT_INSTALLED") for s in self.states(graph).values()))


class NeedTests(TestCase):
    """`Service.need` is the one way to reach another service: only a dependency, only while ON."""

    def make(self) -> tuple[FakeNode, ServiceGraph]:
        node = FakeNode(Path(self.mktemp()))
        graph = ServiceGraph(node, spec_classes())  # type: ignore[arg-type]
        graph.reconcile()
        return node, graph

    def test_a_dependency_is_reached_directly_or_through_others(self) -> None:
        _node, graph = self.make()
        dht = graph.managed["entangled_dht"].service
        network = graph.managed["network"].service
        self.assertIs(dht.need(type(graph.managed["udp_datagrams"].service)), graph.managed["udp_datagrams"].service)
        self.assertIs(dht.need(type(network)), network)  # entangled_dht -> udp_datagrams -> network

    def test_a_service_that_is_not_a_dependency_is_refused(self) -> None:
        _node, graph = self.make()
        network = graph.managed["network"].service
        dht_class = type(graph.managed["entangled_dht"].service)
        with self.assertRaises(UndeclaredDependency) as caught:
            network.need(dht_class)
        self.assertIn("service_network does not depend on service_entangled_dht", str(caught.exception))
        # a sibling is no dependency either, even while it is ON
        identity_server = graph.managed["identity_server"].service
        self.assertRaises(UndeclaredDependency, identity_server.need, type(graph.managed["udp_datagrams"].service))

    def test_a_dependency_that_is_off_is_refused(self) -> None:
        node, graph = self.make()
        dht = graph.managed["entangled_dht"].service
        udp_class = type(graph.managed["udp_datagrams"].service)
        node.settings.set("services/udp-datagrams/enabled", False)
        self.assertEqual(graph.state("udp_datagrams"), "OFF")
        with self.assertRaises(ServiceOff) as caught:
            dht.need(udp_class)
        self.assertNotIsInstance(caught.exception, UndeclaredDependency)


class MachineNameTests(TestCase):
    def test_names(self) -> None:
        cls = recording("entangled_dht")
        self.assertEqual(cls.machine_name(), "service_entangled_dht")
        self.assertEqual(cls.config_prefix(), "services/entangled-dht")


class RealNodeRetryTests(TestCase):
    """A real node whose UDP port is taken when it starts (another program, an address not up yet at boot)."""

    async def test_the_dht_comes_up_by_itself_once_its_port_is_free(self) -> None:
        self.patch(graph_module, "RETRY_FIRST", 0.2)
        address = "127.0.0.47"
        squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        squatter.bind((address, 8882))
        self.addCleanup(squatter.close)
        node = await start_node(self, address)
        assert node.graph is not None
        graph = node.graph
        self.assertEqual(graph.state("udp_datagrams"), "OFF")
        self.assertIn("failed 1 time in a row", graph.describe("udp_datagrams")["reason"])
        self.assertEqual(graph.state("entangled_dht"), "DEPENDS_OFF")
        self.flushLoggedErrors()
        await eventually(lambda: "failed 2 times" in graph.describe("udp_datagrams")["reason"], timeout=10)
        squatter.close()
        await eventually(lambda: graph.state("entangled_dht") == "ON", timeout=10)
        self.assertEqual(graph.state("udp_datagrams"), "ON")
        self.flushLoggedErrors()

    async def test_the_dht_comes_up_once_a_setting_it_refused_is_fixed(self) -> None:
        # from helper-46's review: a start that failed on a setting left its port open, and every retry tripped on it
        node = await start_node(self, "127.0.0.48", {"services/entangled-dht/attached-layers": "2,x"})
        assert node.graph is not None and node.ctx is not None
        graph = node.graph
        self.assertEqual(graph.state("entangled_dht"), "OFF")
        self.assertIn("attached-layers", graph.describe("entangled_dht")["reason"])
        self.flushLoggedErrors()
        node.ctx.settings.set("services/entangled-dht/attached-layers", "2")
        await eventually(lambda: graph.state("entangled_dht") == "ON", timeout=10)
        self.flushLoggedErrors()
