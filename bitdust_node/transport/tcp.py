"""The TCP transport (section 1.4): listens on the p2p port, dials peers, keeps the connections by the
address each peer listens on (an incoming connection is keyed under its hello's address, so replies
reuse it), tolerates several sockets per peer, and backs off from peers that cannot be dialed."""

from __future__ import annotations

import collections
import random
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, protocol
from twisted.internet.error import ConnectError
from twisted.logger import Logger
from twisted.python.failure import Failure

from bitdust_node.net.budget import ReceiveBudget
from bitdust_node.net.clock import TcpReactor, TimeSource
from bitdust_node.transport.connection import Address, State, TcpConnection
from bitdust_node.transport.errors import Unreachable
from bitdust_node.transport.limits import TcpLimits
from bitdust_node.wire import tcp_frames

log = Logger()
FileHandler = Callable[[TcpConnection, tcp_frames.Chunks], object]


def file_ids(clock: TimeSource) -> Callable[[], int]:
    """File ids as official senders make them: epoch in centiseconds without its first 4 digits, increasing."""
    last = 0

    def next_id() -> int:
        nonlocal last
        digits = str(int(clock.seconds() * 100))
        candidate = int(digits[4:]) if len(digits) > 4 else int(digits)
        last = candidate if candidate > last else last + 1
        if last >= 2**31:  # a signed int32 on the wire
            last = 1
        return last

    return next_id


class _Incoming(protocol.Factory):
    noisy = False

    def __init__(self, node: TcpNode) -> None:
        self.node = node

    def buildProtocol(self, addr: Any) -> TcpConnection | None:
        host = getattr(addr, "host", "")
        if not self.node.room_for(host):
            self.node.count("connection_refused_cap")
            return None  # Twisted closes the socket
        return self.node.track(TcpConnection(self.node), host)


class _Outgoing(protocol.ClientFactory):
    noisy = False

    def __init__(self, node: TcpNode, connection: TcpConnection, address: Address) -> None:
        self.node = node
        self.connection = connection
        self.address = address

    def buildProtocol(self, addr: Any) -> TcpConnection:
        return self.connection

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        self.node.dial_failed(self.connection, self.address, reason.getErrorMessage())


def _failed(error: Exception, on_written: Callable[[], None] | None) -> defer.Deferred[None]:
    if on_written is not None:
        on_written()
    return defer.fail(error)


def parse_tcp_contact(contact: str) -> Address:
    """`tcp://host:port` from an identity's contacts."""
    host, sep, port = contact.removeprefix("tcp://").rpartition(":")
    if not contact.startswith("tcp://") or not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise Unreachable(f"not a tcp contact: {contact[:100]!r}")
    return host.strip("[]"), int(port)


class TcpNode:
    """Every p2p TCP connection of this node, and sending a whole file to an address."""

    proto = "tcp"

    def __init__(
        self,
        reactor: TcpReactor,
        my_address: Callable[[], Address],
        my_idurl: Callable[[], str],
        on_file: FileHandler,
        limits: TcpLimits | None = None,
        rng: random.Random | None = None,
        bind_source: bool = False,
        budget: ReceiveBudget | None = None,
    ) -> None:
        self.reactor = reactor
        self.clock: TimeSource = reactor
        self.bind_source = bind_source
        self.limits = limits or TcpLimits()
        # the node's receive budget, which unfinished incoming files take their bytes from
        self.budget = budget if budget is not None else ReceiveBudget()
        self._my_address = my_address
        self._my_idurl = my_idurl
        self.on_file = on_file
        self._rng = rng or random.Random()
        self._file_id = file_ids(reactor)
        self.by_address: dict[Address, list[TcpConnection]] = collections.defaultdict(list)
        self.connections: set[TcpConnection] = set()
        self._per_host: collections.Counter[str] = collections.Counter()
        self._host_of: dict[TcpConnection, str] = {}
        # address -> (failures in a row, no dial before this time), the latest failure last
        self._backoff: dict[Address, tuple[int, float]] = {}
        self._backoff_swept = 0.0
        self.counters: collections.Counter[str] = collections.Counter()
        self._closed_watchers: list[Callable[[TcpConnection], None]] = []

    def factory(self) -> protocol.Factory:
        return _Incoming(self)

    # -- ConnectionOwner

    def my_hello(self) -> bytes:
        host, port = self._my_address()
        return f"{host}:{port} {self._my_idurl()}".encode("ascii")

    def my_idurl(self) -> bytes:
        return self._my_idurl().encode("ascii")

    def next_file_id(self) -> int:
        return self._file_id()

    def connection_ready(self, connection: TcpConnection) -> None:
        assert connection.address is not None
        peers = self.by_address[connection.address]
        if connection not in peers:
            peers.append(connection)
        self._backoff.pop(connection.address, None)
        self.count("connections_ready")

    def connection_closed(self, connection: TcpConnection) -> None:
        self.connections.discard(connection)
        for watcher in list(self._closed_watchers):
            watcher(connection)
        host = self._host_of.pop(connection, None)
        if host is not None:
            self._per_host[host] -= 1
            if self._per_host[host] <= 0:
                del self._per_host[host]
        if connection.address is not None:
            peers = self.by_address.get(connection.address)
            if peers is not None and connection in peers:
                peers.remove(connection)
                if not peers:
                    del self.by_address[connection.address]

    def file_received(self, connection: TcpConnection, data: tcp_frames.Chunks) -> None:
        self.count("files_received")
        self.on_file(connection, data)

    def refused(self, connection: TcpConnection, reason: str) -> None:
        # the reason's first words name the kind: "bad frame length 2147483648" -> bad_frame_length
        kind = "_".join(word for word in reason.split()[:3] if word.isalpha()) or "refused"
        self.count("refused_" + kind)
        log.info("refused from {peer}: {why}", peer=connection.describe(), why=reason)

    # -- bookkeeping

    def count(self, what: str) -> None:
        self.counters[what] += 1

    def room_for(self, host: str) -> bool:
        total_ok = len(self.connections) < self.limits.max_connections
        return total_ok and self._per_host[host] < self.limits.max_connections_per_host

    def track(self, connection: TcpConnection, host: str) -> TcpConnection:
        self.connections.add(connection)
        self._per_host[host] += 1
        self._host_of[connection] = host
        return connection

    # -- sending

    def connection_to(self, address: Address) -> TcpConnection | None:
        """A usable connection to the peer that listens at `address`: connected first, then one being made."""
        peers = self.by_address.get(address, [])
        connected = [c for c in peers if c.usable]
        if connected:
            return min(connected, key=lambda c: c.queued_bytes())
        dialing = [c for c in self.connections if c.address == address and c.state is State.CLIENT and not c.closing]
        return dialing[0] if dialing else None

    def send_to(
        self, contact: str, data: tcp_frames.FileBytes, on_written: Callable[[], None] | None = None,
    ) -> defer.Deferred[None]:
        """PeerTransport: send to a `tcp://host:port` contact."""
        try:
            address = parse_tcp_contact(contact)
        except Unreachable as err:
            return _failed(err, on_written)
        return self.send(address, data, on_written)

    def send(
        self, address: Address, data: tcp_frames.FileBytes, on_written: Callable[[], None] | None = None,
    ) -> defer.Deferred[None]:
        """Send one file to the peer listening at `address`; fires once the peer acknowledged it (`on_written`: see
        TcpConnection.send_file)."""
        if address == self._my_address():
            return _failed(Unreachable("refusing to send to my own address"), on_written)
        connection = self.connection_to(address)
        if connection is None:
            dialed = self._dial(address)
            if isinstance(dialed, Unreachable):
                return _failed(dialed, on_written)
            connection = dialed
        return connection.send_file(data, on_written)

    def _dial(self, address: Address) -> TcpConnection | Unreachable:
        """A connection being made to `address`, or why none is (backing off, no room)."""
        failures, until = self._backoff_of(address)
        now = self.clock.seconds()
        if failures and now < until:
            self.count("send_backing_off")
            return Unreachable(f"{address[0]}:{address[1]} failed {failures} times; next try in {until - now:.1f} s")
        if not self.room_for(address[0]):
            self.count("connection_refused_cap")
            if failures:  # a peer that failed before waits a second more, as after a failure
                self._back_off(address, failures, now + 1.0)
            return Unreachable(f"no room for another connection to {address[0]}:{address[1]} "
                               f"({len(self.connections)} open)")
        connection = self.track(TcpConnection(self, dialed=address), address[0])
        host, _port = self._my_address()
        # from the address I listen on: the peer sees the same host my hello and identity name
        source = (host, 0) if self.bind_source else None
        self.reactor.connectTCP(
            address[0], address[1], _Outgoing(self, connection, address), timeout=self.limits.connect_timeout,
            bindAddress=source,
        )
        self.count("dials")
        return connection

    def dial_failed(self, connection: TcpConnection, address: Address, why: str) -> None:
        failures = self._backoff_of(address)[0] + 1
        delay = min(self.limits.backoff_first * 2 ** (failures - 1), self.limits.backoff_max)
        delay *= self._rng.uniform(0.75, 1.25)  # peers that failed together do not retry together
        self._back_off(address, failures, self.clock.seconds() + delay)
        self.count("dials_failed")
        log.info("cannot connect to {host}:{port}: {why}", host=address[0], port=address[1], why=why)
        connection.failure = Unreachable(f"cannot connect to {address[0]}:{address[1]}: {why}")
        connection.connectionLost(Failure(ConnectError(why)))

    def _backoff_of(self, address: Address) -> tuple[int, float]:
        """(failures in a row, no dial before), (0, 0.0) once the backoff ended backoff_max ago: it starts over."""
        failures, until = self._backoff.get(address, (0, 0.0))
        if failures and self.clock.seconds() >= until + self.limits.backoff_max:
            del self._backoff[address]
            return 0, 0.0
        return failures, until

    def _back_off(self, address: Address, failures: int, until: float) -> None:
        """No dial to `address` before `until`; addresses forgotten as their backoffs end long ago, the oldest past
        the table's cap."""
        now = self.clock.seconds()
        if now - self._backoff_swept >= self.limits.backoff_max:  # a scan a minute at most
            self._backoff_swept = now
            for old in [a for a, (_f, end) in self._backoff.items() if now >= end + self.limits.backoff_max]:
                del self._backoff[old]
        self._backoff.pop(address, None)
        self._backoff[address] = (failures, until)
        while len(self._backoff) > self.limits.max_backoff_addresses:
            del self._backoff[next(iter(self._backoff))]
            self.count("backoff_forgotten")

    def watch_closed(self, watcher: Callable[[TcpConnection], None]) -> Callable[[], None]:
        """Call `watcher` with every connection that closes (a router's session, say); returns the unwatch."""
        self._closed_watchers.append(watcher)

        def unwatch() -> None:
            if watcher in self._closed_watchers:
                self._closed_watchers.remove(watcher)

        return unwatch

    def sessions_of(self, idurl: str) -> list[TcpConnection]:
        """Connected connections whose peer said this IDURL in its hello or wazap."""
        return [c for c in self.connections if c.usable and c.peer_idurl == idurl]

    def keep_alive(self, address: Address) -> None:
        for connection in self.by_address.get(address, []):
            connection.keep_alive()

    def close_all(self) -> defer.Deferred[None]:
        """Close every connection; fires when all are gone."""
        closing = list(self.connections)
        for connection in closing:
            connection.close("", abort=False)
        done: defer.Deferred[None] = defer.Deferred()

        def check(remaining: int = 50) -> None:
            if not self.connections or remaining == 0:
                for connection in list(self.connections):
                    connection.close("", abort=True)
                done.callback(None)
            else:
                self.clock.callLater(0.02, check, remaining - 1)

        check()
        return done

    def status(self) -> list[dict[str, Any]]:
        """One line per connection, as /connection/list/v1 shows them."""
        return [
            {
                "proto": "tcp",
                "host": c.describe(),
                "idurl": c.peer_idurl,
                "state": c.state.value,
                "status": "active" if c.state is State.CONNECTED else "connecting",
                "bytes_received": c.bytes_in,
                "bytes_sent": c.bytes_out,
            }
            for c in sorted(self.connections, key=lambda c: c.describe())
        ]
