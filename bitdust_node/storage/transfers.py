"""Moving a customer's files to its suppliers and back (PROTOCOL-P2P.md 5.2, 5.4).

Upload: the file is read in blocks; each block is sealed (sealed_block.py), cut into n shares (erasure.py)
and share i goes to the supplier at position i as a Data packet
`master$<me>:<path id>/<version>/<block>-<i>-Data` whose payload is the share in base64 (official
suppliers store it like any piece). A supplier that fails is replaced and the upload goes on. Download:
shares are asked for (Retrieve) until k good ones are in (the nested packet signed by me, the share's
hash as the catalog says), then the block is rebuilt and opened. Repair rebuilds a position's shares
onto its new supplier from the others.
"""

from __future__ import annotations

import base64
import collections
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pybase64
from twisted.internet import defer, threads
from twisted.logger import Logger

from bitdust_node.crypto.packet_signing import packet_signature_valid
from bitdust_node.errors import BitDustError
from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.storage import erasure, sealed_block
from bitdust_node.storage.catalog import BlockInfo, Entry, Version
from bitdust_node.storage.suppliers import Suppliers
from bitdust_node.transport.interfaces import PacketNetwork
from bitdust_node.wire import packet as wire

log = Logger()
PIECE_TIMEOUT = 60.0
# blocks sealed, coded and in flight at once: the pipeline stays full, memory stays bounded
WINDOW = 4


class TransferError(BitDustError):
    """A transfer that cannot complete (too few suppliers, a lost block)."""

    http_status = 503
    exit_code = 1


@attrs.define
class Transfer:
    """What REST and the CLI show of an upload or a download while it runs."""

    kind: str
    remote_path: str
    local_path: str
    total: int
    done: int = 0
    state: str = "running"
    error: str = ""
    started: float = attrs.field(factory=time.time)
    finished: float = 0.0
    version: str = ""

    def describe(self) -> dict[str, Any]:
        row = attrs.asdict(self)
        row["percent"] = round(100 * self.done / self.total, 1) if self.total else 100.0
        return row


def piece_id(key_id: str, path_id: str, version: str, block: int, position: int) -> str:
    return f"{key_id}:{path_id}/{version}/{block}-{position}-Data"


def associated(path_id: str, version: str, block: int) -> bytes:
    return f"{path_id}/{version}/{block}".encode()


class Mover:
    def __init__(
        self, gateway: PacketNetwork, me: MyIdentityHolder, cache: IdentityCache, suppliers: Suppliers,
        replace: Callable[[int, str], Any],
    ) -> None:
        self.gateway = gateway
        self.me = me
        self.cache = cache
        self.suppliers = suppliers
        # called with (position, why) when a supplier fails: hires another, fires once it is in place
        self.replace = replace
        self.counters: collections.Counter[str] = collections.Counter()

    @property
    def key_id(self) -> str:
        return self.me.require().key_id

    # -- shares to and from one supplier

    def piece_packet(self, position: int, packet_id: str, payload: bytes) -> wire.Packet:
        """The Data packet of one share (`payload`: the share in base64), signed, for the supplier now at
        `position` (safe in a worker thread)."""
        idurl = self.suppliers.slots[position].idurl
        return self.gateway.outbox("Data", idurl, payload, packet_id=packet_id, payload_is_base64=True)

    async def put_share(self, position: int, packet: wire.Packet) -> None:
        """Store one share (its signed Data packet) at the supplier of `position`; a failing supplier is replaced
        and asked no more, and the share is signed again for the one that takes its place."""
        for _attempt in range(3):
            slot = self.suppliers.slots[position]
            if slot.state != "CONNECTED":
                await self.replace(position, "no supplier")
                continue
            try:
                supplier = await self.cache.known(slot.idurl)
                if packet.remote_id != slot.idurl:
                    packet = self.piece_packet(position, packet.packet_id, packet.payload)
                answer = await self.gateway.request(packet, supplier, timeout=PIECE_TIMEOUT)
            except BitDustError as err:
                await self.replace(position, f"store failed: {err}")
                continue
            if answer.command == "Ack":
                return
            await self.replace(position, "refused a piece: " + answer.payload.decode("utf-8", "replace")[:200])
        raise TransferError(f"no supplier at position {position} took piece {packet.packet_id}")

    async def get_share(self, position: int, packet_id: str) -> tuple[bytes, str] | None:
        """The share at one supplier and its hash, checked to be the packet I stored (my signature); None if
        it has none."""
        slot = self.suppliers.slots[position] if position < len(self.suppliers.slots) else None
        if slot is None or slot.state != "CONNECTED":
            return None
        me = self.me.require()
        try:
            supplier = await self.cache.known(slot.idurl)
            request = self.gateway.outbox("Retrieve", slot.idurl, b"", packet_id=packet_id)
            answer = await self.gateway.request(request, supplier, timeout=PIECE_TIMEOUT)
            if answer.command != "Data":
                if answer.payload == b"stored packet is not valid":
                    self.counters["bad_shares"] += 1  # its disk changed the piece, and it says so
                return None
            # parsing, checking and hashing a megabyte release the GIL: a worker thread does them
            opened = await threads.deferToThread(_open_piece, answer.payload, packet_id, me.key.public_key())
        except (BitDustError, wire.PacketFormatError) as err:
            log.info("share {pid} not had from {idurl}: {why}", pid=packet_id, idurl=slot.idurl, why=str(err))
            return None
        if opened is _NOT_MINE:
            self.counters["bad_shares"] += 1
            log.warn("supplier {idurl} gave a piece I did not store as {pid}", idurl=slot.idurl, pid=packet_id)
            return None
        return opened if isinstance(opened, tuple) else None

    # -- upload

    async def upload(self, path: Path, entry: Entry, version: Version, transfer: Transfer) -> None:
        me = self.me.require()
        n = len(self.suppliers.slots)
        pending: list[defer.Deferred[BlockInfo]] = []
        # the size the version records; an empty file is one empty block, so it has a version too
        count = max(1, -(-version.size // version.block_size))
        for number in range(count):
            pending.append(defer.ensureDeferred(self._upload_block(me, entry, version, number, path, n, transfer)))
            if len(pending) >= WINDOW:
                version.blocks.append(await pending.pop(0))
        for waiting in pending:
            version.blocks.append(await waiting)
        version.complete = True

    async def _upload_block(
        self, me: Any, entry: Entry, version: Version, number: int, path: Path, n: int, transfer: Transfer,
    ) -> BlockInfo:
        ids = [piece_id(self.key_id, entry.path_id, version.version, number, i) for i in range(n)]
        place = associated(entry.path_id, version.version, number)

        def prepare() -> tuple[BlockInfo, list[wire.Packet]]:
            """The block read from the file, its record and its shares as signed packets; the plaintext, the
            ciphertext and the raw shares are not kept (a block in flight holds its packets only)."""
            with open(path, "rb") as source:  # a handle of its own: none is closed under a block still reading
                source.seek(number * version.block_size)
                chunk = source.read(version.block_size)
            sealed, shares = _seal_and_code(chunk, me.key.public_key(), place, n)
            hashes = [erasure.share_hash(share) for share in shares]
            packets = []
            for i in range(n):
                packets.append(self.piece_packet(i, ids[i], pybase64.b64encode(shares[i])))
                shares[i] = b""
            info = BlockInfo(len(chunk), len(sealed.ciphertext), base64.b64encode(sealed.wrapped_key).decode(),
                             base64.b64encode(sealed.nonce).decode(), hashes)
            return info, packets

        # reading, sealing, coding, signing and hashing release the GIL: a worker thread does them while the
        # reactor moves the blocks already made
        info, packets = await threads.deferToThread(prepare)
        stores = [defer.ensureDeferred(self.put_share(i, packet)) for i, packet in enumerate(packets)]
        del packets  # each store holds its own packet, until its supplier has it
        outcomes: list[Any] = await defer.DeferredList(stores, consumeErrors=True)
        for ok, failure in outcomes:
            if not ok:
                failure.raiseException()
        transfer.done += info.size
        self.counters["bytes_uploaded"] += info.size
        return info

    # -- download

    async def good_shares(self, entry: Entry, version: Version, number: int, skip: int = -1) -> dict[int, bytes]:
        """Up to k shares of a block whose hashes match the catalog, asked for k at a time (more when some are
        missing or wrong); the position `skip` is not asked (the one being rebuilt)."""
        info = version.blocks[number]
        n = len(info.shares)
        k = erasure.needed(n)
        shares: dict[int, bytes] = {}
        order = [i for i in range(n) if i != skip]
        while order and len(shares) < k:
            asking, order = order[: k - len(shares)], order[k - len(shares):]
            got = await defer.gatherResults([
                defer.ensureDeferred(self.get_share(i, piece_id(self.key_id, entry.path_id, version.version,
                                                                number, i)))
                for i in asking
            ])
            for i, share in zip(asking, got, strict=True):
                if share is not None and share[1] == info.shares[i]:
                    shares[i] = share[0]
                elif share is not None:
                    self.counters["bad_shares"] += 1
                    log.warn("share {i} of block {n} of {path} is not what was stored: set aside", i=i, n=number,
                             path=entry.path)
        return shares

    async def read_block(self, entry: Entry, version: Version, number: int) -> bytes:
        """One block back: k good shares, rebuilt and opened."""
        me = self.me.require()
        info = version.blocks[number]
        shares = await self.good_shares(entry, version, number)

        def rebuild() -> bytes:
            try:
                ciphertext = erasure.decode(shares, info.shares, info.sealed_size)
            except erasure.NotEnoughShares as err:
                raise TransferError(f"block {number} of {entry.path} cannot be rebuilt: {err}") from None
            sealed = sealed_block.SealedBlock(base64.b64decode(info.wrapped_key), base64.b64decode(info.nonce),
                                              ciphertext)
            return sealed_block.open_sealed(sealed, me.key, associated(entry.path_id, version.version, number))

        # decoding and opening release the GIL, as sealing did
        return await threads.deferToThread(rebuild)

    async def download(self, entry: Entry, version: Version, destination: Path, transfer: Transfer) -> None:
        temp = destination.with_name(destination.name + ".incoming")
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(temp, "wb") as out:
                pending: list[defer.Deferred[bytes]] = []
                for number in range(len(version.blocks)):
                    pending.append(defer.ensureDeferred(self.read_block(entry, version, number)))
                    if len(pending) >= WINDOW:
                        self._written(out, await pending.pop(0), transfer)
                for waiting in pending:
                    self._written(out, await waiting, transfer)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, destination)
        finally:
            temp.unlink(missing_ok=True)

    def _written(self, out: Any, data: bytes, transfer: Transfer) -> None:
        out.write(data)
        transfer.done += len(data)
        self.counters["bytes_downloaded"] += len(data)

    # -- repair

    async def repair(self, entry: Entry, version: Version, position: int) -> None:
        """Store again, at the supplier now holding `position`, its share of every block of the version."""
        n = len(self.suppliers.slots)
        for number, info in enumerate(version.blocks):
            if len(info.shares) != n:
                continue
            data_shares = await self.good_shares(entry, version, number, skip=position)
            try:
                ciphertext = erasure.decode(data_shares, info.shares, info.sealed_size)
            except erasure.NotEnoughShares as err:
                self.counters["unrepairable_blocks"] += 1
                log.error("block {n} of {path} not repaired: {why}", n=number, path=entry.path, why=str(err))
                continue
            share = erasure.encode(ciphertext, n)[position]
            packet_id = piece_id(self.key_id, entry.path_id, version.version, number, position)
            await self.put_share(position, self.piece_packet(position, packet_id, pybase64.b64encode(share)))
        if position < len(version.suppliers):
            version.suppliers[position] = self.suppliers.slots[position].idurl


# a piece whose packet is not the one I stored under that id (another id, or not my signature)
_NOT_MINE = "not mine"


def _open_piece(payload: bytes, packet_id: str, my_key: Any) -> tuple[bytes, str] | str | None:
    """A Retrieve answer's nested packet: (share, its hash) if it is my packet stored as `packet_id`,
    _NOT_MINE if it is not, None if its payload is not a share. Runs in a worker thread."""
    stored = wire.parse(payload)
    # the same piece path, signed by me: stored under my global id then (my identity may have moved since)
    if stored.packet_id.partition(":")[2] != packet_id.partition(":")[2] or not packet_signature_valid(stored, my_key):
        return _NOT_MINE
    try:
        share = pybase64.b64decode(stored.payload, validate=True)
    except ValueError:
        return None
    return share, erasure.share_hash(share)


def _seal_and_code(
    chunk: bytes, owner: Any, place: bytes, n: int,
) -> tuple[sealed_block.SealedBlock, list[bytes | memoryview]]:
    sealed = sealed_block.seal(chunk, owner, place)
    return sealed, erasure.encode(sealed.ciphertext, n)
