"""What can go wrong when sending to a peer: each a kind the callers can tell apart."""

from __future__ import annotations

from bitdust_node.errors import BitDustError


class TransportError(BitDustError):
    """A packet could not be handed to the peer (a 503 to REST callers, exit 1 in the CLI)."""

    http_status = 503
    exit_code = 1


class ConnectionClosed(TransportError):
    """The connection went away before the peer acknowledged the packet."""


class SendQueueFull(TransportError):
    """The bounded send queue to that peer is full: the caller must slow down (back-pressure)."""


class Unreachable(TransportError):
    """The peer could not be dialed (refused, timed out, or backing off after failures)."""


class NoContacts(TransportError):
    """The peer's identity names no contact this node can use."""


class SendTimeout(TransportError):
    """The peer took the whole file but never acknowledged it (it refused it, or is stuck)."""
