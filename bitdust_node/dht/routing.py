"""Kademlia k-buckets: who we know, ordered by XOR distance. No sockets, no timers."""

from __future__ import annotations

import bisect
import random

import attrs

ID_BITS = 160


def id_int(node_id: str) -> int:
    return int(node_id, 16)


def id_hex(value: int) -> str:
    return f"{value:040x}"


def distance(a: str, b: str) -> int:
    return id_int(a) ^ id_int(b)


@attrs.define(eq=False)
class Contact:
    node_id: str
    host: str
    port: int
    last_seen: float = 0.0
    failures: int = 0
    # the id as an integer, parsed once: distances are computed all the time
    value: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.value = int(self.node_id, 16)

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def to_triple(self, layer: int) -> list[object]:
        return [self.node_id, self.host, self.port, layer]


@attrs.define
class KBucket:
    low: int
    high: int  # exclusive
    k: int
    contacts: list[Contact] = attrs.field(factory=list)  # least recently seen first
    replacements: list[Contact] = attrs.field(factory=list)
    last_touched: float = 0.0

    def covers(self, value: int) -> bool:
        return self.low <= value < self.high

    def find(self, node_id: str) -> Contact | None:
        for contact in self.contacts:
            if contact.node_id == node_id:
                return contact
        return None

    def random_id(self, rng: random.Random) -> str:
        return id_hex(rng.randrange(self.low, self.high))


@attrs.define
class RoutingTable:
    own_id: str
    k: int = 4
    buckets: list[KBucket] = attrs.field(init=False)
    own_value: int = attrs.field(init=False)
    # each bucket's low end, in order: the bucket of an id is found by bisection
    _lows: list[int] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.buckets = [KBucket(0, 1 << ID_BITS, self.k)]
        self._lows = [0]
        self.own_value = int(self.own_id, 16)

    def _bucket_index(self, node_id: str) -> int:
        return self._index_of(id_int(node_id))

    def _index_of(self, value: int) -> int:
        return bisect.bisect_right(self._lows, value) - 1

    def bucket_for(self, node_id: str) -> KBucket:
        return self.buckets[self._bucket_index(node_id)]

    def learn(self, contact: Contact) -> bool:
        """Add a contact only heard of (not heard from) if its bucket has room; it counts as
        never seen, so it is the first to be pinged when the bucket fills."""
        if contact.node_id == self.own_id or self.get(contact.node_id) is not None:
            return False
        while True:
            index = self._index_of(contact.value)
            bucket = self.buckets[index]
            if len(bucket.contacts) < self.k:
                contact.last_seen = 0.0
                bucket.contacts.insert(0, contact)
                return True
            if bucket.covers(self.own_value) and bucket.high - bucket.low > 1:
                self._split(index)
                continue
            return False

    def add(self, contact: Contact, now: float) -> Contact | None:
        """Insert or refresh `contact`. When its bucket is full and cannot split, keep it as a
        replacement and return the least recently seen contact, which the caller should ping."""
        if contact.node_id == self.own_id:
            return None
        while True:
            index = self._index_of(contact.value)
            bucket = self.buckets[index]
            bucket.last_touched = now
            known = bucket.find(contact.node_id)
            if known is not None:
                bucket.contacts.remove(known)
                known.host, known.port, known.last_seen, known.failures = (
                    contact.host,
                    contact.port,
                    now,
                    0,
                )
                bucket.contacts.append(known)
                return None
            if len(bucket.contacts) < self.k:
                contact.last_seen = now
                bucket.contacts.append(contact)
                return None
            if bucket.covers(self.own_value) and bucket.high - bucket.low > 1:
                self._split(index)
                continue
            bucket.replacements = [c for c in bucket.replacements if c.node_id != contact.node_id]
            bucket.replacements.append(contact)
            del bucket.replacements[: -self.k]
            return bucket.contacts[0]

    def _split(self, index: int) -> None:
        bucket = self.buckets[index]
        middle = (bucket.low + bucket.high) // 2
        lower = KBucket(bucket.low, middle, self.k, last_touched=bucket.last_touched)
        upper = KBucket(middle, bucket.high, self.k, last_touched=bucket.last_touched)
        for contact in bucket.contacts:
            (lower if contact.value < middle else upper).contacts.append(contact)
        for contact in bucket.replacements:
            (lower if contact.value < middle else upper).replacements.append(contact)
        self.buckets[index : index + 1] = [lower, upper]
        self._lows.insert(index + 1, middle)

    def remove(self, node_id: str) -> bool:
        """Forget a contact; a waiting replacement takes its place."""
        bucket = self.bucket_for(node_id)
        known = bucket.find(node_id)
        if known is None:
            return False
        bucket.contacts.remove(known)
        if bucket.replacements:
            bucket.contacts.append(bucket.replacements.pop())
        return True

    def get(self, node_id: str) -> Contact | None:
        return self.bucket_for(node_id).find(node_id)

    def closest(self, key: str, count: int, exclude: str | None = None) -> list[Contact]:
        target = id_int(key)
        everyone = [c for c in self.contacts() if c.node_id != exclude]
        everyone.sort(key=lambda c: c.value ^ target)
        return everyone[:count]

    def contacts(self) -> list[Contact]:
        return [c for bucket in self.buckets for c in bucket.contacts]

    def __len__(self) -> int:
        return sum(len(b.contacts) for b in self.buckets)

    def stale_buckets(self, now: float, interval: float) -> list[KBucket]:
        return [b for b in self.buckets if now - b.last_touched >= interval]
