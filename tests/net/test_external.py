"""Which outside address my identity publishes, when it changes, and what proves it works."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.net.external import ExternalAddress, Outside

LAN = "10.1.0.5"


class ExternalAddressTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.external = ExternalAddress(self.clock, "0.0.0.0", [LAN, "127.0.0.1"])
        self.changes: list[Outside] = []
        self.external.subscribe(self.changes.append)

    def test_my_own_address_until_something_is_learned(self) -> None:
        self.assertEqual((self.external.address, self.external.current.source), (LAN, "local"))
        self.assertFalse(self.external.behind_nat())

    def test_stun_then_upnp_then_the_setting_win_in_that_order(self) -> None:
        self.external.learned("upnp", "198.51.100.8")
        self.assertEqual(self.external.current, Outside("198.51.100.8", "upnp", 1000))
        self.clock.advance(5)
        self.external.learned("stun", "198.51.100.7")
        self.assertEqual(self.external.current, Outside("198.51.100.7", "stun", 1005))
        self.assertTrue(self.external.behind_nat())
        self.external.set_override("node.example.org")
        self.assertEqual((self.external.address, self.external.current.source), ("node.example.org", "setting"))
        # a host name: whether it is behind NAT is not known
        self.assertFalse(self.external.behind_nat())
        self.external.set_override("")
        self.assertEqual(self.external.address, "198.51.100.7")
        self.assertEqual([c.address for c in self.changes], ["198.51.100.8", "198.51.100.7", "node.example.org",
                                                             "198.51.100.7"])

    def test_the_same_address_learned_again_tells_nobody(self) -> None:
        self.external.learned("stun", "198.51.100.7")
        self.external.learned("stun", "198.51.100.7")
        self.external.learned("upnp", "198.51.100.7")
        self.assertEqual(len(self.changes), 1)

    def test_addresses_peers_cannot_use_are_refused(self) -> None:
        for bad in ("127.0.0.1", "0.0.0.0", "224.0.0.1", "not an ip"):
            self.external.learned("stun", bad)
        self.assertEqual(self.external.current.source, "local")
        self.assertEqual(self.changes, [])

    def test_a_node_bound_to_loopback_may_learn_loopback(self) -> None:
        external = ExternalAddress(self.clock, "127.0.0.5", ["127.0.0.5"])
        external.learned("stun", "127.0.0.5")
        self.assertEqual((external.address, external.current.source), ("127.0.0.5", "stun"))

    def test_a_peer_from_outside_proves_the_address_until_it_changes(self) -> None:
        self.external.learned("stun", "198.51.100.7")
        self.assertFalse(self.external.port_forwarded())
        self.external.peer_connected("127.0.0.1")
        self.external.peer_connected(LAN)
        self.assertIsNone(self.external.reached)
        self.external.peer_connected("203.0.113.9")
        self.assertTrue(self.external.port_forwarded())
        assert self.external.reached is not None
        self.assertEqual(self.external.reached.peer, "203.0.113.9")
        self.external.learned("stun", "198.51.100.99")
        self.assertIsNone(self.external.reached)

    def test_a_local_change_is_told_to_who_learns(self) -> None:
        relearns: list[int] = []
        self.external.on_local_change(lambda: relearns.append(1))
        self.external.local_changed([LAN, "127.0.0.1"])
        self.assertEqual(relearns, [])
        self.external.local_changed(["10.9.0.1", "127.0.0.1"])
        self.assertEqual(relearns, [1])
        self.assertEqual(self.external.address, "10.9.0.1")

    def test_a_broken_listener_does_not_keep_others_from_hearing(self) -> None:
        def broken(_: Outside) -> None:
            raise RuntimeError("boom")

        external = ExternalAddress(self.clock, "0.0.0.0", [LAN])
        heard: list[Outside] = []
        external.subscribe(broken)
        external.subscribe(heard.append)
        external.learned("stun", "198.51.100.7")
        self.assertEqual(len(heard), 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
