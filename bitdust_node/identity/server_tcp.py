"""The identity server's TCP receiver (6661): hello -> `wid-server:<host>`, identity files -> `o`.

An identity file that comes in more than one chunk holds its bytes against the node's receive budget
(net/budget.py) under the sender's address until it is whole; one that finds no room, or whose room is
taken back for a smaller holder, closes its connection. The port takes at most so many connections, in all
and from one address (net/connection_caps.py)."""

from __future__ import annotations

from typing import Any

from twisted.internet import protocol
from twisted.logger import Logger

from bitdust_node.identity.acceptance import IdentityRefused
from bitdust_node.identity.server import UPLOAD_BUDGET_KIND, IdServer
from bitdust_node.net.budget import Claim, ReceiveBudget
from bitdust_node.net.clock import TimeSource
from bitdust_node.net.connection_caps import ConnectionCaps
from bitdust_node.net.deadline import DeadlineFactory, request_complete
from bitdust_node.wire import tcp_frames
from bitdust_node.wire.identity_xml import MAX_IDENTITY_BYTES

log = Logger()
# a slow client gets this long between answers from us
FRAME_DEADLINE = 20.0


class IdentityReceiver(protocol.Protocol):
    def __init__(self, idserver: IdServer, budget: ReceiveBudget | None = None) -> None:
        self.idserver = idserver
        self.budget = budget if budget is not None else ReceiveBudget()
        self.decoder = tcp_frames.FrameDecoder()
        self.files = tcp_frames.FileAssembler(max_file_size=MAX_IDENTITY_BYTES, max_files=2, admit=self._admit)
        # what each unfinished file holds of the budget
        self._claims: dict[int, Claim] = {}
        self._host = ""
        # what a closing connection still delivers is not read
        self._closing = False

    def connectionMade(self) -> None:
        peer: Any = self.transport.getPeer() if self.transport is not None else None
        self._host = str(getattr(peer, "host", ""))

    def connectionLost(self, reason: Any = None) -> None:
        for claim in self._claims.values():
            claim.release()
        self._claims.clear()

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            for frame in self.decoder.feed(data):
                if self._closing:
                    return
                self._frame(frame)
        except tcp_frames.FrameError as err:
            log.info("closing identity upload connection: {why}", why=str(err))
            self._close()

    def _admit(self, file_id: int, size: int) -> int | None:
        """Room in the budget for a file coming in chunks; without room the upload is refused as bad input
        (FrameError: the connection closes), not followed to its end as a transport's file would be."""
        claim = self.budget.claim(self._host, size, UPLOAD_BUDGET_KIND, on_evicted=self._evicted)
        if claim is None:
            raise tcp_frames.FrameError(f"no room in the receive budget for an upload of {size} bytes")
        self._claims[file_id] = claim
        return size

    def _evicted(self) -> None:
        log.info("identity upload from {host} dropped: its room went to a smaller holder", host=self._host)
        self._close()

    def _frame(self, frame: tcp_frames.Frame) -> None:
        if frame.command == tcp_frames.HELLO:
            answer = b"id-server:" + self.idserver.host.encode("utf-8")
            request_complete(self.transport)
            self._send(tcp_frames.encode_frame(tcp_frames.WAZAP, answer))
        elif frame.command == tcp_frames.DATA:
            chunk = tcp_frames.decode_data(frame.payload)
            data = self.files.add(chunk)
            if data is not None:
                claim = self._claims.pop(chunk.file_id, None)
                if claim is not None:
                    claim.release()
                self._file(chunk.file_id, data)
        elif frame.command == tcp_frames.ABORT:
            self._close()

    def _file(self, file_id: int, data: bytes) -> None:
        request_complete(self.transport)
        try:
            self.idserver.receive(data)
        except IdentityRefused as err:
            log.info("identity refused over TCP: {why}", why=err.message)
            self._send(tcp_frames.encode_frame(tcp_frames.ABORT, err.message.encode()[:200]))
            return
        self._send(tcp_frames.encode_ok(file_id))

    def _send(self, data: bytes) -> None:
        transport: Any = self.transport
        transport.write(data)

    def _close(self) -> None:
        self._closing = True
        transport: Any = self.transport
        if transport is not None:
            transport.loseConnection()


class IdentityReceiverFactory(protocol.Factory):
    noisy = False

    def __init__(self, idserver: IdServer, budget: ReceiveBudget | None = None) -> None:
        self.idserver = idserver
        self.budget = budget if budget is not None else ReceiveBudget()

    def buildProtocol(self, addr: object) -> IdentityReceiver:
        return IdentityReceiver(self.idserver, self.budget)


def make_receiver(
    idserver: IdServer, clock: TimeSource, deadline: float = FRAME_DEADLINE, budget: ReceiveBudget | None = None,
) -> DeadlineFactory:
    """The receiver as the node runs it: the node's receive budget (a budget of its own without one), a deadline
    for every file, and caps on the port's connections in all and from one address."""
    return DeadlineFactory(IdentityReceiverFactory(idserver, budget), deadline, clock, ConnectionCaps())
