"""Frames written into a TCP socket from their pieces in one vectored send, around the Twisted transport's buffer.

The transport takes bytes only and joins what waits in it: a file's frames would be copied into one buffer each
step (a megabyte packet's payload, once more, on the reactor's thread). While nothing waits in the transport,
sendmsg hands the kernel the frame openings and views of the payload as they are; what the socket does not take
then goes to the transport, joined, behind which anything written later queues as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet import tcp

# Linux's IOV_MAX: sendmsg refuses a longer list
MAX_PIECES = 1024


def send_pieces(transport: Any, pieces: Sequence[bytes | memoryview]) -> int:
    """Bytes of `pieces` written straight into the socket: 0 unless the transport is a plain TCP one with nothing
    waiting in it (what waits goes first) and the socket takes some now."""
    if not isinstance(transport, tcp.Connection) or len(pieces) > MAX_PIECES:
        return 0
    if not transport.connected or transport.disconnecting or transport._tempDataLen \
            or len(transport.dataBuffer) > transport.offset:
        return 0
    try:
        return int(transport.socket.sendmsg(pieces))
    except OSError:
        return 0  # full (EAGAIN), interrupted, or broken: the transport's own write meets and reports the last


def rest_of(pieces: Sequence[bytes | memoryview], sent: int) -> bytes:
    """The bytes of `pieces` after the first `sent`, joined."""
    rest: list[bytes | memoryview] = []
    at = 0
    for piece in pieces:
        following = at + len(piece)
        if following > sent:
            rest.append(piece if at >= sent else memoryview(piece)[sent - at :])
        at = following
    return b"".join(rest)
