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
_HEX_ID = re.compile(r"[0-9a-f]{40}")


class MessageError(ValueError):
    """A decoded body that is not a valid DHT message."""


def is_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _HEX_ID.fullmatch(value) is not None


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
    fast = _encode_contacts_response(message) if type(message) is Response else None
    return fast if fast is not None else bencode.encode(message.to_dict())


def decode(body: bytes) -> Message:
    """Parse a bencoded body; raises bencode.BencodeError or MessageError."""
    return _contacts_response(body) or _lookup_request(body) or from_dict(bencode.decode(body))


# pieces of the fast patterns below: an id as is_id takes it, a layer as the encoder writes it
_ID = rb"(" + _HEX_ID.pattern.encode() + rb")"
_LAYER = rb"(0|[1-9][0-9]{0,2})"
# A findNode or findValue request, the other half of the traffic, read in one match.
_LOOKUP_REQUEST = re.compile(
    rb"di0ei([03])ei1e40:%bi2e40:%bi3e(?:8:(findNode)|9:(findValue))i4el40:%bei5ei%bee" % (_ID, _ID, _ID, _LAYER)
)


def _lookup_request(body: bytes) -> Request | None:
    match = _LOOKUP_REQUEST.fullmatch(body)
    if match is None or int(match.group(7)) > MAX_LAYER:
        return None
    kind, msg_id, sender_id, find_node, find_value, key, layer = match.groups()
    method = (find_node or find_value).decode()
    return Request(msg_id.decode(), sender_id.decode(), method, [key.decode()], int(layer), kind == b"3")


def _encode_contacts_response(response: Response) -> bytes | None:
    """A findNode answer written directly, byte for byte what the bencode encoder writes; None for any
    other answer (the encoder writes it)."""
    payload = response.payload
    if type(payload) is not list or type(response.layer) is not int:
        return None
    if not (is_id(response.msg_id) and is_id(response.sender_id)):
        return None
    parts = [b"di0ei1ei1e40:", response.msg_id.encode(), b"i2e40:", response.sender_id.encode(), b"i3el"]
    for contact in payload:
        if type(contact) is not list or len(contact) != 4:
            return None
        node_id, host, port, layer = contact
        if not (is_id(node_id) and type(host) is str and type(port) is int and type(layer) is int):
            return None
        host_bytes = host.encode("utf-8", "surrogateescape")
        parts.append(b"l40:%b%d:%bi%dei%dee" % (node_id.encode(), len(host_bytes), host_bytes, port, layer))
    parts.append(b"ei5ei%dee" % response.layer)
    return b"".join(parts)


# A findNode answer, half of all DHT traffic, read by three patterns instead of item by item: the same
# Response the bencode decoder gives, or None and the decoder reads it (any other shape or spelling).
_ANSWER_HEAD = re.compile(rb"di0ei1ei1e40:%bi2e40:%bi3el" % (_ID, _ID))
_CONTACT_HEAD = re.compile(rb"l40:%b([1-9][0-9]?):" % _ID)
_CONTACT_TAIL = re.compile(rb"i([1-9][0-9]{0,4})e(?:i%be)?e" % _LAYER)
_ANSWER_TAIL = re.compile(rb"ei5ei%bee" % _LAYER)


def _contacts_response(body: bytes) -> Response | None:
    head = _ANSWER_HEAD.match(body)
    if head is None:
        return None
    pos = head.end()
    contacts: list[Any] = []
    while body[pos : pos + 1] == b"l":
        item = _CONTACT_HEAD.match(body, pos)
        if item is None:
            return None
        start = item.end()
        end = start + int(item.group(2))
        tail = _CONTACT_TAIL.match(body, end)
        if tail is None:
            return None
        host = body[start:end].decode("utf-8", "surrogateescape")
        contact = [item.group(1).decode(), host, int(tail.group(1))]
        if tail.group(2) is not None:
            contact.append(int(tail.group(2)))
        contacts.append(contact)
        pos = tail.end()
    last = _ANSWER_TAIL.match(body, pos)
    if last is None or last.end() != len(body) or int(last.group(1)) > MAX_LAYER:
        return None
    return Response(head.group(1).decode(), head.group(2).decode(), contacts, int(last.group(1)))


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
