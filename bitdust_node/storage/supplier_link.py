"""A customer's shares on the way to and from one supplier (PROTOCOL-P2P.md 5.1, 5.2): the I/O the transfer,
repair and health cores do through the `SupplierLink` face, and `NetworkLink`, which does it with signed
packets through the gateway's face. A core never sees a packet's answer text, only what it means."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, Protocol

import attrs
import pybase64
from twisted.internet import threads
from twisted.logger import Logger

from bitdust_node.crypto import block as blocks
from bitdust_node.crypto import keys
from bitdust_node.crypto.packet_signing import packet_signature_valid
from bitdust_node.errors import BitDustError
from bitdust_node.storage import erasure
from bitdust_node.storage.interfaces import IdentityLookup, Me, Worker
from bitdust_node.storage.listing import Holdings, ListingError, read_listing
from bitdust_node.transport.interfaces import PacketNetwork
from bitdust_node.wire import packet as wire
from bitdust_node.wire import packet_fast

log = Logger()
PIECE_TIMEOUT = 60.0
# what our supplier (and official ones) answer a Retrieve of a piece whose signature no longer checks
STORED_NOT_VALID = b"stored packet is not valid"
LIST_TIMEOUT = 30.0
# what official customers ask for: everything
LIST_QUERY = b'{"items":["*"]}'


class NotHired(BitDustError):
    """The supplier does not know me as its customer (it never did, or it freed my space)."""

    http_status = 409
    exit_code = 1


class Unanswered(BitDustError):
    """The supplier did not answer, or its answer could not be read."""

    http_status = 504
    exit_code = 1


class Fetch(enum.StrEnum):
    """What asking a supplier for a share came to."""

    GOT = "got"  # the packet I stored under that id, signed by me: its share and the share's hash
    MISSING = "missing"  # the supplier answered that it has none
    ALTERED = "altered"  # it has one, changed: not my signature, not my packet, not a share, or it says so
    UNREACHABLE = "unreachable"  # no answer in time


@attrs.frozen
class Fetched:
    outcome: Fetch
    share: bytes = b""
    hash: str = ""
    why: str = ""


class SupplierLink(Protocol):
    """A supplier's side of the customer's shares, by IDURL."""

    def piece_packet(self, idurl: str, packet_id: str, payload: bytes) -> wire.Packet:
        """The signed Data packet of one share (`payload`: the share in base64); safe in a worker thread."""

    async def store(self, packet: wire.Packet, on_sent: Callable[[], object] | None = None) -> str | None:
        """Store the packet at its RemoteID: None when Acked, else the refusal; BitDustError without an answer.
        `on_sent` is called once the supplier has the packet's bytes; the packet is not held after that."""

    async def fetch(self, idurl: str, packet_id: str, expected: str = "") -> Fetched:
        """The share stored under `packet_id`, checked to be my packet; its hash in the scheme of `expected` (the
        catalog's hash of it: erasure.share_hash)."""

    async def list_files(self, idurl: str) -> Holdings:
        """What the supplier holds for me; NotHired when it does not know me, Unanswered without an answer."""


class NetworkLink:
    """`SupplierLink` over signed packets: Data to store, Retrieve to fetch."""

    def __init__(
        self, network: PacketNetwork, me: Me, identities: IdentityLookup, worker: Worker = threads.deferToThread,
    ) -> None:
        self.network = network
        self.me = me
        self.identities = identities
        self._worker = worker

    def piece_packet(self, idurl: str, packet_id: str, payload: bytes) -> wire.Packet:
        return self.network.outbox("Data", idurl, payload, packet_id=packet_id, payload_is_base64=True)

    async def store(self, packet: wire.Packet, on_sent: Callable[[], object] | None = None) -> str | None:
        supplier = await self.identities.known(packet.remote_id)
        answering = self.network.request(packet, supplier, timeout=PIECE_TIMEOUT, on_sent=on_sent)
        del packet  # what is left to write is the transport's: the share is not kept here until the Ack
        answer = await answering
        if answer.command == "Ack":
            return None
        return answer.payload.decode("utf-8", "replace")[:200] or answer.command

    async def fetch(self, idurl: str, packet_id: str, expected: str = "") -> Fetched:
        me = self.me.require()
        try:
            answer = await ask(self.network, self.identities, idurl, "Retrieve", packet_id, PIECE_TIMEOUT)
        except BitDustError as err:
            log.info("share {pid} not had from {idurl}: {why}", pid=packet_id, idurl=idurl, why=str(err))
            return Fetched(Fetch.UNREACHABLE, why=str(err))
        if answer.command != "Data":
            if answer.payload == STORED_NOT_VALID:  # its disk changed the piece, and it says so
                return Fetched(Fetch.ALTERED, why=STORED_NOT_VALID.decode())
            return Fetched(Fetch.MISSING, why=answer.payload.decode("utf-8", "replace")[:200])
        # parsing, checking and hashing a megabyte release the GIL: a worker thread does them
        return await self._worker(open_piece, answer.payload, packet_id, me.key.public_key(), expected)

    async def list_files(self, idurl: str) -> Holdings:
        me = self.me.require()
        try:
            supplier = await self.identities.known(idurl)
            request = self.network.outbox("ListFiles", idurl, LIST_QUERY,
                                          packet_id=f"{me.key_id}:{self.network.new_packet_id()}")
            answer = await self.network.request(request, supplier, timeout=LIST_TIMEOUT)
        except BitDustError as err:
            raise Unanswered(f"no listing from {idurl}: {err}") from None
        if answer.command != "Files":
            text = answer.payload.decode("utf-8", "replace")[:200]
            if answer.command == "Fail" and text in NOT_HIRED:
                raise NotHired(f"{idurl} does not know me: {text}")
            raise Unanswered(f"{idurl} answered {answer.command} {text}")
        try:
            block = blocks.parse_block(answer.payload)
            if block.backup_id != me.key_id or not blocks.block_signature_valid(
                    block, keys.public_key_from_openssh(supplier.publickey)):
                raise ListingError("not a listing of mine signed by this supplier")
            return read_listing(blocks.open_block(block, me.key))
        except (blocks.BlockError, ListingError, ValueError) as err:
            raise Unanswered(f"listing from {idurl} unreadable: {err}") from None


# the official answers to a ListFiles of someone who is not (or no more) a customer
NOT_HIRED = ("key not registered", "not a customer", "not a customer, or file not found")


def open_piece(payload: bytes, packet_id: str, my_key: Any, expected: str = "") -> Fetched:
    """A Retrieve answer's nested packet: the share and its hash (in the scheme of `expected`) if it is my packet
    stored as `packet_id`. The share's text is checked and decoded where it lies in the answer, not copied out
    first."""
    try:
        found = packet_fast.parse_piece(payload)
        stored, text = found if found is not None else (packet_fast.parse(payload), None)
    except wire.PacketFormatError as err:
        return Fetched(Fetch.ALTERED, why=f"unreadable: {err}")
    # the same piece path, signed by me: stored under my global id then (my identity may have moved since)
    if stored.packet_id.partition(":")[2] != packet_id.partition(":")[2] or not packet_signature_valid(
            stored, my_key, text):
        return Fetched(Fetch.ALTERED, why="not the packet I stored under that id")
    try:
        share = pybase64.b64decode(stored.payload if text is None else text, validate=True)
    except ValueError:
        return Fetched(Fetch.ALTERED, why="not a share")
    return Fetched(Fetch.GOT, share, erasure.share_hash(share, expected))


async def ask(
    network: PacketNetwork, identities: IdentityLookup, idurl: str, command: str, packet_id: str, timeout: float,
    payload: bytes = b"",
) -> wire.Packet:
    """A supplier's answer to a request of mine (a Retrieve of one of my pieces, a DeleteFile ...): BitDustError when
    none came in `timeout`."""
    supplier = await identities.known(idurl)
    return await network.request(network.outbox(command, idurl, payload, packet_id=packet_id), supplier,
                                 timeout=timeout)
