"""Every BitDust service of SPEC.md: real ones come from their modules, the rest wait as not built."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from bitdust_node.services.base import Service

NOT_BUILT = "not built yet in bitdust-node"

# name -> dependencies, as SPEC.md lists them: the one place a service's dependencies are declared
DEPENDS: dict[str, tuple[str, ...]] = {
    "network": (),
    "udp_datagrams": ("network",),
    "tcp_connections": ("network",),
    "gateway": ("network",),
    "entangled_dht": ("udp_datagrams",),
    "my_ip_port": ("entangled_dht", "udp_datagrams"),
    "identity_server": ("network",),
    "identity_propagate": ("network",),
    "tcp_transport": ("tcp_connections", "gateway"),
    "p2p_hookups": ("gateway", "identity_propagate", "tcp_transport"),
    "nodes_lookup": ("entangled_dht", "p2p_hookups"),
    "proxy_server": ("p2p_hookups", "entangled_dht"),
    "proxy_transport": ("identity_propagate", "nodes_lookup", "tcp_transport"),
    "private_messages": ("p2p_hookups", "entangled_dht"),
    "supplier": ("p2p_hookups", "entangled_dht"),
    "customer": ("p2p_hookups", "nodes_lookup"),
}

# a service that stays off while another is enabled (SPEC: never both ON)
CONFLICTS: dict[str, tuple[str, ...]] = {"proxy_server": ("proxy_transport",)}

# modules of this package that hold machinery, not services
_MACHINERY = {"base", "catalog", "graph", "machine"}


def _placeholder(name: str) -> type[Service]:
    return type(f"Unbuilt_{name}", (Service,), {"name": name, "not_built": NOT_BUILT})


def discover() -> dict[str, type[Service]]:
    """The service classes by name: a real class from this package replaces its placeholder."""
    found: dict[str, type[Service]] = {n: _placeholder(n) for n in DEPENDS}
    package = importlib.import_module(__package__ or "bitdust_node.services")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name in _MACHINERY:
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Service) and cls.__module__ == module.__name__ and cls.name:
                if cls.name not in DEPENDS:
                    raise LookupError(f"service {cls.name} of {module.__name__} is not in catalog.DEPENDS")
                found[cls.name] = cls
    return found
