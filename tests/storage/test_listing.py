"""The Files text as official suppliers send it (the captured listings of bob and carol) and as ours does, read
into what each supplier holds; listings that are not one refused with a clear error."""

from __future__ import annotations

import zlib

from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.crypto import block as blocks
from bitdust_node.storage.listing import MAX_LISTING_BYTES, HeldVersion, ListingError, read_listing
from tests.storage.support import me
from tests.storage.test_capture_replay import captured


class ListingTests(SynchronousTestCase):
    def official(self) -> list[bytes]:
        key = me("dave").key
        found = []
        for packet in captured("carol", "dave") + captured("bob", "dave"):
            if packet.command == "Files":
                found.append(blocks.open_block(blocks.parse_block(packet.payload), key))
        return found

    def test_every_captured_official_listing_is_read(self) -> None:
        listings = [read_listing(text) for text in self.official()]
        self.assertEqual(len(listings), 10)
        self.assertEqual(listings[0].versions, {})  # nothing stored yet: an empty text
        self.assertFalse(listings[0].index)
        last = listings[4]  # carol: `V3/F20261201075109PM 0 0-2 79604 missing Data:2 Parity:1`
        self.assertTrue(last.index)
        self.assertEqual(last.versions["3/F20261201075109PM"], HeldVersion(2, frozenset({2})))
        self.assertEqual(last.versions["7/F20261201075106PM"], HeldVersion(0, frozenset()))
        self.assertTrue(last.has("3/F20261201075109PM", 1))
        self.assertFalse(last.has("3/F20261201075109PM", 2))
        self.assertFalse(last.has("3/F20261201075109PM", 3))  # past the last block listed
        self.assertFalse(last.has("9/F20261201075109PM", 0))
        bob = listings[9]  # `missing Parity:1,2`: every Data piece is there
        self.assertEqual(bob.versions["3/F20261201075109PM"], HeldVersion(2, frozenset()))

    def test_what_is_not_a_listing_is_refused(self) -> None:
        for bad in (b"not zlib", zlib.compress(b"\xff\xfe"), zlib.compress(b"V3/F1 0 2 10\n"),
                    zlib.compress(b"V3/F1 0 0-x 10\n"), zlib.compress(b"V3/F1 0 0-2 10 gone Data:1\n"),
                    zlib.compress(b"V3/F1 0 0-2 10 missing Data:a\n"),
                    zlib.compress(b" " * (MAX_LISTING_BYTES + 1))):
            with self.assertRaises(ListingError):
                read_listing(bad)
