"""The 46-byte DHT datagram header, splitting a message body over datagrams and putting it back.

Header: 0x00, total packets (u16 BE), sequence number (u16 BE), 40 ASCII hex rpc id, 0x00.
The reassembler is bounded: parts per message, bytes per message, pending messages, bytes of all pending
messages, and an age after which an incomplete message is dropped; each part kept holds its bytes against the
node's receive budget (net/budget.py) under its sender's address until its message is whole or dropped. Time
comes from an injected clock.
"""

from __future__ import annotations

import collections
import re
import struct
from typing import Protocol

import attrs

from bitdust_node.net.budget import Claim, ReceiveBudget

HEADER_SIZE = 46
MAX_BODY_PER_DATAGRAM = 8166
MAX_PARTS = 64
MAX_MESSAGE_BYTES = MAX_PARTS * MAX_BODY_PER_DATAGRAM
MAX_PENDING = 256
MAX_PENDING_PER_SENDER = 16
# bytes of all incomplete messages together (256 of 512 KiB would be 128 MiB, from spoofable addresses), and of
# one sender's: one address alone cannot hold up everyone's multi-datagram messages
MAX_PENDING_BYTES = 8 * 1024 * 1024
MAX_PENDING_BYTES_PER_SENDER = 1024 * 1024
PENDING_TIMEOUT = 10.0

_HEX_ID = re.compile(rb"[0-9a-f]{40}")


class DatagramError(ValueError):
    """A datagram whose header is malformed or that breaks a reassembly bound."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        # a short stable name used for counting and log-once
        self.kind = kind


class IClock(Protocol):
    def seconds(self) -> float: ...


@attrs.frozen
class Header:
    total: int
    seq: int
    rpc_id: str


def pack(header: Header, body: bytes) -> bytes:
    return b"\x00" + struct.pack(">HH", header.total, header.seq) + header.rpc_id.encode("ascii") + b"\x00" + body


def unpack(datagram: bytes) -> tuple[Header, bytes]:
    if len(datagram) < HEADER_SIZE:
        raise DatagramError("truncated_header", f"datagram of {len(datagram)} bytes")
    if datagram[0] != 0 or datagram[45] != 0:
        raise DatagramError("bad_header", "header markers are not zero")
    total, seq = struct.unpack(">HH", datagram[1:5])
    raw_id = datagram[5:45]
    if _HEX_ID.fullmatch(raw_id) is None:
        raise DatagramError("bad_header", "rpc id is not 40 lowercase hex chars")
    if total < 1 or seq >= total:
        raise DatagramError("bad_header", f"sequence {seq} of {total}")
    if total > MAX_PARTS:
        raise DatagramError("too_many_parts", f"{total} parts")
    return Header(total, seq, raw_id.decode("ascii")), datagram[HEADER_SIZE:]


def split(rpc_id: str, body: bytes) -> list[bytes]:
    """The datagrams that carry `body`; raises DatagramError if it needs too many."""
    chunks = [body[i : i + MAX_BODY_PER_DATAGRAM] for i in range(0, len(body), MAX_BODY_PER_DATAGRAM)] or [b""]
    if len(chunks) > MAX_PARTS:
        raise DatagramError("too_many_parts", f"a body of {len(body)} bytes")
    return [pack(Header(len(chunks), i, rpc_id), chunk) for i, chunk in enumerate(chunks)]


@attrs.define
class _Pending:
    total: int
    started: float
    parts: dict[int, bytes] = attrs.field(factory=dict)
    size: int = 0
    # what its parts hold of the receive budget
    claims: list[Claim] = attrs.field(factory=list)


@attrs.define
class Reassembler:
    """Collects the parts of multi-datagram messages, keyed by (sender, rpc id)."""

    clock: IClock
    max_pending: int = MAX_PENDING
    max_per_sender: int = MAX_PENDING_PER_SENDER
    timeout: float = PENDING_TIMEOUT
    max_bytes: int = MAX_MESSAGE_BYTES
    max_total_bytes: int = MAX_PENDING_BYTES
    max_sender_bytes: int = MAX_PENDING_BYTES_PER_SENDER
    budget: ReceiveBudget | None = None
    _pending: dict[tuple[object, str], _Pending] = attrs.field(factory=dict)
    _total: int = 0
    _by_sender: collections.Counter[object] = attrs.field(factory=collections.Counter)

    def feed(self, sender: object, header: Header, body: bytes) -> bytes | None:
        """The whole body once every part arrived, else None. Raises DatagramError on abuse."""
        if header.total == 1:
            return body
        now = self.clock.seconds()
        self.expire(now)
        key = (sender, header.rpc_id)
        pending = self._pending.get(key)
        if pending is None:
            if len(self._pending) >= self.max_pending:
                raise DatagramError("pending_full", "too many incomplete messages")
            # one noisy sender must not fill the table for everyone
            if sum(1 for s, _ in self._pending if s == sender) >= self.max_per_sender:
                raise DatagramError("sender_pending_full", "too many incomplete messages")
            pending = self._pending[key] = _Pending(header.total, now)
        if pending.total != header.total:
            self._drop(key)
            raise DatagramError("bad_header", "part count changed within one message")
        if header.seq not in pending.parts:
            if pending.size + len(body) > self.max_bytes:
                self._drop(key)
                raise DatagramError("too_large", "message over the size cap")
            if self._by_sender[sender] + len(body) > self.max_sender_bytes:
                self._drop(key)
                raise DatagramError("sender_bytes_full", "this sender's incomplete messages hold too many bytes")
            if self._total + len(body) > self.max_total_bytes:
                self._drop(key)
                raise DatagramError("pending_bytes_full", "incomplete messages hold too many bytes")
            if self.budget is not None:
                claim = self.budget.claim(_host(sender), len(body), "dht_message",
                                          on_evicted=lambda: self._drop(key))
                if claim is None:
                    self._drop(key)
                    raise DatagramError("over_budget", "no room in the receive budget")
                pending.claims.append(claim)
            pending.size += len(body)
            self._total += len(body)
            self._by_sender[sender] += len(body)
            pending.parts[header.seq] = body
        if len(pending.parts) < pending.total:
            return None
        self._drop(key)
        return b"".join(pending.parts[i] for i in range(pending.total))

    def _drop(self, key: tuple[object, str]) -> None:
        """Forget a message (whole, refused, evicted or too old) and let go of what its parts held."""
        pending = self._pending.pop(key, None)
        if pending is None:
            return
        self._total -= pending.size
        sender = key[0]
        self._by_sender[sender] -= pending.size
        if self._by_sender[sender] <= 0:
            del self._by_sender[sender]
        for claim in pending.claims:
            claim.release()

    def expire(self, now: float) -> int:
        """Drop incomplete messages older than the timeout; returns how many were dropped."""
        stale = [k for k, p in self._pending.items() if now - p.started > self.timeout]
        for key in stale:
            self._drop(key)
        return len(stale)

    def held(self) -> int:
        """Bytes of the parts of incomplete messages."""
        return self._total

    def pending_count(self) -> int:
        return len(self._pending)


def _host(sender: object) -> str:
    """The address a datagram came from, as the receive budget shares by it."""
    return str(sender[0]) if isinstance(sender, tuple) and sender else str(sender)
