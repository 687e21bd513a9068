"""Fast paths for the commonest DHT messages, beside the reference in message.py that they must agree with.

findNode/findValue requests and findNode answers are nearly all DHT traffic: they are read by a few
patterns and answers written directly, each byte for byte what the bencode codec reads and writes
(tests/dht/test_message.py holds the two together with hypothesis); anything else goes to the codec.
"""

from __future__ import annotations

import re
from typing import Any

from bitdust_node.dht import message
from bitdust_node.dht.message import HEX_ID, MAX_LAYER, Message, Request, Response, is_id


def encode(msg: Message) -> bytes:
    """message.encode, with a findNode answer written directly."""
    fast = write_contacts_response(msg) if type(msg) is Response else None
    return fast if fast is not None else message.encode(msg)


def decode(body: bytes) -> Message:
    """message.decode, with findNode answers and lookup requests read by pattern first."""
    return read_contacts_response(body) or read_lookup_request(body) or message.decode(body)


# pieces of the fast patterns below: an id as is_id takes it, a layer as the encoder writes it
_ID = rb"(" + HEX_ID.pattern.encode() + rb")"
_LAYER = rb"(0|[1-9][0-9]{0,2})"
# A findNode or findValue request, the other half of the traffic, read in one match.
_LOOKUP_REQUEST = re.compile(
    rb"di0ei([03])ei1e40:%bi2e40:%bi3e(?:8:(findNode)|9:(findValue))i4el40:%bei5ei%bee" % (_ID, _ID, _ID, _LAYER)
)


def read_lookup_request(body: bytes) -> Request | None:
    match = _LOOKUP_REQUEST.fullmatch(body)
    if match is None or int(match.group(7)) > MAX_LAYER:
        return None
    kind, msg_id, sender_id, find_node, find_value, key, layer = match.groups()
    method = (find_node or find_value).decode()
    return Request(msg_id.decode(), sender_id.decode(), method, [key.decode()], int(layer), kind == b"3")


def write_contacts_response(response: Response) -> bytes | None:
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


def read_contacts_response(body: bytes) -> Response | None:
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


