"""NAT-PMP (RFC 6886) datagrams: asking a home router, on UDP 5351 of the gateway, for its outside
address and for a port mapping. Pure functions over bytes; big-endian fields throughout."""

from __future__ import annotations

import ipaddress
import struct

import attrs

PORT = 5351
VERSION = 0
OP_EXTERNAL = 0
OPS = {"UDP": 1, "TCP": 2}
ANSWER = 128
RESULTS = {
    0: "success",
    1: "unsupported version",
    2: "refused (not authorized)",
    3: "network failure",
    4: "out of resources",
    5: "unsupported opcode",
}
EXTERNAL_ANSWER_BYTES = 12
MAP_ANSWER_BYTES = 16


class NatPmpError(ValueError):
    """A datagram that is not the answer asked for, or a router's refusal."""


@attrs.frozen
class ExternalAnswer:
    epoch: int
    ip: str


@attrs.frozen
class MapAnswer:
    epoch: int
    internal_port: int
    external_port: int
    lifetime: int


def external_request() -> bytes:
    return struct.pack("!BB", VERSION, OP_EXTERNAL)


def map_request(protocol: str, internal_port: int, external_port: int, lifetime: int) -> bytes:
    """Ask for (or with lifetime 0 and external port 0, remove) a mapping of `protocol` ("TCP"/"UDP")."""
    return struct.pack("!BBHHHI", VERSION, OPS[protocol], 0, internal_port, external_port, lifetime)


def _header(data: bytes, size: int, op: int) -> int:
    if len(data) != size:
        raise NatPmpError(f"{len(data)} bytes, expected {size}")
    version, answer_op, result = struct.unpack("!BBH", data[:4])
    if version != VERSION or answer_op != ANSWER + op:
        raise NatPmpError(f"not an answer to opcode {op}")
    if result != 0:
        raise NatPmpError(f"the router says: {RESULTS.get(result, f'result {result}')}")
    epoch: int = struct.unpack("!I", data[4:8])[0]
    return epoch


def parse_external(data: bytes) -> ExternalAnswer:
    epoch = _header(data, EXTERNAL_ANSWER_BYTES, OP_EXTERNAL)
    return ExternalAnswer(epoch, str(ipaddress.IPv4Address(data[8:12])))


def parse_map(data: bytes, protocol: str) -> MapAnswer:
    epoch = _header(data, MAP_ANSWER_BYTES, OPS[protocol])
    internal, external, lifetime = struct.unpack("!HHI", data[8:16])
    return MapAnswer(epoch, internal, external, lifetime)
