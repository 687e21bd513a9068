"""The identity cache stays bounded against peers that make identities at will: past its bytes the users used least
lately are forgotten (memory and disk), never the pinned peers, nor before `arm` those read from the disk; one key
keeps a bounded number of IDURLs. The gateway's Identity packets go through the same bound."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.crypto.packet_signing import sign_packet
from bitdust_node.identity.cache import IdentityCache, _file_name
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.identity.my_identity import MyIdentity
from bitdust_node.net.budget import ReceiveBudget
from bitdust_node.net.http import CappedHttp
from bitdust_node.transport.gateway import Gateway
from bitdust_node.wire import packet as wire
from tests.identity import vectors
from tests.identity.support import make_identity

HOST = "127.0.0.78:8084"
# a few keys for many users: each test user needs its own key (a key is one user)
_KEYS: list[rsa.RSAPrivateKey] = []


def key(n: int) -> rsa.RSAPrivateKey:
    while len(_KEYS) <= n:
        _KEYS.append(rsa.generate_private_key(65537, 1024))
    return _KEYS[n]


def url(name: str, host: str = HOST) -> str:
    return f"http://{host}/{name}.xml"


def user_xml(n: int, revision: int = 0, hosts: tuple[str, ...] = (HOST,)) -> bytes:
    return make_identity(f"user{n}", key(n), hosts=hosts, revision=revision)


class CacheBoundTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.root = Path(self.mktemp())
        self.size = len(user_xml(0))
        # room for four users' files; a trim leaves 7/8 of that
        self.cache = self.new_cache()

    def new_cache(self) -> IdentityCache:
        cache = IdentityCache(self.root, CappedHttp(MemoryReactorClock()), max_bytes=4 * self.size + self.size // 2)
        cache.load()
        return cache

    def accept(self, cache: IdentityCache, n: int) -> None:
        cache.accept(url(f"user{n}"), user_xml(n))

    def files(self) -> set[str]:
        return {p.name for p in self.root.glob("*.xml")}

    def test_past_its_bytes_the_users_used_least_lately_are_forgotten_from_memory_and_disk(self) -> None:
        self.cache.arm()
        for n in range(4):
            self.accept(self.cache, n)
        self.cache.get(url("user0"))  # used lately: user1, then user2, are now the least lately used
        self.accept(self.cache, 4)
        # down to 7/8 of the bound: two users go
        self.assertIsNone(self.cache.get(url("user1")))
        self.assertIsNone(self.cache.get(url("user2")))
        self.assertEqual(self.cache.forgotten, 2)
        for n in (0, 3, 4):
            self.assertIsNotNone(self.cache.get(url(f"user{n}")), n)
        self.assertLessEqual(self.cache.held_bytes(), self.cache.max_bytes * 7 // 8)
        self.assertEqual(self.files(), {_file_name(url(f"user{n}")) for n in (0, 3, 4)})
        # a flood of new users: what is held stays within the bound, the last one kept
        for n in range(5, 30):
            self.accept(self.cache, n)
            self.assertLessEqual(self.cache.held_bytes(), self.cache.max_bytes)
        self.assertIsNotNone(self.cache.get(url("user29")))
        self.assertLessEqual(len(self.files()), 4)
        self.assertEqual(self.cache.held_bytes(), sum(p.stat().st_size for p in self.root.glob("*.xml")))

    def test_pinned_users_are_never_forgotten(self) -> None:
        self.cache.arm()
        peers = [url("user0"), url("user1")]
        unpin = self.cache.pin(lambda: peers)
        for n in range(12):
            self.accept(self.cache, n)
        self.assertIsNotNone(self.cache.get(url("user0")))
        self.assertIsNotNone(self.cache.get(url("user1")))
        self.assertLessEqual(self.cache.held_bytes(), self.cache.max_bytes)
        unpin()
        for n in range(12, 16):
            self.accept(self.cache, n)
        self.assertIsNone(self.cache.get(url("user0")))

    def test_users_read_from_the_disk_wait_for_the_services_pins(self) -> None:
        for n in range(4):
            self.accept(self.cache, n)
            os.utime(self.root / _file_name(url(f"user{n}")), (1000 + n, 1000 + n))  # user0 used least lately
        cache = self.new_cache()
        self.assertEqual(cache.held_bytes(), sum(p.stat().st_size for p in self.root.glob("*.xml")))
        # a flood before the services started: only newcomers are forgotten, the peers read at start stay
        for n in range(4, 10):
            self.accept(cache, n)
        self.assertTrue(all(cache.get(url(f"user{n}")) is not None for n in range(4)))
        self.assertIsNotNone(cache.get(url("user9")))
        # the services pinned user0; past the bound again, the unpinned read at start go by their files' times
        cache.pin(lambda: [url("user0")])
        for n in range(1, 4):
            cache.get(url(f"user{n}"))
        cache.get(url("user0"))
        cache.arm()
        self.assertLessEqual(cache.held_bytes(), cache.max_bytes)
        self.assertIsNotNone(cache.get(url("user0")))
        self.assertIsNone(cache.get(url("user1")))

    def test_one_key_keeps_a_bounded_number_of_idurls(self) -> None:
        self.cache.max_idurls_per_user = 3
        for revision in range(6):
            host = f"127.0.0.{100 + revision}:8084"
            self.cache.accept(url("user0", host), user_xml(0, revision=revision, hosts=(host,)))
        self.assertEqual(self.cache.aliases(url("user0", "127.0.0.105:8084")),
                         [url("user0", "127.0.0.105:8084"), url("user0", "127.0.0.103:8084"),
                          url("user0", "127.0.0.104:8084")])
        self.assertIsNone(self.cache.get(url("user0", "127.0.0.100:8084")))
        self.assertEqual(len(self.files()), 3)
        self.assertEqual(self.cache.held_bytes(), sum(p.stat().st_size for p in self.root.glob("*.xml")))

    def test_a_forgotten_user_comes_back_as_new(self) -> None:
        self.cache.arm()
        for n in range(6):
            self.accept(self.cache, n)
        self.assertIsNone(self.cache.get(url("user0")))
        self.accept(self.cache, 0)
        self.assertEqual(self.cache.get(url("user0")).name, "user0")  # type: ignore[union-attr]


class GatewayIdentityFloodTests(SynchronousTestCase):
    """Identity packets from ever new users, each self-signed and carrying its identity: the cache's bound holds."""

    def test_identity_packets_from_new_users_keep_the_cache_bounded(self) -> None:
        clock = MemoryReactorClock()
        home = Path(self.mktemp())
        me = MyIdentityHolder(home, MyIdentity(vectors.identity("bob"), vectors.private_key("bob")))
        size = len(user_xml(0))
        cache = IdentityCache(home / "cache", CappedHttp(clock), max_bytes=3 * size)
        cache.load()
        cache.arm()
        gateway = Gateway(clock, me, cache, budget=ReceiveBudget(1_000_000))
        for n in range(10):
            creator = url(f"user{n}")
            unsigned = wire.Packet("Identity", creator, creator, f"id{n}", "d", user_xml(n),
                                   vectors.identity("bob").sources[0], "k")
            self.successResultOf(gateway.file_received(wire.serialize(sign_packet(unsigned, key(n)))))
            self.assertIsNotNone(cache.get(creator), n)
        status = gateway.status()
        self.assertLessEqual(status["identity_cache_bytes"], 3 * size)  # type: ignore[operator]
        self.assertGreaterEqual(status["identities_forgotten"], 7)  # type: ignore[operator]
        self.assertLessEqual(len(list((home / "cache").glob("*.xml"))), 3)
