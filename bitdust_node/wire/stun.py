"""The UDP datagrams port's STUN-like exchange (official `udp.py`): one byte of version `1`, one of command.

`1s` asks "what address do you see me at?"; `1m<ip>:<port>` answers it with the sender's address as the
answering node saw it. Pure functions over bytes.
"""

from __future__ import annotations

import ipaddress

VERSION = b"1"
REQUEST = b"1s"
REPLY_PREFIX = b"1m"
# `1m` + the longest IPv6 text (45) + `:65535`: anything longer is not an answer
MAX_REPLY_BYTES = 2 + 45 + 6


class StunFormatError(ValueError):
    """A datagram that is not a well-formed `1m<ip>:<port>` answer."""


def is_request(data: bytes) -> bool:
    return data == REQUEST


def encode_reply(host: str, port: int) -> bytes:
    """The answer to a `1s` from (host, port), byte for byte as official nodes write it."""
    return b"%s%s:%d" % (REPLY_PREFIX, host.encode("ascii"), port)


def parse_reply(data: bytes) -> tuple[str, int]:
    """(ip, port) from a `1m<ip>:<port>` answer; StunFormatError for anything else."""
    if len(data) > MAX_REPLY_BYTES:
        raise StunFormatError(f"{len(data)} bytes is too long for an answer")
    if not data.startswith(REPLY_PREFIX):
        raise StunFormatError("not a 1m answer")
    try:
        text = data[len(REPLY_PREFIX):].decode("ascii")
    except UnicodeDecodeError:
        raise StunFormatError("not ASCII") from None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise StunFormatError(f"no port in {text!r}")
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise StunFormatError(f"{host!r} is not an IP address") from None
    return str(ip), int(port)
