"""The identity cache stays bounded against peers that make identities at will: past its bytes the users used least
lately are forgotten (memory and disk), never the pinned peers, nor before `arm` those read from the disk; one key
keeps a bounded number of IDURLs. The gateway's Identity packets go through the same bound."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bitdust_node.crypto.packet_signing import sign_packet
from bitdust_node.identity.cache import IDURL_OVERHEAD, IdentityCache, IdentityMismatch, _file_name
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.identity.my_identity import MyIdentity
from bitdust_node.identity.rotation import PeerDirectory
from bitdust_node.net.budget import ReceiveBudget
from bitdust_node.net.http import CappedHttp
from bitdust_node.transport.gateway import Gateway
from bitdust_node.wire import packet as wire
from tests.identity import vectors
from tests.identity.support import make_identity
from tests.support.nodes import start_node

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
        # what one user with one IDURL counts for: its file, its IDURL and the IDURL's indexing
        self.size = len(user_xml(0)) + len(url("user0")) + IDURL_OVERHEAD
        # room for four users' files; a trim leaves 7/8 of that
        self.cache = self.new_cache()

    def new_cache(self, max_bytes: int | None = None, max_idurls: int = 64) -> IdentityCache:
        cache = IdentityCache(self.root, CappedHttp(MemoryReactorClock()),
                              max_bytes=max_bytes or 4 * self.size + self.size // 2, max_idurls_per_user=max_idurls)
        cache.load()
        return cache

    def on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.root.glob("*.xml"))

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
        self.assertEqual(self.cache.file_bytes(), self.on_disk())

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
            os.utime(self.root / _file_name(url(f"user{n}")), (1000 + n, 1000 + n))  # user0 changed longest ago
        cache = self.new_cache()
        self.assertEqual(cache.file_bytes(), self.on_disk())
        # a flood before the services started: only newcomers are forgotten, the peers read at start stay
        for n in range(4, 10):
            self.accept(cache, n)
        self.assertTrue(all(cache.get(url(f"user{n}")) is not None for n in range(4)))
        self.assertIsNotNone(cache.get(url("user9")))

    def test_once_armed_the_unpinned_users_read_from_the_disk_go_by_their_files_times(self) -> None:
        for n in range(4):
            self.accept(self.cache, n)
            os.utime(self.root / _file_name(url(f"user{n}")), (1000 + n, 1000 + n))  # user0 changed longest ago
        cache = self.new_cache(max_bytes=3 * self.size)
        cache.pin(lambda: [url("user0")])
        self.assertEqual(cache.forgotten, 0)
        cache.arm()
        # down to 7/8 of 3 files: two go, the pinned one never, the older files first
        self.assertEqual([n for n in range(4) if cache.get(url(f"user{n}")) is None], [1, 2])
        self.assertEqual(cache.file_bytes(), self.on_disk())

    def test_over_the_bound_with_nothing_to_let_go_the_pins_are_not_asked_at_every_identity(self) -> None:
        self.cache.arm()
        asked: list[int] = []

        def everyone() -> list[str]:
            asked.append(1)
            return [url(f"user{n}") for n in range(40)]

        self.cache.pin(everyone)
        self.cache.max_bytes = 16 * self.size
        for n in range(40):
            self.accept(self.cache, n)
        # 24 identities past the bound, a trim at most once every 1/8 of it (two files here)
        self.assertGreater(len(asked), 0)
        self.assertLessEqual(len(asked), 13)
        self.assertEqual(self.cache.forgotten, 0)

    def test_a_disk_that_refuses_to_remove_files_does_not_stop_a_trim(self) -> None:
        self.cache.arm()

        def refused(path: Path, missing_ok: bool = False) -> None:
            raise OSError(30, "Read-only file system")

        self.patch(Path, "unlink", refused)
        for n in range(8):
            self.accept(self.cache, n)
        self.assertLessEqual(self.cache.held_bytes(), self.cache.max_bytes)
        self.assertGreater(self.cache.forgotten, 0)
        impostor = make_identity("user0", key(97), hosts=(HOST,))
        with self.assertRaises(IdentityMismatch):  # its binding was recorded all the same
            self.cache.accept(url("user0"), impostor)

    def test_users_unpinned_go_at_the_next_identity(self) -> None:
        self.cache.arm()
        self.cache.max_bytes = 16 * self.size  # a trim that frees nothing waits for 2 users more
        unpin = self.cache.pin(lambda: [url(f"user{n}") for n in range(16)])
        for n in range(16):  # the 16th passes the bound: a trim frees nothing
            self.accept(self.cache, n)
        self.assertEqual(self.cache.forgotten, 0)
        unpin()
        self.accept(self.cache, 16)  # still within the 2 users' wait, but the unpinned may go now
        self.assertLessEqual(self.cache.held_bytes(), self.cache.max_bytes)
        self.assertGreater(self.cache.forgotten, 0)

    def test_the_bytes_held_are_the_files_on_disk_when_an_idurl_is_kept_again(self) -> None:
        padded = user_xml(0).replace(b"</identity>", b" " * 20_000 + b"</identity>")
        self.cache.accept(url("user0"), padded)
        self.cache.accept(url("user0"), user_xml(0))  # the same identity: the file is not written again
        self.assertEqual(self.cache.file_bytes(), self.on_disk())
        self.cache.accept(url("user0"), user_xml(0, revision=1))
        self.assertEqual(self.cache.file_bytes(), self.on_disk())
        self.assertLess(self.cache.held_bytes(), 2 * self.size)

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
        self.assertEqual(self.cache.file_bytes(), self.on_disk())

    def test_the_current_sources_stay_whatever_the_cap(self) -> None:
        self.cache.max_idurls_per_user = 3
        hosts = tuple(f"127.0.0.{100 + n}:8084" for n in range(6))
        self.cache.accept(url("user0", hosts[0]), user_xml(0, revision=1, hosts=hosts[:3]))
        self.cache.accept(url("user0", hosts[3]), user_xml(0, revision=2, hosts=hosts[3:]))
        self.assertEqual(self.cache.aliases(url("user0", hosts[3])), [url("user0", h) for h in hosts[3:]])
        self.assertIsNone(self.cache.get(url("user0", hosts[0])))

    def test_a_cache_the_cap_acted_on_reads_back(self) -> None:
        """Files kept before the cap let go of IDURLs still list them: reading them back in revision order must
        not let go of an IDURL whose own file is still to be read."""
        cache = self.new_cache(max_bytes=1 << 20, max_idurls=8)
        h = [f"127.0.0.{100 + n}:8084" for n in range(12)]
        x, d1, d2, m, left = h[0], h[1], h[2], h[3], h[4]
        cache.accept(url("user0", m), user_xml(0, revision=10, hosts=(x, d1, d2, m)))
        cache.accept(url("user0", left), user_xml(0, revision=100, hosts=(left, x)))
        cache.accept(url("user0", x), user_xml(0, revision=90, hosts=(x,)))
        for n, host in enumerate(h[5:10]):  # older copies at new IDURLs (kept aside): the cap lets d1, d2 go
            cache.accept(url("user0", host), user_xml(0, revision=11 + n, hosts=(host,)))
        self.assertTrue((self.root / _file_name(url("user0", x))).exists())
        # read back oldest revision first, x would be let go (the newest read so far a filler's) before its file
        again = self.new_cache(max_bytes=1 << 20, max_idurls=8)
        self.assertEqual(again.get(url("user0", x)).revision, 100)  # type: ignore[union-attr]
        self.assertLessEqual(len(again.aliases(url("user0", left))), 8)
        self.assertEqual(again.file_bytes(), self.on_disk())

    def test_a_forgotten_user_comes_back_with_its_key_and_no_other_key_takes_its_idurl(self) -> None:
        self.cache.arm()
        for n in range(6):
            self.accept(self.cache, n)
        self.assertIsNone(self.cache.get(url("user0")))
        impostor = make_identity("user0", key(99), hosts=(HOST,))
        with self.assertRaises(IdentityMismatch):
            self.cache.accept(url("user0"), impostor)
        again = self.new_cache()  # the record of its key outlives a restart
        with self.assertRaises(IdentityMismatch):
            again.accept(url("user0"), impostor)
        self.accept(again, 0)
        self.assertEqual(again.get(url("user0")).name, "user0")  # type: ignore[union-attr]


class GatewayIdentityFloodTests(SynchronousTestCase):
    """Identity packets from ever new users, each self-signed and carrying its identity: the cache's bound holds."""

    def test_identity_packets_from_new_users_keep_the_cache_bounded(self) -> None:
        clock = MemoryReactorClock()
        home = Path(self.mktemp())
        me = MyIdentityHolder(home, MyIdentity(vectors.identity("bob"), vectors.private_key("bob")))
        size = len(user_xml(0)) + len(url("user0")) + IDURL_OVERHEAD
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


class PinWiringTests(SynchronousTestCase):
    def test_the_peer_directory_names_every_peer_uncapped(self) -> None:
        peers = PeerDirectory()
        peers.add("customers", lambda: [f"http://h/c{n}.xml" for n in range(300)])
        peers.add("router", lambda: ["http://h/r.xml", ""], first=True)
        self.assertEqual(len(peers.every()), 301)


class NodeArmsTheCacheTests(TestCase):
    async def test_a_node_arms_its_identity_cache_once_its_services_settled(self) -> None:
        node = await start_node(self, "127.0.0.79", {"services/identity-propagate/enabled": False})
        assert node.ctx is not None
        self.assertTrue(node.ctx.identity_cache.armed)
