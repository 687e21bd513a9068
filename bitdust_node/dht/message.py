"""Typed DHT messages and their dict form with integer keys 0..5 (see PROTOCOL.md)."""

from __future__ import annotations

import re
from typing import Any, TypeGuard

import attrs

from bitdust_node.wire import bencode

REQUEST = 0
RESPONSE = 1
ERROR = 2
# a request from a node that is not attached to the layer: answer it, do not add the sender
QUESTION = 3

MAX_LAYER = 255
# the RPCs a node answers; any other method name is a peer's choice of text, counted as "unknown"
RPC_METHODS = frozenset({"ping", "store", "findNode", "findValue", "request"})
HEX_ID = re.compile(r"[0-9a-f]{40}")


class MessageError(ValueError):
    """A decoded body that is not a valid DHT message."""


def is_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and HEX_ID.fullmatch(value) is not None


@attrs.frozen
class Request:
    msg_id: str
    sender_id: str
    method: str
    args: list[Any]
    layer: int = 0
    # True for type 3: the sender is not attached to this layer
    question: bool = False

    def to_dict(self) -> dict[int, Any]:
        return {
            0: QUESTION if self.question else REQUEST,
            1: self.msg_id,
            2: self.sender_id,
            3: self.method,
            4: list(self.args),
            5: self.layer,
        }


@attrs.frozen
class Response:
    msg_id: str
    sender_id: str
    payload: Any
    layer: int = 0

    def to_dict(self) -> dict[int, Any]:
        return {
            0: RESPONSE,
            1: self.msg_id,
            2: self.sender_id,
            3: self.payload,
            5: self.layer,
        }


@attrs.frozen
class ErrorReply:
    msg_id: str
    sender_id: str
    error_type: str
    text: str
    layer: int = 0

    def to_dict(self) -> dict[int, Any]:
        return {
            0: ERROR,
            1: self.msg_id,
            2: self.sender_id,
            3: self.error_type,
            4: self.text,
            5: self.layer,
        }


Message = Request | Response | ErrorReply


def encode(message: Message) -> bytes:
    """The reference encoder (message_fast.py writes the commonest answer directly, byte for byte the same)."""
    return bencode.encode(message.to_dict())


def decode(body: bytes) -> Message:
    """The reference decoder: bencode, then the dict checked; raises bencode.BencodeError or MessageError
    (message_fast.py reads the commonest messages by pattern first, and agrees with this)."""
    return from_dict(bencode.decode(body))


def from_dict(raw: Any) -> Message:
    if not isinstance(raw, dict):
        raise MessageError("message is not a dict")
    kind = raw.get(0)
    msg_id = raw.get(1)
    sender_id = raw.get(2)
    if not is_id(msg_id):
        raise MessageError("bad message id")
    if not is_id(sender_id):
        raise MessageError("bad sender id")
    # some nodes drop key 5 from responses with a dict payload: read it as layer 0
    layer = raw.get(5, 0)
    if not isinstance(layer, int) or isinstance(layer, bool) or not 0 <= layer <= MAX_LAYER:
        raise MessageError("bad layer id")
    if 3 not in raw:
        raise MessageError("missing key 3")
    if kind in (REQUEST, QUESTION):
        method, args = raw[3], raw.get(4, [])
        if not isinstance(method, str) or not isinstance(args, list):
            raise MessageError("bad request method or arguments")
        return Request(msg_id, sender_id, method, args, layer, question=kind == QUESTION)
    if kind == RESPONSE:
        return Response(msg_id, sender_id, raw[3], layer)
    if kind == ERROR:
        error_type, text = raw[3], raw.get(4, "")
        if not isinstance(error_type, str) or not isinstance(text, str):
            raise MessageError("bad error reply")
        return ErrorReply(msg_id, sender_id, error_type, text, layer)
    raise MessageError(f"unknown message type {kind!r}")
