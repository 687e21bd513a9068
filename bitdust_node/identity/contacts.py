"""Where peers reach this node: the contact list written into its identity.

The TCP transport is not built yet; its issue may refine this one function.
"""

from __future__ import annotations

from typing import Any

from bitdust_node.services.network import local_addresses


def external_host(node: Any) -> str:
    bind = node.bind_address
    if bind not in ("0.0.0.0", "::", ""):
        return str(bind)
    addresses = local_addresses()
    return addresses[0] if addresses else "127.0.0.1"


def my_contacts(node: Any) -> tuple[str, ...]:
    port = node.settings.get("services/tcp-connections/tcp-port")
    return (f"tcp://{external_host(node)}:{port}",)
