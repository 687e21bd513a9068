"""unfilled: a bytearray of the size asked, writable whole, never shared with another."""

from __future__ import annotations

from twisted.trial import unittest

from bitdust_node.wire.buffers import unfilled


class UnfilledTests(unittest.TestCase):
    def test_it_is_a_bytearray_of_the_size_asked_that_takes_every_byte(self) -> None:
        for size in (0, 1, 4095, 2 * 1024 * 1024 + 3):
            made = unfilled(size)
            self.assertIs(type(made), bytearray)
            self.assertEqual(len(made), size)
            made[:] = b"\x5a" * size
            self.assertEqual(made.count(0x5A), size)

    def test_each_is_its_own_memory(self) -> None:
        one, two = unfilled(64), unfilled(64)
        one[:] = bytes(64)
        two[:] = b"\xff" * 64
        self.assertEqual(one, bytes(64))

    def test_a_negative_size_or_one_ctypes_would_cut_is_refused(self) -> None:
        self.assertRaises(ValueError, unfilled, -1)
        self.assertRaises(ValueError, unfilled, 2**64 + 3)
