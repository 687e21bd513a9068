"""Fast paths for signed packets, beside the reference in packet.py that they must agree with.

The serializer writes the official bytes directly (no dict, no JSON encoder; a base64 payload, which is what
file pieces are, is passed on uncopied); the parser finds the fields of the official layout with memchr-speed
searches, so a megabyte payload never meets the JSON decoder, and anything unusual goes to packet.parse,
which decides. A received file is parsed from the chunks it came in without being joined. The node sends
and receives with these; tests/wire/test_packet.py holds them to the reference with hypothesis.
"""

from __future__ import annotations

import json.encoder
from collections.abc import Sequence

import pybase64

from bitdust_node.wire import packet as reference
from bitdust_node.wire.packet import (
    FIELDS,
    MAX_PACKET_BYTES,
    FileParts,
    Packet,
    PacketFormatError,
    packet_from_fields,
)

# bytes a JSON string may hold as they are: printable ASCII but the quote and the backslash
_PLAIN = bytes(b for b in range(0x20, 0x7F) if b not in b'"\\')


# payloads this long are checked for base64 first: SIMD-fast, and it is what file pieces are
_BASE64_CHECK_FROM = 4096
# checked a slice at a time (a multiple of 4): decoding a megabyte whole only to check it would make, and page
# in, a buffer of its decoded size for each packet
_BASE64_CHECK_STEP = 1024 * 1024
_PAD = ord("=")


def _is_base64(value: bytes | memoryview) -> bool:
    """Strict base64 holds only characters a JSON string keeps as they are."""
    size = len(value)
    if size < _BASE64_CHECK_FROM or size % 4:
        return False
    view = memoryview(value)
    try:
        for at in range(0, size, _BASE64_CHECK_STEP):
            piece = view[at : at + _BASE64_CHECK_STEP]
            if at + _BASE64_CHECK_STEP < size and piece[-1] == _PAD:
                return False  # padding before the end: checked alone, this slice would pass
            pybase64.b64decode(piece, validate=True)
    except ValueError:
        return False
    return True


# what a backslash may escape in the fast path: everything else (\\u, \\n ...) goes to the JSON decoder
_SIMPLE_ESCAPES = {0x5C: b"\\", 0x22: b'"'}
# a string with more escapes than this is no block of base64: the JSON decoder is as fast for it
_MAX_SIMPLE_ESCAPES = 256


def _unquoted_text(value: bytes | memoryview) -> bool:
    """Printable ASCII without a quote or a backslash: a piece of a JSON string that means its bytes."""
    return _is_base64(value) or not (value if isinstance(value, bytes) else bytes(value)).translate(None, _PLAIN)


def _escaped(value: bytes) -> list[bytes | memoryview] | None:
    """`value` as a JSON string body when it is printable ASCII (a block's JSON: quotes and backslashes
    around a megabyte of base64), escape by escape; None for anything else. The pieces between escapes are views
    of `value`: the megabyte is copied once, where they are joined."""
    pieces: list[bytes | memoryview] = []
    view = memoryview(value)
    at = 0
    # the next quote and the next backslash, each searched again only once passed
    quote, backslash = value.find(b'"'), value.find(b"\\")
    while True:
        special = min(quote, backslash) if quote >= 0 and backslash >= 0 else max(quote, backslash)
        piece = view[at:] if special < 0 else view[at:special]
        if not _unquoted_text(piece) or len(pieces) > 2 * _MAX_SIMPLE_ESCAPES:
            return None
        pieces.append(piece)
        if special < 0:
            return pieces
        if special == quote:
            pieces.append(b'\\"')
            quote = value.find(b'"', special + 1)
        else:
            pieces.append(b"\\\\")
            backslash = value.find(b"\\", special + 1)
        at = special + 1


def _json_text(value: bytes) -> tuple[bytes | memoryview, ...]:
    """`value` (latin-1) as a JSON string in pieces, exactly as json.dumps(ensure_ascii=True) writes it."""
    if _is_base64(value):
        return b'"', value, b'"'  # most payloads (file pieces) need no escapes: not even copied
    escaped = _escaped(value) if b'"' in value or b"\\" in value else [value] if _unquoted_text(value) else None
    if escaped is not None:
        return b'"', *escaped, b'"'
    return (json.encoder.encode_basestring_ascii(value.decode("latin-1")).encode("ascii"),)  # type: ignore[attr-defined]


def serialize(packet: Packet) -> bytes:
    """Compact JSON with sorted keys; byte for byte what official nodes write, without a dict round trip."""
    return b"".join(serialize_parts(packet))


def serialize_parts(packet: Packet) -> tuple[bytes, bytes, bytes]:
    """serialize() as the JSON before the payload's text, the payload's text, and the JSON after it: a payload
    of base64 (a file piece) is passed on as it is, not copied, and a transport frames the three as they are."""
    text = _json_text
    head = b"".join((
        b'{"c":', *text(packet.creator_id.encode("latin-1")),
        b',"d":', *text(packet.date.encode("latin-1")),
        b',"i":', *text(packet.packet_id.encode("latin-1")),
        b',"k":', *text(packet.key_id.encode("latin-1")),
        b',"m":', *text(packet.command.encode("latin-1")),
        b',"o":', *text(packet.owner_id.encode("latin-1")),
        b',"p":"',
    ))
    payload = (b'"', packet.payload, b'"') if packet.payload_is_base64 else text(packet.payload)
    tail = b"".join((
        b'",', b'"r":', *text(packet.remote_id.encode("latin-1")),
        b',"s":', *text(packet.signature.encode("latin-1")),
        b"}",
    ))
    # the payload's JSON string without its quotes (which head and tail hold)
    if len(payload) == 1:
        body = bytes(payload[0][1:-1])
    elif len(payload) == 3 and isinstance(payload[1], bytes):
        body = payload[1]  # a payload that needs no escapes: passed on as it is
    else:
        body = b"".join(payload[1:-1])
    return head, body, tail


def _unescaped(body: bytes) -> bytes | None:
    """The bytes of a JSON string body whose only escapes are `\\\\` and `\\"`, else None.

    A relayed packet's payload is a block whose JSON sits inside this JSON: a megabyte of base64 with a few
    dozen escapes. Walking from escape to escape leaves the base64 to the SIMD check, not the decoder.
    """
    pieces: list[bytes | memoryview] = []
    view = memoryview(body)  # the pieces between escapes are views: the megabyte is copied once, joined
    at = 0
    while True:
        escape = body.find(b"\\", at)
        piece = view[at:] if escape < 0 else view[at:escape]
        if not _unquoted_text(piece):
            return None
        pieces.append(piece)
        if escape < 0:
            return b"".join(pieces)
        char = _SIMPLE_ESCAPES.get(body[escape + 1]) if escape + 1 < len(body) else None
        if char is None or len(pieces) > _MAX_SIMPLE_ESCAPES:
            return None
        pieces.append(char)
        at = escape + 2


# what opens the payload's text, and what closes it: `r` and `s` never hold a quote, so the last of these
_PAYLOAD_OPENING = b',"p":"'
_PAYLOAD_CLOSING = b'","r":"'


def _parse_plain(data: bytes) -> tuple[dict[str, str], bytes] | None:
    """The fields of a packet in exactly the official layout, else None.

    Finding each field with memchr-speed searches spares a megabyte payload the JSON decoder; the payload
    may hold quotes and backslashes (a block), the other fields no escapes at all. Anything unusual
    (other escapes, other order, spaces) goes to the JSON reader, which then decides.
    """
    if not data.endswith(b'"}'):
        return None
    opening, closing = data.find(_PAYLOAD_OPENING), data.rfind(_PAYLOAD_CLOSING)
    if opening < 0 or closing < opening + len(_PAYLOAD_OPENING):
        return None
    return _plain(data[:opening], data[opening + len(_PAYLOAD_OPENING) : closing], data[closing + 1 : -1])


def _plain(head: bytes, body: bytes, tail: bytes) -> tuple[dict[str, str], bytes] | None:
    """The fields from the JSON before the payload (`{"c":"..",..,"o":".."`), the payload's text, and the JSON
    after it but its last brace (`,"r":"..","s":".."`), when all is in the official layout; else None."""
    fields: dict[str, str] = {}
    if not (_plain_fields(head, FIELDS[:6], fields) and _plain_fields(tail, FIELDS[7:], fields)):
        return None
    payload = _unescaped(body) if b"\\" in body else body if _unquoted_text(body) else None
    return None if payload is None else (fields, payload)


def _plain_fields(text: bytes, keys: tuple[str, ...], fields: dict[str, str]) -> bool:
    """`keys` in order and nothing else in `text`, each value without a quote or a backslash, into `fields`."""
    at = 0  # where the next `{"k":"` or `,"k":"` must stand
    for key in keys:
        opening = (b'{"' if key == "c" else b',"') + key.encode() + b'":"'
        if not text.startswith(opening, at):
            return False
        start = at + len(opening)
        end = text.find(b'"', start)
        if end < 0:
            return False
        value = text[start:end]
        if not _unquoted_text(value):  # found up to the next quote: holds none, may not hold a backslash
            return False
        fields[key] = value.decode("ascii")
        at = end + 1
    return at == len(text)


def parse_piece(data: bytes) -> tuple[Packet, memoryview] | None:
    """A stored file piece (a packet in the official layout) read without copying or checking its payload: the
    packet with an empty payload and a view of the payload's text, to be hashed and base64-decoded (so checked)
    where it lies; None when the other fields are not in the official layout (`parse` then decides)."""
    if not data.endswith(b'"}'):
        return None
    opening, closing = data.find(_PAYLOAD_OPENING), data.rfind(_PAYLOAD_CLOSING)
    if opening < 0 or closing < opening + len(_PAYLOAD_OPENING):
        return None
    fields: dict[str, str] = {}
    if not (_plain_fields(data[:opening], FIELDS[:6], fields) and _plain_fields(data[closing + 1 : -1], FIELDS[7:],
                                                                                fields)):
        return None
    return packet_from_fields(fields, b""), memoryview(data)[opening + len(_PAYLOAD_OPENING) : closing]


# a file of chunks whose head and tail lie this near its ends is parsed without being joined
_EDGE = 64 * 1024


def parse_file(data: bytes | Sequence[bytes | memoryview]) -> tuple[Packet, FileParts]:
    """A packet from a received file, whole or as the chunks it came in, and the file's bytes: whole, or for
    chunks the JSON before the payload's text, that text and the JSON after it, so the payload is copied out of
    the chunks once and nothing else of the file is joined (a supplier writes the three as they are)."""
    if isinstance(data, bytes):
        return parse(data), data
    size = sum(len(chunk) for chunk in data)
    if size > MAX_PACKET_BYTES:
        raise PacketFormatError(f"packet of {size} bytes is over the cap of {MAX_PACKET_BYTES}")
    if size > 2 * _EDGE:
        first, last = _gather(data, 0, _EDGE), _gather(data, size - _EDGE, size)
        opening, closing = first.find(_PAYLOAD_OPENING), last.rfind(_PAYLOAD_CLOSING)
        if opening >= 0 and closing >= 0 and last.endswith(b'"}'):
            head, tail = first[: opening + len(_PAYLOAD_OPENING)], last[closing:]
            body = _gather(data, len(head), size - len(tail))
            plain = _plain(first[:opening], body, tail[1:-1])
            if plain is not None:
                return packet_from_fields(*plain), (head, body, tail)
    whole = b"".join(data)
    return parse(whole), whole


def _gather(chunks: Sequence[bytes | memoryview], start: int, end: int) -> bytes:
    """Bytes `start` to `end` of the file the chunks make, in one copy."""
    pieces: list[bytes | memoryview] = []
    at = 0
    for chunk in chunks:
        following = at + len(chunk)
        if following > start and at < end:
            pieces.append(memoryview(chunk)[max(start - at, 0) : min(end, following) - at])
        if following >= end:
            break
        at = following
    return b"".join(pieces)


def parse(data: bytes, max_bytes: int = MAX_PACKET_BYTES) -> Packet:
    """packet.parse, with the official layout read without the JSON decoder."""
    if len(data) > max_bytes:
        raise PacketFormatError(f"packet of {len(data)} bytes is over the cap of {max_bytes}")
    plain = _parse_plain(data)
    return packet_from_fields(*plain) if plain is not None else reference.parse(data, max_bytes)
