"""The typed JSON of private message bodies (PROTOCOL-P2P.md section 6): every value of a dict becomes
`[key type, value type, value]` with types s text, b bytes, i int, f float, n None, d dict, l list,
t tuple; list items are `{"i": [...]}` dicts. Dumped as compact JSON with sorted keys."""

from __future__ import annotations

import json
from typing import Any

from bitdust_node.wire import peer_json


class TypedJsonError(ValueError):
    """A body that is not typed JSON."""


MAX_DEPTH = 32
# the JSON of a body nests up to three levels a typed level (a list: [type, type, [{"i": [type, value]}]])
MAX_JSON_DEPTH = 3 * (MAX_DEPTH + 2)
# a private message's payload is at most 256 KiB (messages/message.py): its body is smaller
MAX_BYTES = 256 * 1024


def _type_of(value: Any) -> str:
    if value is None:
        return "n"
    if isinstance(value, bool):
        raise TypedJsonError("booleans have no type letter in typed JSON")
    for kind, letter in ((str, "s"), (bytes, "b"), (int, "i"), (float, "f"), (dict, "d"), (list, "l"), (tuple, "t")):
        if isinstance(value, kind):
            return letter
    raise TypedJsonError(f"cannot pack a {type(value).__name__}")


def _pack_value(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise TypedJsonError("typed JSON nested too deep")
    kind = _type_of(value)
    if kind == "b":
        return value.decode("utf-8")
    if kind == "d":
        return pack_dict(value, depth + 1)
    if kind in "lt":
        return [{"i": [_type_of(item), _pack_value(item, depth + 1)]} for item in value]
    return value


def pack_dict(data: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise TypedJsonError("keys must be text")
        out[key] = ["s", _type_of(value), _pack_value(value, depth)]
    return out


def _unpack_value(kind: str, value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise TypedJsonError("typed JSON nested too deep")
    if kind == "n":
        return None
    if kind == "s" and isinstance(value, str):
        return value
    if kind == "b" and isinstance(value, str):
        return value.encode("utf-8")
    if kind == "i" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "f" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind == "d" and isinstance(value, dict):
        return unpack_dict(value, depth + 1)
    if kind in ("l", "t") and isinstance(value, list):
        items = []
        for item in value:
            if not isinstance(item, dict) or not isinstance(item.get("i"), list) or len(item["i"]) != 2:
                raise TypedJsonError("list items must be {\"i\": [type, value]}")
            items.append(_unpack_value(str(item["i"][0]), item["i"][1], depth + 1))
        return items if kind == "l" else tuple(items)
    raise TypedJsonError(f"value of type {kind!r} does not fit")


def unpack_dict(packed: Any, depth: int = 0) -> dict[str, Any]:
    if not isinstance(packed, dict):
        raise TypedJsonError("typed JSON must be an object")
    out: dict[str, Any] = {}
    for key, triple in packed.items():
        if not isinstance(triple, list) or len(triple) != 3 or not isinstance(triple[1], str):
            raise TypedJsonError(f"value of {key[:40]!r} is not [key type, value type, value]")
        out[key] = _unpack_value(triple[1], triple[2], depth)
    return out


def dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(pack_dict(data), sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def loads(raw: bytes) -> dict[str, Any]:
    try:
        return unpack_dict(peer_json.loads(raw, MAX_BYTES, MAX_JSON_DEPTH))
    except peer_json.PeerJsonError as err:
        raise TypedJsonError(f"body is not typed JSON: {err}") from None
