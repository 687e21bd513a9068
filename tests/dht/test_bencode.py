"""The bencode codec: PROTOCOL.md rules, bounds, and hypothesis properties."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from bitdust_node.wire import bencode
from bitdust_node.wire.bencode import BencodeError, decode, encode

_keys = st.one_of(st.text(max_size=12), st.integers(-(10**6), 10**6))
_scalars = st.one_of(
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(_keys, inner, max_size=5)),
    max_leaves=30,
)


class RulesTests(unittest.TestCase):
    def test_scalars(self) -> None:
        self.assertEqual(encode(42), b"i42e")
        self.assertEqual(encode(-3), b"i-3e")
        self.assertEqual(encode("spam"), b"4:spam")
        self.assertEqual(encode(b"\x00\xff"), b"2:\x00\xff")
        self.assertEqual(encode([1, "a"]), b"li1e1:ae")

    def test_none_is_integer_zero(self) -> None:
        self.assertEqual(encode(None), b"i0e")
        self.assertEqual(decode(encode([None])), [0])

    def test_float_is_decimal_without_exponent(self) -> None:
        self.assertEqual(encode(1.5), b"f1.5e")
        self.assertEqual(encode(-0.25), b"f-0.25e")
        self.assertEqual(decode(b"f1.5e"), 1.5)
        big = encode(1e20)
        self.assertNotIn(b"+", big)
        self.assertEqual(decode(big), 1e20)
        self.assertEqual(decode(encode(5e-324)), 5e-324)

    def test_keys_sorted_by_encoded_bytes(self) -> None:
        # "13:expireSeconds" < "19:originallyPublished" < "40:82fa..." as in vector 16
        value = {
            "82faa3d9e9a2f81eed38c4c3f8b391b67810d27d": "v",
            "expireSeconds": 1,
            "originallyPublished": 2,
        }
        self.assertEqual(
            encode(value),
            b"d13:expireSecondsi1e19:originallyPublishedi2e40:82faa3d9e9a2f81eed38c4c3f8b391b67810d27d1:ve",
        )

    def test_mixed_dict_keeps_string_keys_first(self) -> None:
        self.assertEqual(encode({0: 0, "stun_port": 8882}), b"d9:stun_porti8882ei0ei0ee")
        self.assertEqual(decode(b"d9:stun_porti8882ei0ei0ee"), {"stun_port": 8882, 0: 0})

    def test_integer_keys(self) -> None:
        self.assertEqual(encode({5: 0, 0: 1, 3: "x"}), b"di0ei1ei3e1:xi5ei0ee")

    def test_unencodable(self) -> None:
        self.assertRaises(BencodeError, encode, {1.5: 1})
        self.assertRaises(BencodeError, encode, object())
        self.assertRaises(BencodeError, encode, float("nan"))
        self.assertRaises(BencodeError, encode, {"a": 1, b"a": 2})


class BoundsTests(unittest.TestCase):
    def test_rejects_malformed(self) -> None:
        for bad in [
            b"",
            b"i",
            b"ie",
            b"i-e",
            b"i01e",
            b"i-0e",
            b"5:abc",
            b"l",
            b"d1:ae",
            b"di1.5ei1ee",
            b"x",
            b"i1ei2e",
            b"f1e5e",
            b"fnane",
            b"fe",
            b"d1:ai1e1:ai2ee",
            b"01:a",
            b"lf1.0.0ee",
        ]:
            with self.subTest(bad=bad):
                self.assertRaises(BencodeError, decode, bad)

    def test_deep_nesting_refused(self) -> None:
        bomb = b"l" * 100000 + b"e" * 100000
        self.assertRaises(BencodeError, decode, bomb)
        ok = b"l" * bencode.MAX_DEPTH + b"e" * bencode.MAX_DEPTH
        self.assertIsInstance(decode(ok), list)

    def test_huge_lengths_refused(self) -> None:
        self.assertRaises(BencodeError, decode, b"999999999999:x")
        self.assertRaises(BencodeError, decode, b"%d:x" % (bencode.MAX_STRING + 1))
        self.assertRaises(BencodeError, decode, b"i" + b"9" * 1000 + b"e")

    def test_too_many_items_refused(self) -> None:
        self.assertRaises(BencodeError, decode, b"l" + b"i1e" * (bencode.MAX_ITEMS + 1) + b"e")


class PropertyTests(unittest.TestCase):
    @settings(max_examples=300, deadline=None)
    @given(values)
    def test_roundtrip(self, value: object) -> None:
        self.assertEqual(decode(encode(value)), value)

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=200))
    def test_arbitrary_bytes_raise_only_codec_error(self, data: bytes) -> None:
        try:
            decode(data)
        except BencodeError:
            pass

    @settings(max_examples=200, deadline=None)
    @given(values, st.data())
    def test_mutated_encodings_raise_only_codec_error(self, value: object, data: st.DataObject) -> None:
        raw = bytearray(encode(value))
        index = data.draw(st.integers(0, len(raw) - 1))
        raw[index] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(raw)))
        try:
            decode(bytes(raw[:cut]))
        except BencodeError:
            pass
