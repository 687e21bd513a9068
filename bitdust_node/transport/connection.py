"""One peer-to-peer TCP connection (PROTOCOL-P2P.md section 1): hello/wazap handshake, then signed
packets as "files" in 16 KiB `d` chunks, each acknowledged by `o`.

Better than official and by design: a handshake deadline, an idle timeout (a shorter one while a file is
half received), a bounded send queue with back-pressure from the socket (IPushProducer), a timeout on the
peer's `o`, caps on incoming files and their bytes, and unfinished files admitted by the node's receive
budget (net/budget.py). A file the budget has no room for waits first, the connection not read
meanwhile (TCP pushes back on the sender), for `admission_wait` at the most; then it may take room back from
larger holders, and a file that still finds none, or that is taken back later, is followed to its end and never
kept.
"""

from __future__ import annotations

import collections
import enum
import re
from collections.abc import Callable
from socket import SO_RCVBUF, SO_SNDBUF, SOL_SOCKET
from typing import TYPE_CHECKING, Any, Protocol

import attrs
from twisted.internet import defer, interfaces, protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from bitdust_node.net.budget import WAITING_PART, Claim, ReceiveBudget
from bitdust_node.net.clock import TimeSource
from bitdust_node.transport import vectored
from bitdust_node.transport.errors import ConnectionClosed, SendQueueFull, SendTimeout
from bitdust_node.transport.limits import TcpLimits
from bitdust_node.wire import tcp_frames

if TYPE_CHECKING:
    from bitdust_node.net.clock import DelayedCall

log = Logger()
Address = tuple[str, int]
_HELLO_ADDRESS = re.compile(rb"([0-9A-Za-z.\-\[\]:]{1,255}):(\d{1,5})")


# files awaiting `o` while this side does not read: this many times max_unacked_files
UNREAD_ACKS_FACTOR = 10


class _NoRoomYet(Exception):
    """The budget has no room for a file now: its connection waits for some (raised by the admission)."""


class State(enum.Enum):
    CLIENT = "CLIENT?"
    SERVER = "SERVER?"
    CONNECTED = "CONNECTED"
    CLOSED = "CLOSED"


def parse_hello(payload: bytes) -> tuple[Address, str] | None:
    """`<host>:<port> <idurl>` as official receivers accept it, or None."""
    parts = payload.split(b" ")
    if len(parts) != 2:
        return None
    match = _HELLO_ADDRESS.fullmatch(parts[0])
    if match is None or not 0 < int(match.group(2)) < 65536:
        return None
    try:
        return (match.group(1).decode("ascii"), int(match.group(2))), parts[1].decode("ascii")
    except UnicodeDecodeError:
        return None


class ConnectionOwner(Protocol):
    """What a connection tells the TCP node it belongs to (transport/tcp.py implements it)."""

    limits: TcpLimits
    clock: TimeSource
    budget: ReceiveBudget

    def my_hello(self) -> bytes: ...

    def my_idurl(self) -> bytes: ...

    def next_file_id(self) -> int: ...

    def connection_ready(self, connection: TcpConnection) -> None: ...

    def connection_closed(self, connection: TcpConnection) -> None: ...

    def file_received(self, connection: TcpConnection, data: tcp_frames.Chunks) -> None: ...

    def refused(self, connection: TcpConnection, reason: str) -> None: ...

    def count(self, what: str) -> None: ...


@attrs.define(eq=False)
class OutgoingFile:
    file_id: int
    # the file's bytes, framed a step at a time as the socket takes them
    data: tcp_frames.FileBytes
    size: int
    done: defer.Deferred[None]
    # bytes of `data` already framed and written
    written: int = 0
    # once written whole: the peer has this long to say `o`
    ack_timer: DelayedCall | None = None
    # told once the file no longer waits in this node (written whole into the socket's buffers, or failed)
    on_written: Callable[[], None] | None = None

    def handed_on(self) -> None:
        told, self.on_written = self.on_written, None
        if told is not None:
            told()


@implementer(interfaces.IPushProducer)
class TcpConnection(protocol.Protocol):
    def __init__(self, owner: ConnectionOwner, dialed: Address | None = None) -> None:
        self.owner = owner
        self.limits = owner.limits
        # where we dialed; for an incoming connection, where its hello says the peer listens
        self.address: Address | None = dialed
        self.state = State.CLIENT if dialed is not None else State.SERVER
        # close() was asked: the transport may take until the next turn to say connectionLost, and no new file
        # should be queued behind that
        self.closing = False
        self.peer_idurl = ""
        # the address the connection comes from: what the receive budget is shared by
        self.peer_host = ""
        self.bytes_in = 0
        self.bytes_out = 0
        self._decoder = tcp_frames.FrameDecoder()
        self._incoming = tcp_frames.FileAssembler(
            max_file_size=self.limits.max_file_bytes,
            max_files=self.limits.max_incoming_files,
            max_total=self.limits.max_incoming_bytes,
            admit=self._admit,
        )
        # what each unfinished incoming file holds of the node's receive budget
        self._claims: dict[int, Claim] = {}
        self._queue: collections.deque[OutgoingFile] = collections.deque()
        self._queued_bytes = 0
        self._awaiting_ok: dict[int, OutgoingFile] = {}
        self._paused = False
        # runs while the socket has taken nothing of what was written: a peer that never reads is dropped
        self._write_stall: DelayedCall | None = None
        self._writing = False
        # reasons the peer's bytes are not read for now (hold_reading): TCP pushes back on the sender meanwhile
        self._read_holds = 0
        self._timer: DelayedCall | None = None
        self._timer_due = 0.0
        # why pending sends fail when the connection goes (a failed dial says more than "closed")
        self.failure: Exception | None = None
        self._last_active = 0.0
        # when the socket last took what was written: a file's `o` is awaited from then on
        self._last_drained = 0.0
        # the frames of a read from the one whose file waits for room in the budget, and what they came in
        self._waiting_frames: list[tcp_frames.Frame | tcp_frames.DataRun] | None = None
        self._waiting_read = 0
        self._waiting_until: DelayedCall | None = None
        self._forget_waiter: Callable[[], None] | None = None
        self._retry_due = False
        # the last file waited as long as it may: the next admissions may take room back, or are refused
        self._waited_out = False

    # -- life

    def connectionMade(self) -> None:
        transport: Any = self.transport
        if hasattr(transport, "setTcpNoDelay"):
            transport.setTcpNoDelay(True)  # one packet is often one small frame: no Nagle delay
        # Twisted pauses producers, reads and sends in 64 or 128 KiB steps: one reactor turn each;
        # megabyte packets want fewer, larger steps (and matching kernel buffers)
        transport.bufferSize = self.limits.socket_buffer
        transport.SEND_LIMIT = self.limits.socket_buffer  # one send() a file, not one each 128 KiB
        socket: Any = transport.getHandle() if hasattr(transport, "getHandle") else None
        if hasattr(socket, "setsockopt"):
            for option in (SO_SNDBUF, SO_RCVBUF):
                socket.setsockopt(SOL_SOCKET, option, self.limits.socket_buffer)
        transport.registerProducer(self, True)
        self.peer_host = str(getattr(transport.getPeer(), "host", "")) if hasattr(transport, "getPeer") else ""
        self._arm(self.limits.handshake_timeout, "no handshake")
        if self.state is State.CLIENT:
            self._write(tcp_frames.encode_frame(tcp_frames.HELLO, self.owner.my_hello()))

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self.state = State.CLOSED
        self._disarm()
        self._write_flowing()
        self._stop_waiting()
        for claim in self._claims.values():
            claim.release()
        self._claims.clear()
        self._incoming = tcp_frames.FileAssembler(max_file_size=0, max_files=0)  # what it held goes now
        failure = self.failure or ConnectionClosed(f"connection to {self.describe()} closed")
        pending = [*self._awaiting_ok.values(), *self._queue]
        self._awaiting_ok.clear()
        self._queue.clear()
        self._queued_bytes = 0
        for item in pending:
            if item.ack_timer is not None and item.ack_timer.active():
                item.ack_timer.cancel()
            item.handed_on()
            if not item.done.called:
                item.done.errback(failure)
        self.owner.connection_closed(self)

    def close(self, reason: str, abort: bool = False) -> None:
        transport: Any = self.transport
        if transport is None or self.state is State.CLOSED:
            return
        self.closing = True
        if reason:
            log.info("closing connection {peer}: {why}", peer=self.describe(), why=reason)
        if abort:
            transport.abortConnection()
        else:
            transport.loseConnection()

    def describe(self) -> str:
        if self.address is not None:
            return f"{self.address[0]}:{self.address[1]}"
        transport: Any = self.transport
        peer = transport.getPeer() if transport is not None else None
        return f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}"

    # -- timers: before the handshake a deadline, after it an idle timeout, shorter while a file is unfinished

    def _arm(self, seconds: float, why: str) -> None:
        self._disarm()
        self._timer = self.owner.clock.callLater(seconds, self._expired, why)
        self._timer_due = self.owner.clock.seconds() + seconds

    def _disarm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _quiet_limit(self) -> tuple[float, str]:
        """How long the peer may stay silent now, and what it is then called."""
        if self._incoming.in_flight():
            return self.limits.stall_timeout, "stalled file"
        return self.limits.idle_timeout, "idle"

    def _expired(self, why: str) -> None:
        self._timer = None
        if self.state is State.CONNECTED:
            if self._read_holds:
                self._touch()  # this side holds the reading: the peer's silence is not its own
            limit, why = self._quiet_limit()
            # traffic since the timer was set moves the deadline instead of re-arming on every frame
            quiet_for = self.owner.clock.seconds() - self._last_active
            if quiet_for < limit:
                self._arm(limit - quiet_for, why)
                return
        self.owner.refused(self, "timeout " + why)
        self.close(why, abort=True)

    def _touch(self) -> None:
        self._last_active = self.owner.clock.seconds()
        # a file begun since the idle timer was set: the peer now has the stall timeout, not the idle one
        if self._timer is not None and self._incoming.in_flight():
            if self._timer_due > self._last_active + self.limits.stall_timeout:
                self._arm(self.limits.stall_timeout, "stalled file")

    # -- the receive budget: a file that does not come in one chunk holds its allowance until it is whole

    def _admit(self, file_id: int, size: int) -> int | None:
        budget = self.owner.budget
        allowance = tcp_frames.file_allowance(size)
        if allowance > budget.total:
            allowance = size  # the largest files: copies once their reads would pass what the node has

        def evicted() -> None:
            self._evicted(file_id, size)

        claim = None
        if not self._waited_out and self._may_wait(allowance):
            # room first from what is free: a busy node slows its senders down before it drops anyone's file
            claim = budget.claim(self.peer_host, allowance, "unfinished_file", evicted, evict=False, count=False,
                                 within=budget.total // WAITING_PART)
            if claim is None:
                raise _NoRoomYet()
        if claim is None:
            claim = budget.claim(self.peer_host, allowance, "unfinished_file", evicted)
        self._waited_out = False
        if claim is None:
            self.owner.refused(self, f"receive budget full: file {file_id} of {size} bytes not kept")
            return None
        self._claims[file_id] = claim
        return allowance

    def _may_wait(self, allowance: int) -> bool:
        """Whether a file may wait for room: one that can ever fit, on a connection holding no unfinished file,
        while what waiting connections keep of their reads stays within a quarter of the budget."""
        budget = self.owner.budget
        if self._claims:
            return False  # this connection's own unfinished files hold room, and they would wait with it
        return allowance <= budget.total // WAITING_PART and budget.waiting_reads < budget.total // 4

    def _wait_for_room(self, frames: list[tcp_frames.Frame | tcp_frames.DataRun], read: int) -> None:
        """Keep the frames from the one whose file found no room, and read nothing more until the budget lets
        something go (or `admission_wait` passed)."""
        self._waiting_frames, self._waiting_read = frames, read
        budget = self.owner.budget
        budget.waiting_reads += read
        self.owner.count("waited_for_room")
        self._hold()
        self._forget_waiter = budget.when_released(self._room_maybe)
        if self._waiting_until is None:
            self._waiting_until = self.owner.clock.callLater(self.limits.admission_wait, self._waited_enough)

    def _room_maybe(self) -> None:
        # told from inside a release: the retry claims, so it runs on the next turn of the reactor
        self._forget_waiter = None
        if not self._retry_due:
            self._retry_due = True
            self.owner.clock.callLater(0, self._retry)

    def _waited_enough(self) -> None:
        self._waiting_until = None
        self._waited_out = True
        self._retry()

    def _retry(self) -> None:
        self._retry_due = False
        frames = self._waiting_frames
        if frames is None or self.state is State.CLOSED:
            return
        read = self._waiting_read
        self._waiting_frames, self._waiting_read = None, 0
        self.owner.budget.waiting_reads -= read
        if self._forget_waiter is not None:
            self._forget_waiter()
            self._forget_waiter = None
        self._take(frames, read)
        if self._waiting_frames is None and self._waiting_until is not None:
            if self._waiting_until.active():
                self._waiting_until.cancel()
            self._waiting_until = None
        self._unhold()  # after the kept frames: what is read next comes after them

    def _stop_waiting(self) -> None:
        if self._waiting_frames is not None:
            self.owner.budget.waiting_reads -= self._waiting_read
            self._waiting_frames, self._waiting_read = None, 0
        if self._forget_waiter is not None:
            self._forget_waiter()
            self._forget_waiter = None
        if self._waiting_until is not None and self._waiting_until.active():
            self._waiting_until.cancel()
        self._waiting_until = None

    def _evicted(self, file_id: int, size: int) -> None:
        """The budget gave this file's room to a peer that held less: it is followed to its end, not kept."""
        self._claims.pop(file_id, None)
        if self._incoming.refuse(file_id):
            self.owner.count("files_evicted")
            log.info("file {file_id} of {size} bytes from {peer} evicted: its room went to a smaller holder",
                     file_id=file_id, size=size, peer=self.describe())

    def _settled(self, file_id: int) -> None:
        claim = self._claims.pop(file_id, None)
        if claim is not None:
            claim.release()

    # -- bytes in

    def dataReceived(self, data: bytes) -> None:
        self.bytes_in += len(data)
        try:
            frames = self._decoder.feed_runs(data)
        except tcp_frames.FrameError as err:
            self.owner.refused(self, str(err))
            self.close(str(err), abort=True)
            return
        self._take(frames, len(data))

    def _take(self, frames: list[tcp_frames.Frame | tcp_frames.DataRun], read: int) -> None:
        """The frames of a read (`read` bytes), in order, until one's file must wait for room in the budget. A run of
        whole chunks goes in one step where its file is in flight and connected (FileAssembler.takes_run), else
        frame by frame like any other."""
        try:
            at = 0
            while at < len(frames):
                if self.state is State.CLOSED:
                    return
                frame = frames[at]
                if isinstance(frame, tcp_frames.DataRun) and not (
                        self.state is State.CONNECTED and self._incoming.takes_run(frame)):
                    frames[at : at + 1] = frame.first_apart()
                    continue
                try:
                    self._frame(frame)
                except _NoRoomYet:
                    self._wait_for_room(frames[at:], read)
                    return
                at += 1
        except tcp_frames.FrameError as err:
            self.owner.refused(self, str(err))
            self.close(str(err), abort=True)
            return
        if self.state is State.CONNECTED:
            self._touch()  # once a read, not once a frame: a megabyte is 64 frames

    def _frame(self, frame: tcp_frames.Frame | tcp_frames.DataRun) -> None:
        if isinstance(frame, tcp_frames.DataRun):  # most bytes come as runs of whole chunks (_take let it in)
            completed = self._incoming.add_run(frame)
            if completed is not None:
                self._file_done(frame.file_id, completed)
            return
        command = frame.command
        if command == tcp_frames.DATA and self.state is State.CONNECTED:  # by far the most frames: tested first
            file_id, whole = self._incoming.add_frame(frame.payload)
            if whole is not None:
                self._file_done(file_id, whole)
        elif self.state is State.SERVER:
            self._server_handshake(frame)
        elif self.state is State.CLIENT:
            if command != tcp_frames.WAZAP:
                raise tcp_frames.FrameError(f"expected wazap, got {command!r}")
            self.peer_idurl = bytes(frame.payload).decode("ascii", "replace")
            self._connected()
        elif command == tcp_frames.OK:
            self._acknowledged(tcp_frames.decode_ok(frame.payload))
        elif command == tcp_frames.ABORT:
            file_id, _reason = tcp_frames.decode_abort(frame.payload)
            self._incoming.drop(file_id)
            self._settled(file_id)
        elif command == tcp_frames.WAZAP:
            pass  # a keep-alive: the read itself counts as activity
        else:
            raise tcp_frames.FrameError(f"unexpected {command!r} after the handshake")

    def _file_done(self, file_id: int, whole: tcp_frames.Chunks) -> None:
        if self._claims:
            self._settled(file_id)
        self._write(tcp_frames.encode_ok(file_id))
        self.owner.file_received(self, whole)

    def _server_handshake(self, frame: tcp_frames.Frame) -> None:
        hello = parse_hello(bytes(frame.payload)) if frame.command == tcp_frames.HELLO else None
        if hello is None:
            raise tcp_frames.FrameError("the first frame is not a valid hello")
        self.address, self.peer_idurl = hello
        self._write(tcp_frames.encode_frame(tcp_frames.WAZAP, self.owner.my_idurl()))
        self._connected()

    def _connected(self) -> None:
        self.state = State.CONNECTED
        self._touch()
        self._arm(self.limits.idle_timeout, "idle")  # in place of the handshake deadline
        self.owner.connection_ready(self)
        self._pump()

    # -- bytes out

    def send_file(
        self, data: tcp_frames.FileBytes, on_written: Callable[[], None] | None = None,
    ) -> defer.Deferred[None]:
        """Queue one file (whole, or in pieces that are never joined); fires when the peer acknowledged it (`o`),
        fails if the connection goes. `on_written` is told once the file no longer waits in this node: written
        whole into the socket's buffers (or failed), which does not wait for the peer's `o`."""
        failure: Exception | None = None
        size = tcp_frames.file_size(data)
        if self.state is State.CLOSED or self.closing:
            failure = ConnectionClosed(f"connection to {self.describe()} is closed")
        elif len(self._queue) >= self.limits.max_queue_files or self._queued_bytes + size > self.limits.max_queue_bytes:
            failure = SendQueueFull(f"send queue to {self.describe()} is full")
        elif size > self.limits.max_file_bytes:
            failure = SendQueueFull(f"a file of {size} bytes is over the cap")
        if failure is not None:
            if on_written is not None:
                on_written()
            return defer.fail(failure)
        file_id = self.owner.next_file_id()
        item = OutgoingFile(file_id, data, size, defer.Deferred(), on_written=on_written)
        self._queue.append(item)
        self._queued_bytes += size
        self._pump()
        return item.done

    def hold_reading(self, until: defer.Deferred[Any]) -> None:
        """Read nothing more from this peer until `until` fires: a receiver whose work piles up (a disk behind)
        pushes back on the sender through TCP instead of buffering what it sends."""
        if self.transport is None or self.state is State.CLOSED:
            return
        self._hold()

        def release(result: Any) -> Any:
            self._unhold()
            return result

        until.addBoth(release)

    def _hold(self) -> None:
        transport: Any = self.transport
        self._read_holds += 1
        if self._read_holds == 1:
            transport.pauseProducing()
            self._pump()  # more files may go out unacknowledged now (_unacked_limit)

    def _unhold(self) -> None:
        self._read_holds -= 1
        if not self._read_holds and self.state is not State.CLOSED:
            self._touch()  # the peer was kept waiting by this side: its quiet time starts now
            transport: Any = self.transport
            transport.resumeProducing()

    def keep_alive(self) -> None:
        if self.state is State.CONNECTED:
            self._touch()  # a connection kept alive on purpose must not idle out on this side either
            self._write(tcp_frames.encode_frame(tcp_frames.WAZAP, self.owner.my_idurl()))

    @property
    def usable(self) -> bool:
        """Handshake done and not closed nor closing: a session a packet can go out on."""
        return self.state is State.CONNECTED and not self.closing

    def queued_bytes(self) -> int:
        return self._queued_bytes

    def _pump(self) -> None:
        """Write the oldest files in order, a step of frames at a time, until the socket pushes back or too many
        await `o`. A step is at most a socket buffer: framing copies each byte once, into a buffer the transport
        sends as it is (a whole file at once would be copied again when it queues behind another)."""
        if self._writing or self.state is not State.CONNECTED:
            return
        self._writing = True
        step = max(tcp_frames.MAX_CHUNK, self.limits.socket_buffer - self.limits.socket_buffer % tcp_frames.MAX_CHUNK)
        try:
            while self._queue and not self._paused and self.state is State.CONNECTED:
                item = self._queue[0]
                if item.written == 0 and len(self._awaiting_ok) >= self._unacked_limit():
                    return
                end = min(item.size, item.written + step)
                self._write_pieces(tcp_frames.file_frames(item.file_id, item.data, item.written, end))
                item.written = end
                if end == item.size:
                    self._queue.popleft()
                    self._queued_bytes -= item.size
                    self._awaiting_ok[item.file_id] = item
                    item.data = b""  # the transport holds all of it now
                    item.ack_timer = self.owner.clock.callLater(self.limits.ack_timeout, self._not_acknowledged, item)
                    item.handed_on()
        finally:
            self._writing = False

    def _unacked_limit(self) -> int:
        """Files written whole and awaiting `o` before the next waits. More while this side holds the reading:
        the peer's `o`s wait unread then, and what this connection writes must not wait for them (a router holds
        a connection until what it sent drains elsewhere, and that may be waiting for this one)."""
        limit = self.limits.max_unacked_files
        return limit * UNREAD_ACKS_FACTOR if self._read_holds else limit

    def _acknowledged(self, file_id: int) -> None:
        item = self._awaiting_ok.pop(file_id, None)
        if item is None:
            return  # an ok for a file not (yet) written: nothing of ours to settle
        if item.ack_timer is not None and item.ack_timer.active():
            item.ack_timer.cancel()
        item.done.callback(None)
        self._pump()

    def _not_acknowledged(self, item: OutgoingFile) -> None:
        """The peer never said `o` (it refused the file, say): the send fails and its place is free again. Not
        while the socket still drains what was written (a slow link): the time runs from its last drain."""
        if self._awaiting_ok.get(item.file_id) is not item:
            return
        quiet = self.owner.clock.seconds() - self._last_drained
        if self._paused or quiet < self.limits.ack_timeout:
            wait = self.limits.ack_timeout - (0.0 if self._paused else quiet)
            item.ack_timer = self.owner.clock.callLater(wait, self._not_acknowledged, item)
            return
        if self._awaiting_ok.pop(item.file_id, None) is item:
            self.owner.count("files_not_acknowledged")
            item.done.errback(SendTimeout(f"{self.describe()} did not acknowledge file {item.file_id} in "
                                          f"{self.limits.ack_timeout:g} s"))
            self._pump()

    def _write(self, data: bytes) -> None:
        self.bytes_out += len(data)
        transport: Any = self.transport
        transport.write(data)

    def _write_pieces(self, pieces: list[bytes | memoryview]) -> None:
        """A step of a file's frames: straight into the socket when it takes them (vectored.py), the rest joined
        into the transport."""
        size = sum(len(piece) for piece in pieces)
        sent = vectored.send_pieces(self.transport, pieces)
        if sent:
            self.bytes_out += sent
            self.owner.count("steps_sent_vectored")  # how often the transport (and its copy) was bypassed
        if sent < size:
            self._write(vectored.rest_of(pieces, sent))

    # IPushProducer: the socket's buffer says when to stop and go on
    def pauseProducing(self) -> None:
        self._paused = True
        if self._write_stall is None and self.state is not State.CLOSED:
            self._write_stall = self.owner.clock.callLater(self.limits.write_stall_timeout, self._write_stalled)

    def resumeProducing(self) -> None:
        self._paused = False
        self._write_flowing()
        self._last_drained = self.owner.clock.seconds()
        self._pump()

    def stopProducing(self) -> None:
        self._paused = True

    def _write_flowing(self) -> None:
        if self._write_stall is not None and self._write_stall.active():
            self._write_stall.cancel()
        self._write_stall = None

    def _write_stalled(self) -> None:
        """The peer read nothing for write_stall_timeout (it may still send keep-alives): what waits to go to
        it would wait for ever, holding its room here and the windows of routes behind it."""
        self._write_stall = None
        if self._paused and self.state is not State.CLOSED:
            self.owner.refused(self, "timeout peer not reading")
            self.close("peer not reading", abort=True)
