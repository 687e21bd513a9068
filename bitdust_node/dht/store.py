"""Values held by one DHT layer: expiry, the `type`/`revision` rules and the size caps.

Anyone may store a value, unverified: besides the cap on one value and on the values a layer holds, the
bytes held for others in all layers together come from one room (`ValueRoom`, the node's), so that a flood of
stores into the ten layers stops at a few tens of megabytes, not at gigabytes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from bitdust_node.dht.errors import (
    InvalidValue,
    RevisionLower,
    StoreFull,
    TypeChanged,
    ValueTooLarge,
)
from bitdust_node.wire import peer_json

MIN_EXPIRE = 120
MAX_EXPIRE = 43200
MAX_VALUE_BYTES = 16384
# values per layer: a flood of stores must not eat the memory
MAX_ITEMS = 100_000
# bytes of values (keys included) held for others in all layers together
MAX_STORED_BYTES = 64 * 1024 * 1024


def clamp_expire(seconds: int) -> int:
    return max(MIN_EXPIRE, min(MAX_EXPIRE, int(seconds)))


def parse_value(value: str, max_bytes: int = MAX_VALUE_BYTES) -> dict[str, Any]:
    """The JSON object inside a stored value string (read by the one reader of peer JSON)."""
    try:
        parsed = peer_json.loads(value, max_bytes)
    except peer_json.PeerJsonError as exc:
        raise InvalidValue("value must be a JSON object") from exc
    if not isinstance(parsed, dict):
        raise InvalidValue("value must be a JSON object")
    return parsed


def dump_value(value: dict[str, Any]) -> str:
    """BitDust's compact form: sorted keys, one item per line."""
    return json.dumps(value, indent=0, separators=(",", ":"), sort_keys=True)


def _revision(value: dict[str, Any]) -> int:
    revision = value.get("revision", 0)
    return revision if isinstance(revision, int) and not isinstance(revision, bool) else 0


@attrs.define
class StoredValue:
    key: str
    value: str
    publisher_id: str
    originally_published: float
    expire_seconds: int
    last_published: float = 0.0

    @property
    def expires_at(self) -> float:
        return self.originally_published + self.expire_seconds

    def reply(self) -> dict[str, Any]:
        return {
            self.key: self.value,
            "expireSeconds": self.expire_seconds,
            "originallyPublished": int(self.originally_published),
        }


@attrs.define
class ValueRoom:
    """Bytes of values held for others, shared by a node's layers."""

    max_bytes: int = MAX_STORED_BYTES
    used: int = 0


def _size(key: str, value: str) -> int:
    return len(key) + len(value.encode("utf-8", "surrogateescape"))


@attrs.define
class DataStore:
    max_value_bytes: int = MAX_VALUE_BYTES
    max_items: int = MAX_ITEMS
    room: ValueRoom = attrs.field(factory=ValueRoom)
    # told the keys of values gone by expiry, whichever way it was noticed (a read or the periodic sweep)
    on_expired: Callable[[list[str]], object] | None = None
    _items: dict[str, StoredValue] = attrs.field(factory=dict)

    def check(self, key: str, value: str, now: float | None = None) -> None:
        """Raise a DhtError if `value` may not replace what is stored under `key` (at `now`, a stored value that
        has expired is gone and sets no rule)."""
        if len(value.encode("utf-8", "surrogateescape")) > self.max_value_bytes:
            raise ValueTooLarge(f"value over {self.max_value_bytes} bytes")
        new = parse_value(value, self.max_value_bytes)
        if now is not None:
            self.get(key, now)  # an expired one is let go here, not held against the new one
        if not self._fits(key, value):
            raise StoreFull(f"values held for others reach {self.room.max_bytes} bytes")
        old_item = self._items.get(key)
        if old_item is None:
            if len(self._items) >= self.max_items:
                raise StoreFull(f"store holds {self.max_items} values")
            return
        try:
            old = parse_value(old_item.value, self.max_value_bytes)
        except InvalidValue:
            return
        if old.get("type") != new.get("type"):
            raise TypeChanged(f"stored value has type {old.get('type')!r}")
        if _revision(new) < _revision(old):
            raise RevisionLower(f"stored value has revision {_revision(old)}")

    def put(self, item: StoredValue) -> None:
        self.check(item.key, item.value, item.last_published)
        self._keep(item)

    def restore(self, item: StoredValue) -> bool:
        """Put back a value saved by an earlier run (it passed the rules when it came), if the caps still have room
        for it (they may have been lowered since)."""
        if not self._fits(item.key, item.value) or (item.key not in self._items and len(self._items) >= self.max_items):
            return False
        self._keep(item)
        return True

    def _growth(self, key: str, value: str) -> int:
        """How many bytes more the room holds with `value` under `key` (less when it replaces a longer one)."""
        old = self._items.get(key)
        return _size(key, value) - (0 if old is None else _size(key, old.value))

    def _fits(self, key: str, value: str) -> bool:
        return self.room.used + self._growth(key, value) <= self.room.max_bytes

    def _keep(self, item: StoredValue) -> None:
        self.room.used += self._growth(item.key, item.value)
        self._items[item.key] = item

    def _forget(self, key: str) -> None:
        item = self._items.pop(key)
        self.room.used -= _size(item.key, item.value)

    def get(self, key: str, now: float) -> StoredValue | None:
        item = self._items.get(key)
        if item is not None and item.expires_at <= now:
            self._expired([key])
            return None
        return item

    def expire(self, now: float) -> list[str]:
        gone = [k for k, item in self._items.items() if item.expires_at <= now]
        if gone:
            self._expired(gone)
        return gone

    def _expired(self, keys: list[str]) -> None:
        for key in keys:
            self._forget(key)
        if self.on_expired is not None:
            self.on_expired(keys)

    def keys(self) -> list[str]:
        """The keys held now (a copy: the store may change while they are gone through)."""
        return list(self._items)

    def __iter__(self) -> Iterator[StoredValue]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)
