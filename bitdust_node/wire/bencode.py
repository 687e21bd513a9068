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

_DIGITS = frozenset(b"0123456789")
# canonical forms only: no leading zeros, no "-0"; lengths bounded inside the pattern
_INT = re.compile(rb"i(0|-?[1-9][0-9]{0,%d})e" % (MAX_INT_DIGITS - 1))
_LENGTH = re.compile(rb"(0|[1-9][0-9]{0,7}):")


class BencodeError(ValueError):
    """Bytes that are not bencode, or exceed a bound of the decoder, or a value that cannot encode."""


def encode(value: Any) -> bytes:
    out: list[bytes] = []
    _encode(value, out, 0)
    return b"".join(out)


def _encode_key(key: Any) -> bytes:
    if isinstance(key, (str, bytes, int)) and not isinstance(key, bool):
        return encode(key)
    raise BencodeError(f"unsupported dict key type {type(key).__name__}")


def _encode(value: Any, out: list[bytes], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise BencodeError("nesting too deep")
    if value is None:
        # BitDust writes None as integer zero
        out.append(b"i0e")
    elif isinstance(value, bool):
        out.append(b"i1e" if value else b"i0e")
    elif isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise BencodeError("float must be finite")
        # positional notation: an exponent's `e` would end the token early
        out.append(b"f" + format(Decimal(repr(value)), "f").encode("ascii") + b"e")
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogateescape")
        out.append(b"%d:" % len(data) + data)
    elif isinstance(value, bytes):
        out.append(b"%d:" % len(value) + value)
    elif isinstance(value, (list, tuple)):
        out.append(b"l")
        for item in value:
            _encode(item, out, depth + 1)
        out.append(b"e")
    elif isinstance(value, dict):
        items = sorted(((_encode_key(k), v) for k, v in value.items()), key=lambda kv: kv[0])
        out.append(b"d")
        previous = None
        for key_bytes, item in items:
            if key_bytes == previous:
                raise BencodeError("two keys encode to the same bytes")
            previous = key_bytes
            out.append(key_bytes)
            _encode(item, out, depth + 1)
        out.append(b"e")
    else:
        raise BencodeError(f"cannot encode {type(value).__name__}")


def decode(data: bytes) -> Any:
    """Decode exactly one bencoded value that fills `data`."""
    if not isinstance(data, bytes):
        raise BencodeError("input must be bytes")
    decoder = _Decoder(data)
    value = decoder.value(0)
    if decoder.pos != len(data):
        raise BencodeError("trailing bytes after value")
    return value


class _Decoder:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.items = 0

    def _peek(self) -> int:
        if self.pos >= len(self.data):
            raise BencodeError("truncated input")
        return self.data[self.pos]

    def _count(self) -> None:
        self.items += 1
        if self.items > MAX_ITEMS:
            raise BencodeError("too many items")

    def value(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise BencodeError("nesting too deep")
        self._count()
        lead = self._peek()
        if lead == ord("i"):
            return self._int()
        if lead == ord("f"):
            return self._float()
        if lead in _DIGITS:
            return self._string()
        if lead == ord("l"):
            self.pos += 1
            items = []
            while self._peek() != ord("e"):
                items.append(self.value(depth + 1))
            self.pos += 1
            return items
        if lead == ord("d"):
            return self._dict(depth)
        raise BencodeError(f"unexpected byte {lead:#04x} at {self.pos}")

    def _until_e(self, limit: int) -> bytes:
        end = self.data.find(b"e", self.pos + 1, self.pos + 2 + limit)
        if end < 0:
            raise BencodeError("unterminated or oversized number")
        body = self.data[self.pos + 1 : end]
        self.pos = end + 1
        return body

    def _int(self) -> int:
        match = _INT.match(self.data, self.pos)
        if match is None:
            raise BencodeError("malformed, oversized or non-canonical integer")
        self.pos = match.end()
        return int(match.group(1))

    def _float(self) -> float:
        body = self._until_e(MAX_FLOAT_CHARS)
        if not body or not all(c in b"0123456789-." for c in body):
            raise BencodeError("malformed float")
        try:
            number = float(body)
        except ValueError as exc:
            raise BencodeError("malformed float") from exc
        if not math.isfinite(number):
            raise BencodeError("float must be finite")
        return number

    def _string(self) -> str:
        match = _LENGTH.match(self.data, self.pos)
        if match is None:
            raise BencodeError("malformed or oversized string length")
        head = match.group(1)
        colon = match.end() - 1
        length = int(head)
        if length > MAX_STRING:
            raise BencodeError("string too long")
        start = colon + 1
        if start + length > len(self.data):
            raise BencodeError("truncated string")
        self.pos = start + length
        return self.data[start : self.pos].decode("utf-8", "surrogateescape")

    def _dict(self, depth: int) -> dict[Any, Any]:
        self.pos += 1
        result: dict[Any, Any] = {}
        while self._peek() != ord("e"):
            lead = self._peek()
            if lead == ord("i"):
                key: Any = self._int()
            elif lead in _DIGITS:
                key = self._string()
            else:
                raise BencodeError("dict key must be a string or an integer")
            if key in result:
                raise BencodeError("duplicate dict key")
            result[key] = self.value(depth + 1)
        self.pos += 1
        return result
