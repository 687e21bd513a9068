"""Caps on a listening port's connections: in all and from one address, with the local reverse proxy's
address passing the per-address cap; through the deadline factory that applies them on fake addresses, then
over real sockets."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, protocol, reactor
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bitdust_node.net.connection_caps import ConnectionCaps, client_key
from bitdust_node.net.deadline import DeadlineFactory


class Echo(protocol.Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[union-attr]


def address(host: str) -> IPv4Address:
    return IPv4Address("TCP", host, 40000)


def capped(total: int, per_host: int) -> DeadlineFactory:
    return DeadlineFactory(protocol.Factory.forProtocol(Echo), 20.0, Clock(), ConnectionCaps(total, per_host))


class CapsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.factory = capped(total=5, per_host=2)
        self.caps = self.factory.caps
        assert self.caps is not None

    def connect(self, host: str) -> Any:
        built = self.factory.buildProtocol(address(host))
        if built is not None:
            built.makeConnection(StringTransport(peerAddress=address(host)))
        return built

    def test_one_address_gets_at_most_per_host_and_a_closed_one_frees_its_place(self) -> None:
        first, second = self.connect("10.0.0.1"), self.connect("10.0.0.1")
        self.assertIsNotNone(first)
        self.assertIsNotNone(second)
        self.assertIsNone(self.connect("10.0.0.1"))
        self.assertIsNotNone(self.connect("10.0.0.2"))  # another address is not held back
        self.assertEqual(self.caps.refused["per_host"], 1)
        first.connectionLost(None)
        self.assertIsNotNone(self.connect("10.0.0.1"))
        self.assertEqual(self.caps.by_host["10.0.0.1"], 2)

    def test_the_total_holds_everyone_the_local_proxy_too(self) -> None:
        local = [self.connect("127.0.0.1") for _ in range(5)]  # past per_host: a reverse proxy's clients
        self.assertTrue(all(p is not None for p in local))
        self.assertIsNone(self.connect("10.0.0.9"))
        self.assertIsNone(self.connect("127.0.0.1"))
        self.assertEqual(self.caps.refused["total"], 2)
        for p in local:
            p.connectionLost(None)
        self.assertEqual((self.caps.open, dict(self.caps.by_host)), (0, {}))


class ClientKeyTests(SynchronousTestCase):
    def test_ipv4_mapped_clients_count_as_their_ipv4_address_and_ipv6_by_its_64(self) -> None:
        self.assertEqual(client_key("::ffff:10.0.0.1"), "10.0.0.1")
        self.assertEqual(client_key("::ffff:127.0.0.1"), "127.0.0.1")
        self.assertEqual(client_key("2001:db8:1:2:aaaa::1"), client_key("2001:db8:1:2:bbbb::9"))
        self.assertNotEqual(client_key("2001:db8:1:2::1"), client_key("2001:db8:1:3::1"))
        self.assertEqual(client_key("::1"), "::1")

    def test_a_64_is_one_client_and_a_mapped_local_proxy_passes(self) -> None:
        caps = ConnectionCaps(total=100, per_host=2)
        self.assertTrue(caps.admit("2001:db8::1"))
        self.assertTrue(caps.admit("2001:db8::2"))
        self.assertFalse(caps.admit("2001:db8::3"))
        self.assertTrue(all(caps.admit("::ffff:127.0.0.1") for _ in range(5)))
        caps.gone("2001:db8::1")
        self.assertTrue(caps.admit("2001:db8::ffff"))


class RealSocketTests(TestCase):
    async def test_a_connection_over_the_per_address_cap_is_closed_at_once(self) -> None:
        factory = capped(total=100, per_host=2)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        creator = protocol.ClientCreator(reactor, Echo)
        kept = []
        for _ in range(2):
            kept.append(await creator.connectTCP("127.0.0.1", port.getHost().port, bindAddress=("127.0.0.2", 0)))
        closed: defer.Deferred[None] = defer.Deferred()

        class Watch(Echo):
            def connectionLost(self, reason: Any = None) -> None:
                closed.callback(None)

        await protocol.ClientCreator(reactor, Watch).connectTCP("127.0.0.1", port.getHost().port,
                                                                bindAddress=("127.0.0.2", 0))
        await closed.addTimeout(5, reactor)
        assert factory.caps is not None
        self.assertEqual(factory.caps.refused["per_host"], 1)
        self.assertEqual(factory.caps.by_host["127.0.0.2"], 2)
        for client in kept:
            client.transport.loseConnection()
