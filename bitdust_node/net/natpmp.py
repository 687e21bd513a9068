"""A NAT-PMP client (RFC 6886) for routers that offer it instead of UPnP: the same blocking IgdClient calls
(run in a worker thread), over UDP to port 5351 of the default gateway, retried as the RFC says but
bounded (0.25 s, doubling, 4 tries)."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from typing import Any, TypeVar

from bitdust_node.net.upnp import Port, UpnpError
from bitdust_node.wire import natpmp

TRIES = 4
FIRST_WAIT = 0.25
# one answer is 16 bytes; anything bigger is not one
MAX_ANSWER = 64
ROUTES = "/proc/net/route"


def default_gateway(routes: str = ROUTES) -> str:
    """The IPv4 default gateway, from the kernel's routing table."""
    try:
        with open(routes, encoding="ascii") as table:
            for line in table.readlines()[1:]:
                fields = line.split()
                if len(fields) > 2 and fields[1] == "00000000" and fields[2] != "00000000":
                    return socket.inet_ntoa(struct.pack("<I", int(fields[2], 16)))
    except (OSError, ValueError):
        pass
    raise UpnpError("no default gateway to ask by NAT-PMP")


Exchange = Callable[[bytes, float], bytes]
T = TypeVar("T")


def _parsed(parse: Callable[..., T], data: bytes, *args: Any) -> T:
    try:
        return parse(data, *args)
    except natpmp.NatPmpError as exc:
        raise UpnpError(f"NAT-PMP: {exc}") from None


class NatPmpClient:
    name = "NAT-PMP"

    def __init__(self, gateway: Callable[[], str] = default_gateway, exchange: Exchange | None = None) -> None:
        self._gateway = gateway
        self._exchange = exchange
        self._socket: socket.socket | None = None
        self._external = ""

    def discover(self) -> str:
        gateway = self._gateway()
        if self._exchange is None:
            if self._socket is not None:
                self._socket.close()
            self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._socket.connect((gateway, natpmp.PORT))
        answer = _parsed(natpmp.parse_external, self._ask(natpmp.external_request()))
        self._external = answer.ip
        return self._socket.getsockname()[0] if self._socket is not None else gateway

    def external_ip(self) -> str:
        return self._external

    def add_mapping(self, port: Port, lan_ip: str, description: str, lease: int) -> None:
        number, protocol = port
        answer = _parsed(natpmp.parse_map, self._ask(natpmp.map_request(protocol, number, number, lease)), protocol)
        if answer.external_port != number:
            # peers are told my port number: another one is of no use, so it goes back at once
            self._ask(natpmp.map_request(protocol, number, 0, 0))
            raise UpnpError(f"the router offered {protocol} port {answer.external_port}, not {number}")

    def remove_mapping(self, port: Port) -> None:
        number, protocol = port
        _parsed(natpmp.parse_map, self._ask(natpmp.map_request(protocol, number, 0, 0)), protocol)

    def _ask(self, request: bytes) -> bytes:
        wait = FIRST_WAIT
        for _ in range(TRIES):
            try:
                return self._once(request, wait)
            except TimeoutError:
                wait *= 2
        raise UpnpError("no NAT-PMP router answered")

    def _once(self, request: bytes, wait: float) -> bytes:
        if self._exchange is not None:
            return self._exchange(request, wait)
        if self._socket is None:
            raise UpnpError("no NAT-PMP router discovered")
        self._socket.settimeout(wait)
        self._socket.send(request)
        try:
            return self._socket.recv(MAX_ANSWER)
        except ConnectionRefusedError:
            raise UpnpError("the gateway does not speak NAT-PMP") from None
