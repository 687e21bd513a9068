"""The one reader of peer JSON: the value json.loads gives for whatever is within its bounds, and only
PeerJsonError for anything else (deep nesting, huge numbers, odd unicode, truncations, any bytes)."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.wire import peer_json

# JSON values as a peer may send them: any unicode (surrogates too), long and huge numbers
scalars = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10**80), max_value=10**80)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)


def depth(value: Any) -> int:
    """How deep containers nest in a value: the reference for the reader's bound."""
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


def numbers_fit(value: Any) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, (int, float)):
        return len(json.dumps(value)) <= peer_json.MAX_NUMBER_CHARS
    items = value.values() if isinstance(value, dict) else value
    return all(numbers_fit(v) for v in items)


def outcome(data: bytes | str, max_bytes: int = 1 << 20, max_depth: int = peer_json.MAX_DEPTH) -> object:
    """The value, or the one error; anything else raised fails the test."""
    try:
        return peer_json.loads(data, max_bytes, max_depth)
    except peer_json.PeerJsonError:
        return peer_json.PeerJsonError


def same(a: object, b: object) -> bool:
    """Equal, with -0.0 and 0.0 told apart as JSON text does."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


class ReaderTests(SynchronousTestCase):
    @settings(max_examples=400, deadline=None)
    @given(values, st.integers(0, 6))
    def test_a_value_within_the_bounds_reads_as_json_loads_reads_it(self, value: Any, max_depth: int) -> None:
        text = json.dumps(value, ensure_ascii=False)
        try:
            encoded = text.encode("utf-8")
        except UnicodeEncodeError:
            self.assertIs(outcome(json.dumps(value).encode(), max_depth=max_depth), peer_json.PeerJsonError)
            return  # a lone surrogate: only written escaped, and refused so
        fits = depth(value) <= max_depth and numbers_fit(value)
        for data in (encoded, json.dumps(value).encode(), text):
            found = outcome(data, max_depth=max_depth)
            if fits:
                self.assertTrue(same(found, json.loads(text)), (data, found))
            else:
                self.assertIs(found, peer_json.PeerJsonError)

    @settings(max_examples=300, deadline=None)
    @given(values, st.data())
    def test_every_truncation_is_the_value_of_its_text_or_the_error(self, value: Any, data: st.DataObject) -> None:
        whole = json.dumps(value).encode()
        cut = data.draw(st.integers(0, len(whole)))
        found = outcome(whole[:cut])
        try:
            expected = json.loads(whole[:cut])
        except ValueError:
            self.assertIs(found, peer_json.PeerJsonError)
            return
        if found is not peer_json.PeerJsonError:
            self.assertTrue(same(found, expected))

    @settings(max_examples=500, deadline=None)
    @given(st.binary(max_size=300) | st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")))
    def test_any_bytes_give_a_value_or_the_one_error(self, data: bytes) -> None:
        outcome(data, max_depth=3)

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet='[]{}",:\\ 0a', max_size=80), st.integers(0, 5))
    def test_the_depth_bound_is_exact_on_bracket_soup(self, text: str, max_depth: int) -> None:
        found = outcome(text.encode(), max_depth=max_depth)
        try:
            expected = json.loads(text)
        except ValueError:
            self.assertIs(found, peer_json.PeerJsonError)
            return
        if depth(expected) <= max_depth:
            self.assertEqual(found, expected)
        else:
            self.assertIs(found, peer_json.PeerJsonError)

    def test_the_attacks_of_the_issue_give_the_error(self) -> None:
        attacks: list[bytes | str] = [
            b"[" * 5000,  # the 5 KB file of `[` that made the decoder recurse
            b"[" * 100_000 + b"]" * 100_000,
            b'{"a":' * 3000 + b"1" + b"}" * 3000,
            b"9" * 5000,  # past the interpreter's own limit of digits
            b"1" * (peer_json.MAX_NUMBER_CHARS + 1),
            b"1e999", b"-1e999", b"NaN", b"Infinity", b"-Infinity", b"[1.5e99999]",
            b'"\\ud800"', b'{"\\udfff": 1}', '"\ud800"',  # lone surrogates, escaped, raw in text
            b'"\xed\xa0\x80"', b"\xff\xfe[\x00]\x00", b"\xef\xbb\xbf[]",  # UTF-8 surrogate, UTF-16, a BOM
            b"", b" ", b'{"a"', b'["abc', b"[1,]", b"{'a': 1}", b"[] []",
        ]
        for data in attacks:
            with self.subTest(data=data[:30]):
                self.assertIs(outcome(data), peer_json.PeerJsonError)

    def test_the_size_cap_is_checked_before_anything_else(self) -> None:
        with self.assertRaises(peer_json.PeerJsonError) as caught:
            peer_json.loads(b"[" * 2000, max_bytes=1000)
        self.assertIn("over the cap", str(caught.exception))

    def test_brackets_inside_strings_are_not_nesting(self) -> None:
        self.assertEqual(peer_json.loads(b'{"p": "[[[[{{{{\\"]]]"}', 100, max_depth=1), {"p": '[[[[{{{{"]]]'})

    def test_numbers_and_pairs_of_surrogates_that_fit_are_read(self) -> None:
        self.assertEqual(peer_json.loads(b'[12, -0.5, 1e300, "\\ud83d\\ude00"]', 100), [12, -0.5, 1e300, "\U0001f600"])
        self.assertTrue(math.isfinite(peer_json.loads(b"1.7976931348623157e308", 100)))
