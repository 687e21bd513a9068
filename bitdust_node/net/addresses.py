"""This machine's addresses, and the one address peers should use to reach a service bound here."""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct

_SIOCGIFADDR = 0x8915
ANY_ADDRESSES = frozenset({"0.0.0.0", "::", ""})


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


def peer_facing_address(bind_address: str, known: list[str] | None = None) -> str:
    """The bind address itself, or for a wildcard bind the first non-loopback local address."""
    if bind_address not in ANY_ADDRESSES:
        return bind_address
    addresses = known if known else local_addresses()
    return addresses[0] if addresses else "127.0.0.1"
