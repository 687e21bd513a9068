"""Disk-space sizes as users write them: `50 GB`, `512 MB`, `1.5TB`, `1000000` (bytes)."""

from __future__ import annotations

import re

# BitDust counts sizes in powers of 1024
UNITS = {"bytes": 1, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}
_CANONICAL = {"bytes": "bytes", "b": "bytes", "kb": "KB", "mb": "MB", "gb": "GB", "tb": "TB"}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


class BadSize(ValueError):
    pass


def parse_size(text: str) -> tuple[float, str]:
    """Return (number, canonical unit) or raise BadSize."""
    match = _SIZE.match(str(text))
    if not match:
        raise BadSize(f"not a size: {text!r}")
    number, unit = float(match.group(1)), match.group(2).lower() or "bytes"
    if unit not in UNITS:
        raise BadSize(f"unknown unit {match.group(2)!r}")
    if unit in ("bytes", "b") and number != int(number):
        raise BadSize("a number of bytes must be whole")
    return number, _CANONICAL[unit]


def normalize_size(text: str) -> str:
    """`1.5TB` -> `1.5 TB`, `1000000` -> `1000000 bytes`."""
    number, unit = parse_size(text)
    shown = str(int(number)) if number == int(number) else repr(number)
    return f"{shown} {unit}"


def size_to_bytes(text: str) -> int:
    number, unit = parse_size(text)
    return int(number * UNITS[unit.lower()])
