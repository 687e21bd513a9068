"""The routed user's shell with a Clock and a network in memory: where my packets go in each state, the bounded
queue and its expiry, RelayAck waits and their timeouts, a router that forgets my route or goes quiet, and stop."""

from __future__ import annotations

import random
from pathlib import Path

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.fsm import Registry
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.proxy import relay
from bitdust_node.proxy.client import ClientLimits, ProxyClient
from bitdust_node.proxy.line import router_address
from bitdust_node.transport.errors import TransportError
from bitdust_node.wire import packet as wire
from bitdust_node.wire.identity_xml import Identity
from bitdust_node.wire.packet import Packet
from tests.proxy.fakes import NOW, FakeLink, FakeLookup, FakeNetwork, FakePublisher, captured_me, identity_cache

ALICE, BOB, CAROL = captured_me("alice"), captured_me("bob"), captured_me("carol")


class Harness:
    """Bob, routed; alice and carol are routers in DHT layer 2 (only alice's identity server answers)."""

    def __init__(self, test: SynchronousTestCase, routers: list[Identity] | None = None) -> None:
        self.clock = Clock()
        self.clock.advance(NOW)
        home = Path(test.mktemp())
        self.holder = MyIdentityHolder(home, BOB)
        self.network = FakeNetwork(self.clock, self.holder)
        cache = identity_cache(home / "cache", self.clock, ALICE)
        cache.keep(CAROL.idurl, CAROL.identity, CAROL.xml)
        self.lookup = FakeLookup([ALICE.identity] if routers is None else routers)
        self.link = FakeLink()
        self.publisher = FakePublisher()
        self.entry = Registry().register("proxy_receiver", "AT_STARTUP")
        self.client = ProxyClient(self.network, self.holder, cache, self.clock, self.lookup, self.link,
                                  self.publisher, list, self.entry, ClientLimits(max_queued=3),
                                  random.Random(7))
        self.client.start()

    @property
    def state(self) -> str:
        return self.client.state

    def routed(self, router: Identity = ALICE.identity) -> None:
        """Through ACK? and SERVICE? to LISTEN, with a connection to the router."""
        by = ALICE if router is ALICE.identity else CAROL
        address = router_address(router)
        assert address is not None
        self.link.open(address)
        (introduced,) = self.network.requests("Identity")
        self.network.answer(introduced, by)
        (asked,) = self.network.requests("RequestService")
        self.network.answer(asked, by, payload=b"accepted")

    def message(self, to: Identity = CAROL.identity, number: int = 1) -> tuple[Packet, defer.Deferred[None]]:
        packet = self.network.outbox("Message", to.sources[0], b"hello", packet_id=f"message:{number}")
        return packet, self.network.send(packet, to)

    def relayed(self) -> list[bytes]:
        """The RelayOuts sent to the router so far."""
        return [data for data, remote in self.network.data_sent if wire.parse(data).command == "RelayOut"]


class WhereMyPacketsGoTests(SynchronousTestCase):
    def test_while_a_router_is_asked_they_wait_but_those_to_it_go_directly(self) -> None:
        h = Harness(self)
        self.assertEqual(h.state, "ACK?")
        _packet, waiting = h.message()
        self.assertNoResult(waiting)
        self.assertEqual([(s.packet.command, s.routed) for s in h.network.sent], [("Identity", False),
                                                                                  ("Message", True)])
        self.assertEqual((h.client.router, len(h.client.queue)), (ALICE.identity, 1))

    def test_once_routed_the_waiting_ones_go_through_the_router_and_fire_on_its_relay_ack(self) -> None:
        h = Harness(self)
        packet, waiting = h.message()
        h.routed()
        self.assertEqual((h.state, h.client.listening, len(h.client.queue)), ("LISTEN", True, 0))
        (relay_out,) = h.relayed()
        self.assertNoResult(waiting)
        h.network.deliver(h.network.relay_result(ALICE, relay_out))
        self.assertIsNone(self.successResultOf(waiting))
        opened = relay.decode_envelope(relay.unseal(wire.parse(relay_out).payload, ALICE.key, relay.ROUTED_OUTGOING))
        self.assertEqual((opened.receiver, opened.packet), (CAROL.idurl, wire.serialize(packet)))
        self.assertEqual(h.publisher.published, [ALICE.identity.contacts])

    def test_offline_they_go_directly(self) -> None:
        h = Harness(self, routers=[])
        self.assertEqual((h.state, h.publisher.published), ("OFFLINE", [None]))
        _packet, sent = h.message()
        self.successResultOf(sent)
        self.assertEqual([(s.packet.command, s.routed) for s in h.network.sent], [("Message", False)])


class QueueTests(SynchronousTestCase):
    def test_the_queue_is_bounded(self) -> None:
        h = Harness(self)
        waiting = [h.message(number=n)[1] for n in range(3)]
        _packet, refused = h.message(number=3)
        self.assertIn("queue of waiting packets is full", str(self.failureResultOf(refused, TransportError).value))
        self.assertEqual((h.client.counters["queued"], h.client.counters["queue_full"]), (3, 1))
        for d in waiting:
            self.assertNoResult(d)

    def test_a_packet_waits_thirty_seconds_for_a_router(self) -> None:
        h = Harness(self)
        _packet, first = h.message(number=1)
        h.clock.advance(10)
        _packet, second = h.message(number=2)
        h.clock.advance(20)
        failure = self.failureResultOf(first, TransportError)
        self.assertEqual(failure.getErrorMessage(), "no proxy router within 30 s")
        self.assertNoResult(second)
        self.assertEqual((len(h.client.queue), h.client.counters["queue_expired"]), (1, 1))


class RelayTests(SynchronousTestCase):
    def test_a_relayed_packet_without_relay_ack_fails_after_its_timeout_and_ten_seconds(self) -> None:
        h = Harness(self)
        h.routed()
        _packet, sent = h.message()
        h.clock.advance(39.9)
        self.assertNoResult(sent)
        h.clock.advance(0.1)
        self.assertEqual(self.failureResultOf(sent, TransportError).getErrorMessage(),
                         "no RelayAck from the router in 40 s")
        self.assertEqual((h.client.counters["relay_timed_out"], h.client.status().awaiting_relay_ack), (1, 0))

    def test_relay_fail_route_not_exist_fails_the_packet_and_moves_to_a_known_router(self) -> None:
        h = Harness(self, routers=[ALICE.identity, CAROL.identity])
        first = h.client.router
        assert first is not None
        h.routed(first)
        request = h.network.outbox("Message", CAROL.idurl if first is ALICE.identity else ALICE.idurl, b"hi")
        answer = h.network.request(request, CAROL.identity if first is ALICE.identity else ALICE.identity)
        (relay_out,) = h.relayed()
        by = ALICE if first is ALICE.identity else CAROL
        h.network.deliver(h.network.relay_result(by, relay_out, relay.ROUTE_NOT_EXIST))
        self.assertIn("route not exist", self.failureResultOf(answer, TransportError).getErrorMessage())
        self.assertEqual(h.client.counters["relay_failed"], 1)
        self.assertEqual(h.state, "ACK?")
        self.assertIsNot(h.client.router, first)
        self.assertEqual(h.lookup.asked, 1, "the other router, found before, is asked without a new lookup")
        (left,) = h.client.status().past_routers
        self.assertEqual((left.router, left.why), (first.sources[0], "the router says route not exist"))

    def test_fail_route_not_exist_to_a_relay_out_loses_the_route(self) -> None:
        h = Harness(self)
        h.routed()
        packet, sent = h.message()
        h.network.deliver(h.network.inbound(ALICE, "Fail", relay.ROUTE_NOT_EXIST.encode(), packet.packet_id))
        failure = self.failureResultOf(sent, TransportError)
        self.assertEqual(failure.getErrorMessage(), "the router says route not exist")
        self.assertEqual((h.state, h.client.listening), ("OFFLINE", False))

    def test_relay_in_from_my_router_is_taken_in_and_from_others_not(self) -> None:
        h = Harness(self)
        h.routed()
        inner = wire.serialize(h.network.outbox("Message", BOB.idurl, b"to bob"))
        sealed = relay.seal(inner, relay.ROUTED_INCOMING, ALICE.idurl, BOB.key.public_key(), ALICE.key)
        h.network.deliver(h.network.inbound(CAROL, "RelayIn", sealed))
        h.network.deliver(h.network.inbound(ALICE, "RelayIn", sealed))
        self.assertEqual(h.network.taken_in, [inner])
        self.assertEqual((h.client.counters["relayed_in"], h.client.counters["relay_in_not_from_router"]), (1, 1))


class RouterCheckTests(SynchronousTestCase):
    def test_keep_alive_every_ten_seconds_and_a_closed_connection_checks_the_router(self) -> None:
        h = Harness(self)
        h.routed()
        address = router_address(ALICE.identity)
        h.clock.advance(10)
        h.clock.advance(10)
        self.assertEqual(h.link.keep_alives, [address, address])
        assert address is not None
        h.link.close(address)
        (check,) = h.network.requests("Identity")
        self.assertEqual(h.state, "LISTEN")
        h.clock.advance(10)  # the check gets no answer either
        self.assertEqual(h.state, "OFFLINE")
        self.assertIn("the connection to the router closed", h.client.status().past_routers[-1].why)
        self.assertEqual(check.remote_id, ALICE.idurl)


class StopTests(SynchronousTestCase):
    def test_stop_while_routed_cancels_the_route_fails_what_waits_and_gives_my_contacts_back(self) -> None:
        h = Harness(self)
        h.routed()
        _packet, relayed = h.message()
        stopped = h.client.stop()
        self.assertEqual(h.state, "CLOSED")
        self.assertIn("no longer routed", self.failureResultOf(relayed, TransportError).getErrorMessage())
        (cancel,) = h.network.requests("CancelService")
        self.assertEqual(cancel.remote_id, ALICE.idurl)
        self.assertNoResult(stopped)
        h.network.answer(cancel, ALICE, payload=b"accepted")
        self.successResultOf(stopped)
        self.assertEqual(h.publisher.published, [ALICE.identity.contacts, None])
        self.assertEqual((h.network.route, h.network.handlers["RelayIn"], h.clock.getDelayedCalls()), (None, [], []))

    def test_stop_while_looking_fails_the_queue(self) -> None:
        h = Harness(self)
        _packet, waiting = h.message()
        self.successResultOf(h.client.stop())
        self.assertEqual(self.failureResultOf(waiting, TransportError).getErrorMessage(),
                         "the proxy transport stopped")
        self.assertEqual((h.network.requests("Identity"), h.clock.getDelayedCalls()), ([], []))
