"""Where peers reach this node: the contact list written into its identity."""

from __future__ import annotations

from bitdust_node.net.addresses import peer_facing_address
from bitdust_node.settings import Settings


def my_contacts(settings: Settings) -> tuple[str, ...]:
    host = peer_facing_address(str(settings.get("services/network/bind-address")))
    port = settings.get("services/tcp-connections/tcp-port")
    return (f"tcp://{host}:{port}",)
