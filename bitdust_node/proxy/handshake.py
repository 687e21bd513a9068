"""What a routed user says to its router (PROTOCOL-P2P.md 4.2): my identity (Ack awaited), RequestService
`service_proxy_server` with my identity as it is without a router, an Identity that checks a quiet route,
and CancelService when I leave. Each is a request with a timeout; a refusal fails with RouterRefused.
"""

from __future__ import annotations

import json

from twisted.internet import defer

from bitdust_node.errors import BitDustError
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.identity.my_identity import MyIdentity
from bitdust_node.transport.interfaces import PacketNetwork
from bitdust_node.wire.identity_xml import Identity
from bitdust_node.wire.packet import Packet

ROUTE_SERVICE = "service_proxy_server"
# PacketIDs of my identity to a router, as official routed users name them
IDENTITY_PACKET_PREFIX = "proxy_receiver:"


class RouterRefused(BitDustError):
    """The router answered, but not yes."""


def _compact_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")


class RouterHandshake:
    """The requests of the routed user to a router (RouterAsker of the receiver)."""

    def __init__(
        self,
        gateway: PacketNetwork,
        me: MyIdentityHolder,
        ack_timeout: float = 15.0,
        service_timeout: float = 15.0,
        check_timeout: float = 10.0,
        cancel_timeout: float = 5.0,
    ) -> None:
        self.gateway = gateway
        self.me = me
        self.ack_timeout = ack_timeout
        self.service_timeout = service_timeout
        self.check_timeout = check_timeout
        self.cancel_timeout = cancel_timeout
        # my identity with my own contacts, as the transport started: what a router is given to reach me
        self._own: MyIdentity | None = None

    def remember_own_identity(self) -> None:
        """Taken before any router's contacts are published in place of mine."""
        self._own = self.me.require()

    def introduce(self, router: Identity) -> defer.Deferred[None]:
        """My identity to the router; fires on its Ack."""
        answer = self._identity_to(router, wide=True, timeout=self.ack_timeout)

        def acked(packet: Packet) -> None:
            if packet.command != "Ack":
                raise RouterRefused("Fail to my identity: " + packet.payload.decode("utf-8", "replace"))

        return answer.addCallback(acked)

    def request_route(self, router: Identity) -> defer.Deferred[None]:
        """RequestService `service_proxy_server`; fires when the router accepted."""
        own = self._own or self.me.require()
        body = {"name": ROUTE_SERVICE, "payload": {"identity": own.xml.decode("utf-8")}}
        packet = self.gateway.outbox("RequestService", router.sources[0], _compact_json(body))
        answer = self.gateway.request(packet, router, timeout=self.service_timeout)

        def accepted(packet: Packet) -> None:
            text = packet.payload.decode("utf-8", "replace")
            if packet.command != "Ack" or text.startswith("rejected"):
                raise RouterRefused(f"{packet.command} {text[:200]}")

        return answer.addCallback(accepted)

    def check(self, router: Identity) -> defer.Deferred[None]:
        """My identity to the router again: any answer says it still routes me."""
        return self._identity_to(router, wide=False, timeout=self.check_timeout).addCallback(lambda _: None)

    def cancel_route(self, router: Identity) -> defer.Deferred[None]:
        """CancelService `service_proxy_server`; fires when answered or not (never fails)."""
        packet = self.gateway.outbox("CancelService", router.sources[0], _compact_json({"name": ROUTE_SERVICE,
                                                                                         "payload": {}}))
        answer = self.gateway.request(packet, router, timeout=self.cancel_timeout)
        return answer.addCallbacks(lambda _: None, lambda _f: None)

    def _identity_to(self, router: Identity, wide: bool, timeout: float) -> defer.Deferred[Packet]:
        me = self.me.require()
        packet = self.gateway.outbox("Identity", router.sources[0], me.xml,
                                     packet_id=IDENTITY_PACKET_PREFIX + self.gateway.new_packet_id())
        return self.gateway.request(packet, router, wide=wide, timeout=timeout)
