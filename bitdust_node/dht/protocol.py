"""UDP glue of the DHT: datagrams in, typed messages to the node, replies and RPCs out.

It frames and matches RPCs (timeouts, retries) and counts traffic per layer; what a request
means is the node's business (`RequestHandler`).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any, Protocol

import attrs
from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger, LogLevel

from bitdust_node.dht import datagram, message_fast
from bitdust_node.dht.errors import RemoteError, RpcTimeout
from bitdust_node.dht.message import RPC_METHODS, ErrorReply, Message, MessageError, Request, Response
from bitdust_node.dht.patience import Patience, RoundTrips
from bitdust_node.net.budget import ReceiveBudget
from bitdust_node.net.clock import DelayedCall, TimeSource
from bitdust_node.net.ratelimit import RequestLimiter
from bitdust_node.wire.bencode import BencodeError

Address = tuple[str, int]

RPC_TIMEOUT = 10.0
RPC_RETRIES = 1
# counters and the log are keyed by method only for the RPCs a node answers: a peer names a method as it likes
UNKNOWN_METHOD = "unknown"


def method_key(method: str) -> str:
    """The name a request's method is counted under: itself if known, else UNKNOWN_METHOD."""
    return method if method in RPC_METHODS else UNKNOWN_METHOD


class RequestHandler(Protocol):
    def handle_request(self, request: Request, address: Address) -> Message: ...

    def response_seen(self, response: Response, address: Address) -> None: ...

    def rpc_failed(self, node_id: str | None, address: Address, layer: int) -> None: ...


@attrs.define
class LayerStats:
    packets_received: int = 0
    packets_sent: int = 0
    rpc_calls: Counter[str] = attrs.field(factory=Counter)
    rpc_responses: Counter[str] = attrs.field(factory=Counter)


@attrs.define(eq=False)
class _Call:
    deferred: defer.Deferred[Any]
    address: Address
    method: str
    layer: int
    datagrams: list[bytes]
    node_id: str | None
    sent: float
    attempts: int = 1
    timer: DelayedCall | None = None


# RPC ids are drawn from the OS in batches: as unpredictable as one read each, a syscall per 64 calls
_ID_HEX = 40
_IDS_PER_READ = 64
_random_hex = ""


def new_rpc_id() -> str:
    global _random_hex
    if not _random_hex:
        _random_hex = os.urandom(_ID_HEX // 2 * _IDS_PER_READ).hex()
    rpc_id, _random_hex = _random_hex[:_ID_HEX], _random_hex[_ID_HEX:]
    return rpc_id


class DhtProtocol(DatagramProtocol):
    log = Logger()
    # set by cancel_all when the DHT stops: no call is made after that
    closed = False

    def __init__(
        self,
        clock: TimeSource,
        rpc_timeout: float = RPC_TIMEOUT,
        rpc_retries: int = RPC_RETRIES,
        budget: ReceiveBudget | None = None,
    ) -> None:
        self.clock = clock
        self.handler: RequestHandler | None = None
        self.rpc_timeout = rpc_timeout
        self.rpc_retries = rpc_retries
        # parts of multi-datagram messages hold their bytes against the node's receive budget
        self.reassembler = datagram.Reassembler(clock, budget=budget)
        self.limiter = RequestLimiter(clock)
        self.stats: dict[int, LayerStats] = {}
        self.bytes_received = 0
        self.bytes_sent = 0
        # keyed by kinds this module names (a fixed few), never by a peer's text
        self.dropped: Counter[str] = Counter()
        self._calls: dict[str, _Call] = {}
        # round trips of answered calls: how long a lookup waits on a call before asking someone else
        self.round_trips = RoundTrips()
        # address -> when the earliest call to it still unanswered was sent (only while calls are pending)
        self._silent_since: dict[Address, float] = {}

    def layer_stats(self, layer: int) -> LayerStats:
        stats = self.stats.get(layer)
        if stats is None:
            stats = self.stats[layer] = LayerStats()
        return stats

    # -- incoming

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        address: Address = (addr[0], addr[1])
        self.bytes_received += len(data)
        try:
            header, body = datagram.unpack(data)
            whole = self.reassembler.feed(address, header, body)
            if whole is None:
                return
            msg = message_fast.decode(whole)
        except datagram.DatagramError as exc:
            self.drop(exc.kind, address, str(exc))
            return
        except BencodeError as exc:
            self.drop("bad_bencode", address, str(exc))
            return
        except MessageError as exc:
            self.drop("bad_message", address, str(exc))
            return
        stats = self.layer_stats(msg.layer)
        stats.packets_received += 1
        if isinstance(msg, Request):
            if not self.limiter.allow(address):
                self.drop("rate_limited", address, "too many requests from one address")
                return
            stats.rpc_calls[method_key(msg.method)] += 1
            self._answer(msg, address)
        else:
            self._complete(msg, address)

    def drop(self, kind: str, address: Address, why: str) -> None:
        """Count a refused input; log only the first of each kind."""
        self.dropped[kind] += 1
        if self.dropped[kind] == 1:
            self.log.emit(
                LogLevel.warn,
                "DHT dropped input ({kind}) from {address}: {why}; later ones are only counted",
                kind=kind,
                address=f"{address[0]}:{address[1]}",
                why=why,
            )

    def _answer(self, request: Request, address: Address) -> None:
        if self.handler is None:
            return
        reply = self.handler.handle_request(request, address)
        if isinstance(reply, ErrorReply):
            # the text is logged once per kind, and cut: it may carry a peer's method name
            self.drop("refused_" + method_key(request.method), address, reply.text[:200])
        self._send(reply, address)

    def _complete(self, reply: Response | ErrorReply, address: Address) -> None:
        call = self._calls.get(reply.msg_id)
        if call is None or call.address != address:
            self.drop("unexpected_reply", address, f"no pending call {reply.msg_id}")
            return
        del self._calls[reply.msg_id]
        if call.timer is not None and call.timer.active():
            call.timer.cancel()
        self._silent_since.pop(address, None)
        if call.attempts == 1:
            # a retried call's answer may be to either send (Karn): only first sends are timed
            self.round_trips.sample(self.clock.seconds() - call.sent)
        if isinstance(reply, Response):
            self.layer_stats(call.layer).rpc_responses[call.method] += 1
            if self.handler is not None:
                self.handler.response_seen(reply, address)
            call.deferred.callback(reply)
        else:
            call.deferred.errback(RemoteError(reply.error_type, reply.text))

    # -- outgoing

    def _send(self, msg: Message, address: Address) -> list[bytes]:
        parts = datagram.split(msg.msg_id, message_fast.encode(msg))
        self._write(parts, address, msg.layer)
        return parts

    def _write(self, parts: list[bytes], address: Address, layer: int) -> None:
        # typed Any: mypy without the zope plugin misreads IUDPTransport.write
        transport: Any = self.transport
        if transport is None:
            return
        self.layer_stats(layer).packets_sent += 1
        for part in parts:
            try:
                transport.write(part, address)
            except OSError as exc:
                self.drop("send_failed", address, str(exc))
                return
            self.bytes_sent += len(part)

    def call(
        self,
        address: Address,
        sender_id: str,
        method: str,
        args: list[Any],
        layer: int = 0,
        question: bool = False,
        node_id: str | None = None,
    ) -> defer.Deferred[Response]:
        """Send a request; fires with the Response, or fails with RemoteError or RpcTimeout."""
        if self.closed:
            # a lookup still running when the DHT stopped: it ends here, leaving no timer behind
            return defer.fail(RpcTimeout("DHT stopped"))
        request = Request(new_rpc_id(), sender_id, method, args, layer, question)
        parts = datagram.split(request.msg_id, message_fast.encode(request))
        d: defer.Deferred[Response] = defer.Deferred()
        now = self.clock.seconds()
        call = _Call(d, address, method, layer, parts, node_id, now)
        self._calls[request.msg_id] = call
        self._silent_since.setdefault(address, now)
        self._write(parts, address, layer)
        call.timer = self.clock.callLater(self.rpc_timeout, self._timed_out, request.msg_id)
        return d

    def _timed_out(self, msg_id: str) -> None:
        call = self._calls.get(msg_id)
        if call is None:
            return
        if call.attempts <= self.rpc_retries:
            call.attempts += 1
            self._write(call.datagrams, call.address, call.layer)
            call.timer = self.clock.callLater(self.rpc_timeout, self._timed_out, msg_id)
            return
        del self._calls[msg_id]
        self._silent_since.pop(call.address, None)
        if self.handler is not None:
            self.handler.rpc_failed(call.node_id, call.address, call.layer)
        call.deferred.errback(RpcTimeout(f"{call.method} to {call.address} timed out"))

    def cancel_all(self) -> None:
        """Fail every pending call, and any made from now on (on stop)."""
        self.closed = True
        calls, self._calls = self._calls, {}
        self._silent_since.clear()
        for call in calls.values():
            if call.timer is not None and call.timer.active():
                call.timer.cancel()
            call.deferred.errback(RpcTimeout("DHT stopped"))

    def pending_calls(self) -> int:
        return len(self._calls)

    # -- patience

    def stall_after(self) -> float:
        """Seconds after which a lookup stops waiting on an unanswered call (it stays open until the timeout)."""
        return self.round_trips.stall_after(self.rpc_timeout)

    def silent(self, address: Address) -> bool:
        """Whether `address` has left a call unanswered for the stall time (and has not answered since)."""
        since = self._silent_since.get(address)
        return since is not None and self.clock.seconds() - since >= self.stall_after()

    def patience(self) -> Patience:
        return Patience(self.clock, self.stall_after(), self.silent)
