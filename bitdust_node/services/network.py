"""service_network: the root of the graph; knows the node's listen address and local addresses."""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct

from twisted.internet import defer

from bitdust_node.services.base import Service

_SIOCGIFADDR = 0x8915


def _ipv4_of(interface: str) -> str | None:
    """The IPv4 address of one interface (Linux ioctl; no packet leaves the machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("256s", interface.encode()[:15])
        try:
            reply = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)
        except OSError:
            return None
    return socket.inet_ntoa(reply[20:24])


def local_addresses() -> list[str]:
    """IPv4 addresses of this machine's interfaces, non-loopback first."""
    found = {addr for _, name in socket.if_nameindex() if (addr := _ipv4_of(name))}
    return sorted(found, key=lambda a: (ipaddress.ip_address(a).is_loopback, a))


class NetworkService(Service):
    name = "network"

    def start(self) -> defer.Deferred[None]:
        self.addresses = local_addresses()
        return defer.succeed(None)

    def status(self) -> dict[str, object]:
        return {
            "bind_address": self.node.bind_address,
            "local_addresses": list(getattr(self, "addresses", [])),
            "external_address": self.external_address(),
        }

    def external_address(self) -> str:
        """The address peers should use: the bind address, or the first non-loopback one."""
        bind = self.node.bind_address
        if bind not in ("0.0.0.0", "::"):
            return bind
        addresses = getattr(self, "addresses", None) or local_addresses()
        return addresses[0] if addresses else "127.0.0.1"
