"""The bounds of the TCP transport: every wait has a timeout, every queue a size."""

from __future__ import annotations

import attrs


@attrs.frozen
class TcpLimits:
    # official nodes give a dialing or greeting peer 10 s too
    handshake_timeout: float = 10.0
    connect_timeout: float = 10.0
    # official nodes never close idle connections; keep-alives (every 10 s from routed users) keep them open
    idle_timeout: float = 300.0
    # a peer that leaves a file half sent and says nothing more for this long is dropped, and what it held goes
    stall_timeout: float = 60.0
    # a file written whole that the peer never says `o` to fails after this long, and frees its place
    ack_timeout: float = 120.0
    # a peer that takes nothing of what we write for this long (the socket's buffers full) is dropped: what
    # waited to go to it fails and frees what it held (a router's windows, the send queue)
    write_stall_timeout: float = 120.0
    # a file the receive budget has no room for waits this long (its connection not read) before it may take room
    # back from larger holders or is refused
    admission_wait: float = 10.0
    # a signed packet as one file: large Data packets stay well below this
    max_file_bytes: int = 64 * 1024 * 1024
    # official receivers drop a peer with 40 incoming files open at once; so do we
    max_incoming_files: int = 39
    max_incoming_bytes: int = 128 * 1024 * 1024
    # official senders have at most 20 files in flight per connection
    max_unacked_files: int = 20
    max_queue_files: int = 1000
    max_queue_bytes: int = 256 * 1024 * 1024
    # read and write step of a connection, and its kernel send and receive buffers
    socket_buffer: int = 1024 * 1024
    max_connections: int = 2048
    max_connections_per_host: int = 64
    # backoff after failed dials: 1, 2, 4 ... 60 s, each with +-25 % jitter; an address not dialed again within
    # backoff_max of its backoff's end is forgotten (its next failure starts again at 1 s)
    backoff_first: float = 1.0
    backoff_max: float = 60.0
    # the addresses whose failed dials are remembered: peers can make the node dial any contact, so the oldest go
    max_backoff_addresses: int = 4096
