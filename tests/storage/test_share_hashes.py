"""Share hashes packed as bytes behave as the list of text they stand for, whatever text they are given."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from bitdust_node.storage.share_hashes import ShareHashes

_digests = st.binary(min_size=32, max_size=32)
_hashes = st.one_of(_digests.map(lambda d: "b3:" + d.hex()), _digests.map(bytes.hex), st.just(""),
                    _digests.map(lambda d: "b3:" + d.hex().upper()), st.text(max_size=70))
_rows = st.lists(_hashes, max_size=6)


class ShareHashesTests(unittest.TestCase):
    @settings(max_examples=300, deadline=None)
    @given(_rows)
    def test_every_row_reads_back_as_given(self, row: list[str]) -> None:
        hashes = ShareHashes(row)
        self.assertEqual(list(hashes), row)
        self.assertEqual(len(hashes), len(row))
        self.assertEqual(hashes, row)
        self.assertEqual([hashes[i] for i in range(-len(row), len(row))], row + row if row else [])

    @settings(max_examples=300, deadline=None)
    @given(_rows, _rows)
    def test_two_rows_have_one_key_when_equal_and_only_then(self, one: list[str], other: list[str]) -> None:
        self.assertEqual(ShareHashes(one).key() == ShareHashes(other).key(), one == other)
        self.assertEqual(ShareHashes(one) == ShareHashes(other), one == other)

    @settings(max_examples=300, deadline=None)
    @given(_rows, st.data())
    def test_changes_do_what_they_do_to_a_list(self, row: list[str], data: st.DataObject) -> None:
        hashes, mirror = ShareHashes(row), list(row)
        for _ in range(4):
            action = data.draw(st.sampled_from(["set", "del", "insert"]))
            if action == "insert":
                at, value = data.draw(st.integers(-8, 8)), data.draw(_hashes)
                hashes.insert(at, value)
                mirror.insert(at, value)
            elif mirror:
                at = data.draw(st.integers(-len(mirror), len(mirror) - 1))
                if action == "set":
                    value = data.draw(_hashes)
                    hashes[at] = value
                    mirror[at] = value
                else:
                    del hashes[at]
                    del mirror[at]
            self.assertEqual(list(hashes), mirror)
            self.assertEqual(hashes.key(), ShareHashes(mirror).key())

    def test_a_position_out_of_range_is_an_index_error_and_changes_nothing(self) -> None:
        hashes = ShareHashes(["b3:" + "ab" * 32])
        self.assertRaises(IndexError, hashes.__getitem__, 1)
        self.assertRaises(IndexError, hashes.__setitem__, 1, "")
        self.assertEqual(list(hashes), ["b3:" + "ab" * 32])

    def test_the_hashes_the_node_writes_are_a_kind_byte_and_a_digest_each(self) -> None:
        row = ["b3:" + os.urandom(32).hex(), os.urandom(32).hex(), "", "b3:" + os.urandom(32).hex()]
        key = ShareHashes(row).key()
        self.assertIsInstance(key, bytes)
        self.assertEqual(len(key), 4 * 33)
        # anything else (upper case reads back upper case) is kept as the text it is
        odd = ShareHashes(["b3:" + "AB" * 32, row[0]])
        self.assertEqual(odd.key(), ("b3:" + "AB" * 32, row[0]))
        odd[0] = row[1]  # made of hashes the node writes again: packed again
        self.assertEqual(odd.key(), ShareHashes([row[1], row[0]]).key())
        self.assertIsInstance(odd.key(), bytes)
