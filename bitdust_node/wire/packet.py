"""The signed packet every peer-to-peer message travels in (PROTOCOL-P2P.md section 2).

On the wire: compact JSON with sorted keys and ASCII escapes of the dict
{c CreatorID, d Date, i PacketID, k KeyID, m Command, o OwnerID, p Payload, r RemoteID, s Signature},
every byte string written as latin-1 text, the signature as a string of decimal digits.
The signed text is Command-OwnerID-CreatorID-PacketID-Date-Payload-RemoteID-KeyID joined by `-`.
"""

from __future__ import annotations

import json
import random
import time

import attrs

from bitdust_node.wire import peer_json

# a 64 MiB Data packet escapes to at most 6 bytes a payload byte, plus the other fields
MAX_PACKET_BYTES = 6 * 64 * 1024 * 1024 + 65_536
FIELDS = ("c", "d", "i", "k", "m", "o", "p", "r", "s")
# a received packet's bytes: whole, or as the JSON before the payload's text, that text, and the JSON after it
FileParts = bytes | tuple[bytes, bytes, bytes]

# the commands official nodes accept (bitdust/p2p/commands.py); Transfer is defined there but refused
COMMANDS = frozenset({
    "Ack", "Fail", "Data", "Retrieve", "ListFiles", "Files", "Identity", "DeleteFile", "DeleteBackup",
    "Message", "Receipt", "Correspondent", "RequestService", "CancelService", "Broadcast", "Relay",
    "RelayIn", "RelayOut", "RelayAck", "RelayFail", "Coin", "RetrieveCoin", "Key", "AuditKey", "Event",
    "Contacts",
})
# which commands answer which request (section 2)
REPLIES: dict[str, frozenset[str]] = {
    "Data": frozenset({"Ack", "Fail"}),
    "Retrieve": frozenset({"Data", "Fail"}),
    "ListFiles": frozenset({"Files", "Fail"}),
    "Files": frozenset({"Ack", "Fail"}),
    "Identity": frozenset({"Ack", "Fail"}),
    "DeleteFile": frozenset({"Ack", "Fail"}),
    "DeleteBackup": frozenset({"Ack", "Fail"}),
    "Message": frozenset({"Ack", "Fail"}),
    "RequestService": frozenset({"Ack", "Fail"}),
    "CancelService": frozenset({"Ack", "Fail"}),
    # a router that has no route for the sender answers Fail `route not exist` (section 4.6)
    "RelayOut": frozenset({"RelayAck", "RelayFail", "Fail"}),
    "Key": frozenset({"Ack", "Fail"}),
    "AuditKey": frozenset({"Ack", "Fail"}),
    "Event": frozenset({"Ack", "Fail"}),
    "Coin": frozenset({"Ack", "Fail"}),
    "RetrieveCoin": frozenset({"Coin", "Fail"}),
    "Contacts": frozenset({"Contacts", "Ack", "Fail"}),
    "Correspondent": frozenset({"Correspondent", "Fail"}),
}


class PacketFormatError(ValueError):
    """Bytes that are not a signed packet."""


@attrs.frozen
class Packet:
    command: str
    owner_id: str
    creator_id: str
    packet_id: str
    date: str
    payload: bytes
    remote_id: str
    key_id: str
    signature: str = ""
    # set only where the payload was just made by a base64 encoder (a file piece): JSON holds it as it is, so
    # serializing does not check a megabyte again; not part of what a packet is (parsed packets say False)
    payload_is_base64: bool = attrs.field(default=False, kw_only=True, eq=False, repr=False)

    def signed_parts(self) -> tuple[bytes, ...]:
        """The signed text in pieces, so a large payload is hashed where it lies instead of copied."""
        head = "-".join((self.command, self.owner_id, self.creator_id, self.packet_id, self.date, ""))
        tail = "-".join(("", self.remote_id, self.key_id))
        return head.encode("latin-1"), self.payload, tail.encode("latin-1")

    def signed_text(self) -> bytes:
        return b"".join(self.signed_parts())

    def is_reply_to(self, request_command: str) -> bool:
        return self.command in REPLIES.get(request_command, frozenset())


def serialize(packet: Packet) -> bytes:
    """Compact JSON with sorted keys and ASCII escapes, every field as latin-1 text: what official nodes write
    (packet_fast.serialize writes the same bytes without a dict round trip; the node sends with that one)."""
    fields = {
        "c": packet.creator_id, "d": packet.date, "i": packet.packet_id, "k": packet.key_id, "m": packet.command,
        "o": packet.owner_id, "p": packet.payload.decode("latin-1"), "r": packet.remote_id, "s": packet.signature,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def parse(data: bytes, max_bytes: int = MAX_PACKET_BYTES) -> Packet:
    """A packet from its bytes, read by the one reader of peer JSON; PacketFormatError for anything else (the
    signature is not checked here). The reference: packet_fast.parse reads the official layout faster, alike."""
    if len(data) > max_bytes:
        raise PacketFormatError(f"packet of {len(data)} bytes is over the cap of {max_bytes}")
    return parse_with_json(data, max_bytes)


def parse_with_json(data: bytes, max_bytes: int = MAX_PACKET_BYTES) -> Packet:
    """The general parser (any JSON object of the fields, read by the one reader of peer JSON); the reference for
    the fast one."""
    try:
        fields = peer_json.loads(data, max_bytes, max_depth=1)
    except peer_json.PeerJsonError as err:
        raise PacketFormatError(f"packet is not JSON: {err}") from None
    if not isinstance(fields, dict) or tuple(sorted(fields)) != FIELDS:
        raise PacketFormatError("packet must have exactly the fields c d i k m o p r s")
    if not all(isinstance(v, str) for v in fields.values()):
        raise PacketFormatError("every packet field must be a string")
    try:
        for key in FIELDS:
            fields[key].encode("latin-1")
    except UnicodeEncodeError:
        raise PacketFormatError("packet field holds a character outside latin-1") from None
    return packet_from_fields(fields, fields["p"].encode("latin-1"))


def packet_from_fields(fields: dict[str, str], payload: bytes) -> Packet:
    """The packet of parsed fields, its command checked."""
    if fields["m"] not in COMMANDS:
        raise PacketFormatError(f"unknown command {fields['m'][:40]!r}")
    return Packet(
        command=fields["m"],
        owner_id=fields["o"],
        creator_id=fields["c"],
        packet_id=fields["i"],
        date=fields["d"],
        payload=payload,
        remote_id=fields["r"],
        key_id=fields["k"],
        signature=fields["s"],
    )


def packet_date(now: float) -> str:
    """`%Y/%m/%d %I:%M:%S %p` in UTC, with English AM/PM whatever the locale."""
    t = time.gmtime(now)
    hour = t.tm_hour % 12 or 12
    return f"{t.tm_year:04d}/{t.tm_mon:02d}/{t.tm_mday:02d} {hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} " + (
        "AM" if t.tm_hour < 12 else "PM"
    )


class UniqueIds:
    """PacketIDs as official nodes make them: a random 0..255, then a counter that starts at epoch x 100."""

    def __init__(self, now: float, rng: random.Random | None = None) -> None:
        self._counter = int(now * 100)
        self._rng = rng or random.Random()

    def next(self) -> str:
        self._counter += 1
        return f"{self._rng.getrandbits(8)}{self._counter}"
