"""Where peers reach this node: the contact list written into its identity."""

from __future__ import annotations

from bitdust_node.net.addresses import peer_facing_address
from bitdust_node.settings import Settings


def my_contacts(settings: Settings, host: str | None = None) -> tuple[str, ...]:
    """`tcp://<host>:<tcp port>`: `host` is my outside address (service_network knows it), else my own."""
    host = host or peer_facing_address(str(settings.get("services/network/bind-address")))
    port = settings.get("services/tcp-connections/tcp-port")
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address in a contact, as in a URL
    return (f"tcp://{host}:{port}",)
