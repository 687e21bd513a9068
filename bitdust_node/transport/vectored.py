"""Frames written into a TCP socket from their pieces in one vectored send, around the Twisted transport's buffer.

The transport takes bytes only and joins what waits in it: a file's frames would be copied into one buffer each
step (a megabyte packet's payload, once more, on the reactor's thread). While nothing waits in the transport,
sendmsg hands the kernel the frame openings and views of the payload as they are; what the socket does not take
then goes to the transport, joined, behind which anything written later queues as before.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from twisted.internet import tcp

# the most buffers one sendmsg takes (IOV_MAX); a longer step goes out as its first this many, the rest joined
MAX_PIECES = max(16, min(os.sysconf("SC_IOV_MAX") if "SC_IOV_MAX" in os.sysconf_names else 1024, 1024))


def send_pieces(transport: Any, pieces: Sequence[bytes | memoryview]) -> int:
    """Bytes of `pieces` written straight into the socket: 0 unless the transport is a plain TCP one, not closing
    (an aborted one stays `connected` until the next turn) and with nothing waiting in it (that goes first), and
    the socket takes some now."""
    if not isinstance(transport, tcp.Connection) or getattr(transport, "TLS", False):
        return 0  # a TLS layer writes through its own protocol: never around it
    if not transport.connected or transport.disconnecting or getattr(transport, "_aborting", False) \
            or transport._tempDataLen or len(transport.dataBuffer) > transport.offset:
        return 0
    try:
        return int(transport.socket.sendmsg(pieces[:MAX_PIECES]))
    except (OSError, AttributeError):
        # full (EAGAIN), interrupted, or broken (the transport's own write meets and reports it); no sendmsg here
        return 0


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
