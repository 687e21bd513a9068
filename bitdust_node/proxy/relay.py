"""What routers and routed users put inside RelayOut, RelayIn, RelayAck and RelayFail (PROTOCOL-P2P.md 4.4, 4.5).

Each payload is an encrypted block (crypto/block.py) to the other side's public key: RelayOut carries
an envelope `{"a","f","i","p","r","t","w"}` around the serialized packet to forward; RelayIn carries the
forwarded packet byte for byte; RelayAck and RelayFail carry the result
`{"command","error","from","keep_alive","packet_id","response_timeout","to","wide"}`.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
from cryptography.hazmat.primitives.asymmetric import rsa

from bitdust_node.crypto import block as blocks
from bitdust_node.wire import peer_json

ROUTED_OUTGOING = "routed outgoing data"
ROUTED_INCOMING = "routed incoming data"
RELAY_COMMANDS = frozenset({"RelayOut", "RelayIn", "RelayAck", "RelayFail"})
# a relayed Data packet of the largest file piece, in base64 inside JSON inside a packet
MAX_RELAYED_BYTES = 96 * 1024 * 1024

# the errors of section 4.4; the last one is ours (official routers have no rate limits)
DELIVERY_FAILED = "routed packet delivery failed"
TRANSFER_FAILED = "routed packet transfer failed"
ROUTE_NOT_EXIST = "route not exist"
ROUTE_CLOSED = "route already closed"
INVALID_PACKET = "invalid packet"
SIGNATURE_INVALID = "signature invalid"
IDURL_NOT_FOUND = "sender or receiver IDURL was not found"
RATE_LIMITED = "route rate limit exceeded"


class RelayFormatError(ValueError):
    """A relay payload that cannot be opened or read."""


def _compact(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _timeout_value(timeout: float | None) -> int | float | None:
    # official senders write whole seconds as integers (`"i":30`)
    if timeout is None:
        return None
    return int(timeout) if float(timeout).is_integer() else timeout


@attrs.frozen
class Envelope:
    """RelayOut's plaintext: a packet a routed user asks its router to send on."""

    sender: str
    receiver: str
    packet: bytes
    wide: bool = False
    response_timeout: float | None = None
    keep_alive: bool = True
    retry: bool = False


def encode_envelope(envelope: Envelope) -> bytes:
    return _compact({
        "a": envelope.keep_alive,
        "f": envelope.sender,
        "i": _timeout_value(envelope.response_timeout),
        "p": envelope.packet.decode("latin-1"),
        "r": envelope.retry,
        "t": envelope.receiver,
        "w": envelope.wide,
    })


def _object(data: bytes, what: str) -> dict[str, Any]:
    try:
        fields = peer_json.loads(data, MAX_RELAYED_BYTES, max_depth=1)
    except peer_json.PeerJsonError as err:
        raise RelayFormatError(f"{what} is not JSON: {err}") from None
    if not isinstance(fields, dict):
        raise RelayFormatError(f"{what} is not a JSON object")
    return fields


def _flag(fields: dict[str, Any], key: str, default: bool) -> bool:
    value = fields.get(key, default)
    if not isinstance(value, bool):
        raise RelayFormatError(f"relay field {key!r} must be true or false")
    return value


def _timeout(fields: dict[str, Any], key: str) -> float | None:
    value = fields.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
        raise RelayFormatError(f"relay field {key!r} must be a number of seconds or null")
    return value


def decode_envelope(data: bytes) -> Envelope:
    fields = _object(data, "relay envelope")
    texts = {k: fields.get(k) for k in ("f", "t", "p")}
    if not all(isinstance(v, str) and v for v in texts.values()):
        raise RelayFormatError("relay envelope needs the texts f, t and p")
    try:
        packet = str(fields["p"]).encode("latin-1")
    except UnicodeEncodeError:
        raise RelayFormatError("relayed packet text is not latin-1") from None
    return Envelope(
        sender=str(fields["f"]),
        receiver=str(fields["t"]),
        packet=packet,
        wide=_flag(fields, "w", False),
        response_timeout=_timeout(fields, "i"),
        keep_alive=_flag(fields, "a", True),
        retry=_flag(fields, "r", False),
    )


@attrs.frozen
class RelayResult:
    """RelayAck/RelayFail's plaintext: what became of a RelayOut (`command` is the relayed packet's command);
    `error` is empty for RelayAck."""

    command: str
    packet_id: str
    sender: str
    receiver: str
    error: str = ""
    wide: bool = False
    response_timeout: float | None = None
    keep_alive: bool = True


def result_for(envelope: Envelope, command: str, packet_id: str, error: str = "") -> RelayResult:
    return RelayResult(command, packet_id, envelope.sender, envelope.receiver, error, envelope.wide,
                       envelope.response_timeout, envelope.keep_alive)


def encode_result(result: RelayResult) -> bytes:
    return _compact({
        "command": result.command,
        "error": result.error,
        "from": result.sender,
        "keep_alive": result.keep_alive,
        "packet_id": result.packet_id,
        "response_timeout": _timeout_value(result.response_timeout),
        "to": result.receiver,
        "wide": result.wide,
    })


def decode_result(data: bytes) -> RelayResult:
    fields = _object(data, "relay result")
    texts = ("command", "packet_id", "from", "to")
    if not all(isinstance(fields.get(k), str) for k in texts) or not isinstance(fields.get("error", ""), str):
        raise RelayFormatError("relay result needs the texts command, packet_id, from and to")
    return RelayResult(
        command=fields["command"],
        packet_id=fields["packet_id"],
        sender=fields["from"],
        receiver=fields["to"],
        error=fields.get("error", ""),
        wide=_flag(fields, "wide", False),
        response_timeout=_timeout(fields, "response_timeout"),
        keep_alive=_flag(fields, "keep_alive", True),
    )


def seal(plaintext: bytes, backup_id: str, creator_id: str, to: rsa.RSAPublicKey, signer: rsa.RSAPrivateKey) -> bytes:
    """A relay payload: the plaintext in a block encrypted to `to`, signed by its creator."""
    return blocks.seal(plaintext, backup_id, creator_id, to, signer)


def unseal(payload: bytes, key: rsa.RSAPrivateKey, backup_id: str) -> bytes:
    """The plaintext of a relay payload encrypted to me; RelayFormatError when it is not one."""
    try:
        return blocks.unseal(payload, key, backup_id, MAX_RELAYED_BYTES)
    except blocks.BlockError as err:
        raise RelayFormatError(str(err)) from None
