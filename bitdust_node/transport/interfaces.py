"""The narrow face of the gateway that every other room depends on (DESIGN.md, "rules of the house").

Rooms send, await answers, reply and take packets by command through `PacketNetwork`; a proxy router
takes packets addressed to others through a `Forwarder`, a routed user carries its packets through an
`OutboundRoute`. Each is registered and unregistered with a call: nobody assigns the gateway's attributes.
The values that cross this face (`Inbound`, `Session`) and its one error (`Timeout`) live here too, so a
room, and a fake in a test, need nothing of the gateway itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import attrs
from twisted.internet import defer

from bitdust_node.errors import BitDustError
from bitdust_node.wire import packet as wire
from bitdust_node.wire.identity_xml import Identity
from bitdust_node.wire.packet import Packet
from bitdust_node.wire.tcp_frames import Chunks, FileBytes

# official nodes wait 15 s (services/gateway/p2p-timeout), the captured ones 20 s
DEFAULT_TIMEOUT = 20.0


class Timeout(BitDustError):
    """No answer came in time."""

    http_status = 504
    exit_code = 1


class Session(Protocol):
    """The live connection a packet came in on: a reply or a relayed packet can go back on it."""

    peer_idurl: str

    @property
    def usable(self) -> bool: ...

    def send_file(self, data: FileBytes, on_written: Callable[[], None] | None = None) -> defer.Deferred[None]:
        """Fires on the peer's `o`; `on_written` is told once the file no longer waits in this node."""

    def hold_reading(self, until: defer.Deferred[Any]) -> None: ...


@attrs.frozen
class Inbound:
    """A verified packet and what the gateway knows of how it came."""

    packet: Packet
    creator: Identity
    for_me: bool
    # the bytes as they came: whole, or split around the payload's text (wire.FileParts)
    raw: wire.FileParts
    # the identity an Identity packet carries (parsed once, by the gateway), else None
    carried: Identity | None = None
    # the connection it came in on, when a transport knows it (a relayed packet has none)
    session: Session | None = None


Handler = Callable[[Inbound], object]
# takes a verified packet addressed to someone else; True when it took it (a proxy router, section 4.3)
Forwarder = Callable[[Inbound], bool]


class OutboundRoute(Protocol):
    """Carries my packets for me when I cannot reach peers directly (a proxy router, section 4.4)."""

    def send(
        self, packet: Packet, data: FileBytes, remote: Identity, wide: bool, timeout: float | None,
    ) -> defer.Deferred[None] | None:
        """The delivery, or None when this packet goes out directly (to the router itself, say)."""


class PacketNetwork(Protocol):
    """What rooms ask of the gateway: signed packets out, answers awaited, packets in by command."""

    def new_packet_id(self) -> str:
        """A fresh PacketID as official nodes make them."""

    def outbox(
        self, command: str, remote_id: str, payload: bytes, packet_id: str | None = None,
        owner_id: str | None = None, payload_is_base64: bool = False,
    ) -> Packet:
        """A packet from me, signed with my master key (safe in a worker thread)."""

    def send(
        self, packet: Packet, remote: Identity, wide: bool = False, timeout: float | None = None,
    ) -> defer.Deferred[None]:
        """Hand the packet to the peer (through my route when I have one); fires when a transport took it."""

    def send_data(
        self, data: FileBytes, remote: Identity, wide: bool = False, on_written: Callable[[], None] | None = None,
    ) -> defer.Deferred[None]:
        """A serialized packet (mine or one forwarded unchanged) straight to the peer's contacts; `on_written` is
        told (at least once) when it no longer waits in this node."""

    def request(
        self, packet: Packet, remote: Identity, wide: bool = False, timeout: float = DEFAULT_TIMEOUT,
        on_sent: Callable[[], object] | None = None,
    ) -> defer.Deferred[Packet]:
        """Send, then fire with the answer or fail with Timeout; `on_sent` is called once a transport delivered the
        packet (a sender paces itself by it: a packet's bytes are the transport's, not the sender's, until then)."""

    def reply(
        self, request: Inbound, command: str, payload: bytes = b"", wide: bool = False,
        packet_id: str | None = None, owner_id: str | None = None,
    ) -> defer.Deferred[None]:
        """Ack, Fail or another answer to a request, back the way it came when that is still open."""

    def register(self, command: str, handler: Handler) -> Callable[[], None]:
        """Handle verified packets of this command; the call returned unregisters."""

    def file_received(self, data: bytes | Chunks, session: Session | None = None) -> defer.Deferred[None]:
        """Take in a packet's bytes as if a transport delivered them (one unwrapped from a relay)."""

    def fail_pending(self, packet_id: str, remote_id: str, error: Exception) -> bool:
        """Fail the awaited answer to the packet with this PacketID sent to `remote_id`."""

    def fail_pending_to(self, remote_id: str, error: Exception) -> int:
        """Fail every awaited answer from `remote_id` (a peer given up on, its work to go elsewhere)."""

    def add_forwarder(self, forwarder: Forwarder) -> Callable[[], None]:
        """Offer verified packets addressed to others to `forwarder`; the call returned withdraws it."""

    def use_route(self, route: OutboundRoute) -> Callable[[], None]:
        """Carry my packets through `route` until the call returned is made."""
