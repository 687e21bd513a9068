"""The one way JSON that a peer sent is read: size- and depth-bounded, strict, and with one error.

Every way such text can fail (over its cap, nested past its bound, not UTF-8, truncated, numbers longer
than any field needs, NaN and Infinity, lone UTF-16 surrogates, anything the decoder refuses, the
decoder's own recursion) raises PeerJsonError, which each parser maps to its protocol's malformed
error. The nesting is measured before the decoder runs, so no input can make it recurse deep.
Pure: imports nothing of the node.
"""

from __future__ import annotations

import json
import re
from typing import Any

# containers inside containers: `[]` is 1, `{"a": [1]}` is 2; the protocol's own documents need 1 or 2
MAX_DEPTH = 32
# the longest number any field needs (sizes, times, counts); longer digit runs are refused, not converted
MAX_NUMBER_CHARS = 64


class PeerJsonError(ValueError):
    """Text from a peer that is not JSON within the bounds asked for."""


# a JSON string, escapes and all (unrolled: one character class at a time, no alternation per character)
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# what is left of JSON without its strings, as brackets only and all of one kind: a pair is `[]`
_TO_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
# the escape of a UTF-16 surrogate: a lone one decodes to text that cannot be encoded again
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def loads(data: bytes | str, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """The value of `data` (UTF-8 bytes, or text counted in characters), or PeerJsonError."""
    if len(data) > max_bytes:
        raise PeerJsonError(f"JSON of {len(data)} bytes is over the cap of {max_bytes}")
    if isinstance(data, str):
        text, data = data, _utf8(data)
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise PeerJsonError(f"JSON is not UTF-8: {err.reason} at byte {err.start}") from None
    if depth_over(data, max_depth):
        raise PeerJsonError(f"JSON nested deeper than {max_depth}, or its brackets do not pair")
    try:
        value = json.loads(text, parse_int=_integer, parse_float=_float, parse_constant=_constant)
    except PeerJsonError:
        raise
    except (ValueError, RecursionError) as err:
        raise PeerJsonError(f"not JSON: {str(err)[:200]}") from None
    if _SURROGATE_ESCAPE.search(text) is not None and not _encodable(value):
        raise PeerJsonError("JSON text holds a lone UTF-16 surrogate")
    return value


def depth_over(data: bytes, max_depth: int) -> bool:
    """Whether containers in `data` nest deeper than `max_depth` (or its brackets do not pair up).

    Counting brackets is enough almost always; else strings are cut out and innermost pairs removed, a
    level a pass, at most `max_depth` passes: the work is bounded by the depth allowed, not the input.
    """
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return False
    skeleton = _STRING.sub(b"", data).translate(_TO_SQUARE, _NOT_BRACKET)
    if b"[" * (max_depth + 1) in skeleton:
        return True  # a run of openers is that deep already
    for _ in range(max_depth):
        if not skeleton:
            return False
        shorter = skeleton.replace(b"[]", b"")
        if len(shorter) == len(skeleton):
            return True  # brackets that do not pair up: not JSON anyway
        skeleton = shorter
    return bool(skeleton)


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise PeerJsonError("JSON text holds a lone UTF-16 surrogate") from None


def _integer(digits: str) -> int:
    if len(digits) > MAX_NUMBER_CHARS:
        raise PeerJsonError(f"a number of {len(digits)} digits")
    return int(digits)


def _float(digits: str) -> float:
    if len(digits) > MAX_NUMBER_CHARS:
        raise PeerJsonError(f"a number of {len(digits)} characters")
    value = float(digits)
    if value in (float("inf"), float("-inf")):
        raise PeerJsonError(f"number {digits[:40]} is out of range")
    return value


def _constant(name: str) -> Any:
    raise PeerJsonError(f"{name} is not a JSON number")


def _encodable(value: Any) -> bool:
    """Every text in `value` (keys too) encodes to UTF-8; walked without recursion (its depth is bounded)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return False
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True
