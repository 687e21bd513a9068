"""The records of IDURLs the identity cache let go: each bound to its key across restarts, one key unable to push
out the others' records, the file bounded and whole again after a torn write."""

from __future__ import annotations

import os
from pathlib import Path

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.identity.cache import FORGOTTEN_FILE, IdentityCache, IdentityMismatch
from bitdust_node.identity.former_keys import FormerKeys
from bitdust_node.net.http import CappedHttp
from tests.identity.support import make_identity
from tests.identity.test_cache_bound import key, url, user_xml


class FormerKeysTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = Path(self.mktemp())
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def records(self, **limits: int) -> FormerKeys:
        former = FormerKeys(self.path, **limits)
        former.load()
        return former

    def test_a_record_binds_its_idurl_to_its_key_across_restarts(self) -> None:
        former = self.records()
        former.let_go("http://a/alice.xml", "alice-key")
        former.flush()
        again = self.records()
        self.assertTrue(again.claimed_by_another("http://a/alice.xml", "mallory-key"))
        self.assertFalse(again.claimed_by_another("http://a/alice.xml", "alice-key"))
        self.assertFalse(again.claimed_by_another("http://a/bob.xml", "mallory-key"))
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o600)

    def test_one_key_cannot_push_out_the_records_of_others(self) -> None:
        former = self.records(max_records=100, per_key=10)
        for n in range(50):
            former.let_go(f"http://a/victim{n}.xml", f"victim-key-{n}")
        for n in range(10_000):
            former.let_go(f"http://a/flood{n}.xml", "flood-key")
        former.flush()
        self.assertEqual(len(former), 60)
        again = self.records(max_records=100, per_key=10)
        self.assertTrue(all(again.claimed_by_another(f"http://a/victim{n}.xml", "flood-key") for n in range(50)))

    def test_the_file_stays_bounded_and_keeps_the_latest_records(self) -> None:
        former = self.records(max_records=100, per_key=1)
        for n in range(1_000):
            former.let_go(f"http://a/u{n}.xml", f"key-{n}")
            former.flush()
            self.assertLessEqual(self.path.stat().st_size, 2 * 100 * 16)
            if n % 70 == 0:
                former = self.records(max_records=100, per_key=1)  # a restart now and then
        again = self.records(max_records=100, per_key=1)
        self.assertEqual(len(again), 100)
        self.assertTrue(again.claimed_by_another("http://a/u999.xml", "other"))
        self.assertFalse(again.claimed_by_another("http://a/u899.xml", "other"))

    def test_a_torn_last_record_is_cut_off_and_later_ones_read_back(self) -> None:
        former = self.records()
        former.let_go("http://a/alice.xml", "alice-key")
        former.flush()
        with open(self.path, "ab") as records:
            records.write(b"\x01" * 8)  # a write cut short by a crash
        again = self.records()
        again.let_go("http://a/bob.xml", "bob-key")
        again.flush()
        third = self.records()
        self.assertTrue(third.claimed_by_another("http://a/alice.xml", "mallory-key"))
        self.assertTrue(third.claimed_by_another("http://a/bob.xml", "mallory-key"))

    def test_an_unreadable_file_frees_the_idurls_and_the_node_starts(self) -> None:
        self.path.mkdir()  # something that is not a file where the records should be
        former = self.records()
        self.assertEqual(len(former), 0)
        former.let_go("http://a/alice.xml", "alice-key")
        former.flush()  # cannot be written: a warning, nothing raised
        self.flushLoggedErrors()


class CacheRecordsTests(SynchronousTestCase):
    def test_a_source_only_a_replaced_file_listed_stays_bound_after_a_restart(self) -> None:
        root = Path(self.mktemp())
        hosts = ("127.0.0.100:8084", "127.0.0.101:8084", "127.0.0.102:8084")
        cache = IdentityCache(root, CappedHttp(MemoryReactorClock()))
        cache.load()
        y, x, z = (url("user0", h) for h in hosts)
        cache.accept(y, user_xml(0, revision=5, hosts=(hosts[0], hosts[1])))
        cache.accept(y, user_xml(0, revision=6, hosts=(hosts[0], hosts[2])))
        self.assertTrue((root / FORGOTTEN_FILE).exists())
        again = IdentityCache(root, CappedHttp(MemoryReactorClock()))
        again.load()
        self.assertIsNone(again.get(x))  # no file lists it now
        with self.assertRaises(IdentityMismatch):
            again.accept(x, make_identity("user0", key(98), hosts=(hosts[1],)))
        self.assertEqual(again.get(z).revision, 6)  # type: ignore[union-attr]
