"""Bencode as BitDust's DHT speaks it: floats as `f<decimal>e`, None as `i0e`, keys sorted by
their encoded bytes. Pure functions; the decoder is bounded and raises only BencodeError.

Strings decode to `str` (UTF-8 with surrogateescape, so any byte string survives a round trip);
`str` and `bytes` both encode to a bencode string.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

# Bounds of the decoder: a datagram message is at most a few hundred KiB.
MAX_DEPTH = 32
MAX_STRING = 1 << 20
MAX_INT_DIGITS = 64
MAX_FLOAT_CHARS = 400
MAX_ITEMS = 100_000

# canonical forms only: no leading zeros, no "-0"; lengths bounded inside the pattern
_INT = re.compile(rb"i(0|-?[1-9][0-9]{0,%d})e" % (MAX_INT_DIGITS - 1))
_FLOAT = re.compile(rb"f(-?[0-9.]{1,%d})e" % MAX_FLOAT_CHARS)


class BencodeError(ValueError):
    """Bytes that are not bencode, or exceed a bound of the decoder, or a value that cannot encode."""


def encode(value: Any) -> bytes:
    out: list[bytes] = []
    _encode(value, out, 0)
    return b"".join(out)


def _text(value: str) -> bytes:
    data = value.encode("utf-8", "surrogateescape")
    return b"%d:%b" % (len(data), data)


def _first(pair: tuple[bytes, Any]) -> bytes:
    return pair[0]


def _encode_key(key: Any) -> bytes:
    kind = type(key)
    if kind is str:
        return _text(key)
    if kind is int:
        return b"i%de" % key
    if kind is bytes:
        return b"%d:%b" % (len(key), key)
    raise BencodeError(f"unsupported dict key type {kind.__name__}")


def _encode(value: Any, out: list[bytes], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise BencodeError("nesting too deep")
    kind = type(value)
    if kind is str:
        out.append(_text(value))
    elif kind is int:
        out.append(b"i%de" % value)
    elif kind is dict:
        items = sorted(((_encode_key(k), v) for k, v in value.items()), key=_first)
        out.append(b"d")
        previous = None
        for key_bytes, item in items:
            if key_bytes == previous:
                raise BencodeError("two keys encode to the same bytes")
            previous = key_bytes
            out.append(key_bytes)
            _encode(item, out, depth + 1)
        out.append(b"e")
    elif kind is list or kind is tuple:
        out.append(b"l")
        for item in value:
            _encode(item, out, depth + 1)
        out.append(b"e")
    elif value is None:
        # BitDust writes None as integer zero
        out.append(b"i0e")
    elif kind is bool:
        out.append(b"i1e" if value else b"i0e")
    elif kind is float:
        if not math.isfinite(value):
            raise BencodeError("float must be finite")
        # positional notation: an exponent's `e` would end the token early
        out.append(b"f" + format(Decimal(repr(value)), "f").encode("ascii") + b"e")
    elif kind is bytes:
        out.append(b"%d:%b" % (len(value), value))
    else:
        _encode_subclass(value, out, depth)


def _encode_subclass(value: Any, out: list[bytes], depth: int) -> None:
    """Subclasses (IntEnum, OrderedDict...) encode as their base type."""
    base: Any
    for base in (int, float, str, bytes, dict):
        if isinstance(value, base):
            _encode(base(value), out, depth)
            return
    if isinstance(value, (list, tuple)):
        _encode(list(value), out, depth)
        return
    raise BencodeError(f"cannot encode {type(value).__name__}")


def decode(data: bytes) -> Any:
    """Decode exactly one bencoded value that fills `data`."""
    if not isinstance(data, bytes):
        raise BencodeError("input must be bytes")
    counter = [MAX_ITEMS]
    try:
        value, end = _decode(data, 0, 0, counter)
    except IndexError:
        raise BencodeError("truncated input") from None
    if end != len(data):
        raise BencodeError("trailing bytes after value")
    return value


_I, _F, _L, _D, _E = b"iflde"


def _decode(data: bytes, pos: int, depth: int, counter: list[int]) -> tuple[Any, int]:
    """One value starting at `pos`: (value, position after it). IndexError means truncated."""
    if depth > MAX_DEPTH:
        raise BencodeError("nesting too deep")
    counter[0] -= 1
    if counter[0] < 0:
        raise BencodeError("too many items")
    lead = data[pos]
    if 0x30 <= lead <= 0x39:
        return _string(data, pos)
    if lead == _I:
        return _integer(data, pos, "malformed, oversized or non-canonical integer")
    if lead == _L:
        pos += 1
        items: list[Any] = []
        while data[pos] != _E:
            item, pos = _decode(data, pos, depth + 1, counter)
            items.append(item)
        return items, pos + 1
    if lead == _D:
        pos += 1
        result: dict[Any, Any] = {}
        key: str | int
        while data[pos] != _E:
            lead = data[pos]
            if 0x30 <= lead <= 0x39:
                key, pos = _string(data, pos)
            elif lead == _I:
                key, pos = _integer(data, pos, "malformed dict key")
            else:
                raise BencodeError("dict key must be a string or an integer")
            if key in result:
                raise BencodeError("duplicate dict key")
            result[key], pos = _decode(data, pos, depth + 1, counter)
        return result, pos + 1
    if lead == _F:
        return _float(data, pos)
    raise BencodeError(f"unexpected byte {lead:#04x} at {pos}")


def _integer(data: bytes, pos: int, problem: str) -> tuple[int, int]:
    match = _INT.match(data, pos)
    if match is None:
        raise BencodeError(problem)
    return int(match.group(1)), match.end()


# a string length has at most 8 digits (MAX_STRING has 7), then the colon
_LENGTH_SPAN = 9


def _string(data: bytes, pos: int) -> tuple[str, int]:
    colon = data.find(b":", pos, pos + _LENGTH_SPAN)
    digits = data[pos:colon]
    # ASCII digits only (int() would take "+", "_" and spaces), no leading zero but in "0"
    if colon < 0 or not digits.isdigit() or (digits[0] == 0x30 and len(digits) > 1):
        raise BencodeError("malformed or oversized string length")
    length = int(digits)
    if length > MAX_STRING:
        raise BencodeError("string too long")
    start = colon + 1
    end = start + length
    if end > len(data):
        raise BencodeError("truncated string")
    return data[start:end].decode("utf-8", "surrogateescape"), end


def _float(data: bytes, pos: int) -> tuple[float, int]:
    match = _FLOAT.match(data, pos)
    if match is None:
        raise BencodeError("malformed or oversized float")
    try:
        number = float(match.group(1))
    except ValueError as exc:
        raise BencodeError("malformed float") from exc
    if not math.isfinite(number):
        raise BencodeError("float must be finite")
    return number, match.end()
