"""Erasure coding: the shares zfec's easyfec makes, any k of n rebuild the block, wrong shares are set aside."""

from __future__ import annotations

import hashlib
import itertools
import os

import zfec
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest
from zfec import easyfec

from bitdust_node.storage import erasure, isal_parity


class EncodeTest(unittest.TestCase):
    @settings(max_examples=60, deadline=None)
    @given(st.binary(min_size=0, max_size=3000), st.integers(min_value=2, max_value=9))
    def test_same_shares_as_easyfec(self, data: bytes, n: int) -> None:
        ours = [bytes(share) for share in erasure.encode(data, n)]
        self.assertEqual(ours, [bytes(share) for share in easyfec.Encoder(erasure.needed(n), n).encode(data)])

    def test_any_k_shares_rebuild(self) -> None:
        for n, size in ((2, 1), (3, 1000), (4, 4 * 1024 * 1024 + 16), (5, 77_777), (13, 100_003)):
            data = os.urandom(size)
            shares = erasure.encode(data, n)
            hashes = [erasure.share_hash(s) for s in shares]
            k = erasure.needed(n)
            picks = list(itertools.combinations(range(n), k))[:20]
            for chosen in picks:
                rebuilt = erasure.decode({i: bytes(shares[i]) for i in chosen}, hashes, size)
                self.assertEqual(rebuilt, data, f"n={n} size={size} shares {chosen}")

    def test_shares_are_half_the_block_each_for_four(self) -> None:
        shares = erasure.encode(b"x" * 4_000_001, 4)
        self.assertEqual({len(s) for s in shares}, {2_000_001})

    def test_a_changed_share_is_set_aside(self) -> None:
        data = os.urandom(10_000)
        shares = [bytes(s) for s in erasure.encode(data, 4)]
        hashes = [erasure.share_hash(s) for s in shares]
        flipped = bytes([shares[0][0] ^ 1]) + shares[0][1:]
        self.assertEqual(erasure.decode({0: flipped, 1: shares[1], 3: shares[3]}, hashes, len(data)), data)
        with self.assertRaises(erasure.NotEnoughShares):
            erasure.decode({0: flipped, 1: shares[1]}, hashes, len(data))

    def test_share_hashes_are_blake3_marked_as_such(self) -> None:
        # the BLAKE3 team's vector for "abc" (github.com/BLAKE3-team/BLAKE3, test_vectors)
        self.assertEqual(erasure.share_hash(b"abc"),
                         "b3:6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85")
        self.assertEqual(erasure.share_hash(memoryview(b"xabc")[1:]), erasure.share_hash(b"abc"))

    def test_a_share_is_hashed_in_the_scheme_of_the_catalogs_hash(self) -> None:
        share = os.urandom(5000)
        digest = erasure.share_hash(share)
        self.assertEqual(erasure.share_hash(share, like=digest), digest)
        older = hashlib.sha256(share).hexdigest()  # what a catalog written before BLAKE3 holds
        self.assertEqual(erasure.share_hash(share, like=older), older)
        self.assertNotEqual(erasure.share_hash(share + b"x", like=older), older)
        # a BLAKE3 named is never met by a SHA-256 that a supplier could steer
        self.assertNotEqual(erasure.share_hash(share, like=digest), "b3:" + older)

    def test_shares_hashed_with_sha256_decode(self) -> None:
        data = os.urandom(10_000)
        shares = [bytes(s) for s in erasure.encode(data, 4)]
        hashes = [hashlib.sha256(s).hexdigest() for s in shares]
        flipped = bytes([shares[0][0] ^ 1]) + shares[0][1:]
        self.assertEqual(erasure.decode({0: flipped, 1: shares[1], 3: shares[3]}, hashes, len(data)), data)
        with self.assertRaises(erasure.NotEnoughShares):
            erasure.decode({0: flipped, 1: shares[1]}, hashes, len(data))

    def test_one_share_is_the_block(self) -> None:
        self.assertEqual(erasure.encode(b"abc", 1), [b"abc"])

    def test_share_count_bounds(self) -> None:
        self.assertRaises(ValueError, erasure.encode, b"x", 0)
        self.assertRaises(ValueError, erasure.encode, b"x", erasure.MAX_SHARES + 1)


class IsalParityTests(unittest.TestCase):
    """ISA-L makes the parity zfec makes, byte for byte, whatever the shares and their size; without it zfec
    does."""

    def setUp(self) -> None:
        if not isal_parity.available():
            raise unittest.SkipTest("ISA-L (Debian's libisal2) is not installed: zfec makes the parity")

    @settings(max_examples=80, deadline=None)
    @given(st.integers(min_value=2, max_value=erasure.MAX_SHARES), st.integers(min_value=0, max_value=70_000))
    def test_the_same_parity_as_zfec(self, n: int, size: int) -> None:
        k = erasure.needed(n)
        data = os.urandom(size)
        primary = erasure.data_shares(data, n)
        expected = [bytes(s) for s in zfec.Encoder(k, n).encode(primary, list(range(k, n)))]
        self.assertEqual([bytes(s) for s in isal_parity.parity(primary, n)], expected)

    def test_shares_of_any_layout_a_block_of_megabytes_and_a_padded_last_share(self) -> None:
        block = os.urandom(4 * 1024 * 1024 + 17)  # the last data share padded: a copy, the others views
        for n in (4, 5, 13):
            primary = erasure.data_shares(block, n)
            k = len(primary)
            self.assertEqual([bytes(s) for s in isal_parity.parity(primary, n)],
                             [bytes(s) for s in zfec.Encoder(k, n).encode(primary, list(range(k, n)))])
        shares = erasure.encode(block, 4)
        hashes = [erasure.share_hash(s) for s in shares]
        # from the parity alone: zfec's decoder reads ISA-L's shares
        self.assertEqual(erasure.decode({2: bytes(shares[2]), 3: bytes(shares[3])}, hashes, len(block)), block)

    def test_shares_of_different_sizes_or_not_one_run_of_bytes_are_refused(self) -> None:
        with self.assertRaises(ValueError):
            isal_parity.parity([b"abcd", b"abc"], 4)
        with self.assertRaises(BufferError):
            isal_parity.parity([memoryview(b"abcdefgh")[::2], b"abcd"], 4)

    def test_shares_over_what_isal_takes_go_to_zfec(self) -> None:
        self.assertFalse(isal_parity.available(isal_parity.MAX_SHARE + 1))
        self.assertTrue(isal_parity.available(isal_parity.MAX_SHARE))

    def test_without_the_library_zfec_makes_the_same_shares(self) -> None:
        block = os.urandom(100_003)
        with_isal = [bytes(s) for s in erasure.encode(block, 5)]
        self.patch(isal_parity, "available", lambda share_size=0: False)
        self.assertEqual([bytes(s) for s in erasure.encode(block, 5)], with_isal)
