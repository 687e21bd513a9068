"""The identity server's TCP receiver (6661): hello -> `wid-server:<host>`, identity files -> `o`."""

from __future__ import annotations

from typing import Any

from twisted.internet import protocol
from twisted.logger import Logger

from bitdust_node.identity.acceptance import IdentityRefused
from bitdust_node.identity.server import IdServer
from bitdust_node.net.clock import TimeSource
from bitdust_node.net.deadline import DeadlineFactory, request_complete
from bitdust_node.wire import tcp_frames
from bitdust_node.wire.identity_xml import MAX_IDENTITY_BYTES

log = Logger()
# a slow client gets this long between answers from us
FRAME_DEADLINE = 20.0


class IdentityReceiver(protocol.Protocol):
    def __init__(self, idserver: IdServer) -> None:
        self.idserver = idserver
        self.decoder = tcp_frames.FrameDecoder()
        self.files = tcp_frames.FileAssembler(max_file_size=MAX_IDENTITY_BYTES, max_files=2)

    def dataReceived(self, data: bytes) -> None:
        try:
            for frame in self.decoder.feed(data):
                self._frame(frame)
        except tcp_frames.FrameError as err:
            log.info("closing identity upload connection: {why}", why=str(err))
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
        transport: Any = self.transport
        if transport is not None:
            transport.loseConnection()


class IdentityReceiverFactory(protocol.Factory):
    noisy = False

    def __init__(self, idserver: IdServer) -> None:
        self.idserver = idserver

    def buildProtocol(self, addr: object) -> IdentityReceiver:
        return IdentityReceiver(self.idserver)


def make_receiver(idserver: IdServer, clock: TimeSource, deadline: float = FRAME_DEADLINE) -> DeadlineFactory:
    return DeadlineFactory(IdentityReceiverFactory(idserver), deadline, clock)
