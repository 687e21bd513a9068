"""What a hostile peer makes of a valid JSON document, for the property tests of every parser of peer input:
deep nesting, huge numbers, odd unicode, truncations and stray bytes, each put where a field's value was."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

# text as a peer may write it inside a JSON string: escaped and raw lone surrogates, NUL, direction marks,
# non-characters, astral characters, an escaped quote at the end
ODD_TEXT = st.sampled_from([
    '"\\ud800"', '"\\udfff\\ud800"', '"\\u0000"', '"\u202e\u200f"', '"\ufffe\uffff"', '"\U0001f600"',
    '"\\"', '"\\u00e9\\u0100"', '"\u0100\u20ac"', '"\ud800"', '"\\x41"', '"\\u12"',
])
HUGE_NUMBERS = st.sampled_from([
    "9" * 5000, "9" * 65, "1e999", "-1e999", "NaN", "Infinity", "-0", "1" + "0" * 400 + ".5",
    "123456789012345678901234567890", "0.1e-99999", "-", "01",
])


def nesting(depth: int) -> str:
    return "[" * depth + "]" * depth


NESTED = st.integers(1, 6000).map(nesting) | st.integers(1, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n)
VALUES = NESTED | HUGE_NUMBERS | ODD_TEXT | st.sampled_from(['""', "null", "true", "[]", "{}", '["a"]', "1.5"])


def _with_value(document: dict[str, Any], key: str, raw_value: str) -> bytes:
    """The document as compact JSON with `key`'s value written as the raw text given."""
    marker = "\x00marker\x00"
    text = json.dumps({**document, key: marker}, sort_keys=True, separators=(",", ":"))
    return text.replace(json.dumps(marker), raw_value).encode("utf-8", "surrogatepass")


@st.composite
def damaged(draw: Callable[..., Any], valid: bytes) -> bytes:
    """One damaged form of `valid` (a JSON object): a field's value replaced, the whole nested inside arrays,
    cut short, or a byte changed."""
    document = json.loads(valid)
    how = draw(st.sampled_from(["value", "value", "new key", "wrapped", "truncated", "byte"]))
    if how == "value" and document:
        return _with_value(document, draw(st.sampled_from(sorted(document))), draw(VALUES))
    if how == "new key":
        return _with_value(document, draw(st.sampled_from(["", "x", "\ud800", "p" * 300])), draw(VALUES))
    if how == "wrapped":
        depth = draw(st.integers(1, 5000))
        return b"[" * depth + valid + b"]" * depth
    if how == "byte" and valid:
        at = draw(st.integers(0, len(valid) - 1))
        return valid[:at] + bytes([draw(st.integers(0, 255))]) + valid[at + 1 :]
    return valid[: draw(st.integers(0, max(0, len(valid) - 1)))]


def assert_only(testcase: Any, parse: Callable[[bytes], object], errors: type[Exception] | tuple[type[Exception], ...],
                data: bytes) -> object:
    """Whatever `parse` makes of `data`, raising nothing but `errors` (so no traceback can follow it)."""
    try:
        return parse(data)
    except errors as err:
        testcase.assertTrue(str(err))  # a clear message, not an empty one
        return err
