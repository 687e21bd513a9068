"""Moving a customer's files to its suppliers and back (PROTOCOL-P2P.md 5.2, 5.4).

Upload: the file is read in blocks; each block is sealed (sealed_block.py), cut into n shares (erasure.py)
and share i goes to the supplier at position i as a Data packet
`master$<me>:<path id>/<version>/<block>-<i>-Data` whose payload is the share in base64 (official
suppliers store it like any piece). A supplier that fails is replaced and the upload goes on. Download:
shares are asked for (Retrieve) until k good ones are in (the nested packet signed by me, the share's
hash as the catalog says), then the block is rebuilt and opened. The shares travel through a `SupplierLink`.
"""

from __future__ import annotations

import base64
import collections
import enum
import os
from collections.abc import Callable, Collection, Coroutine
from pathlib import Path
from typing import Any, Protocol

import attrs
import pybase64
from twisted.internet import defer, threads
from twisted.logger import Logger

from bitdust_node.errors import BitDustError
from bitdust_node.storage import erasure, sealed_block
from bitdust_node.storage.catalog import BlockInfo, Entry, Version
from bitdust_node.storage.interfaces import Clock, Me, Worker
from bitdust_node.storage.supplier_link import Fetch, SupplierLink
from bitdust_node.storage.suppliers import Slot
from bitdust_node.wire import packet as wire

log = Logger()
# blocks sealed, coded and in flight at once: the pipeline stays full, memory stays bounded
WINDOW = 4
MAX_TRANSFERS_KEPT = 100


class TransferError(BitDustError):
    """A transfer that cannot complete (too few suppliers, a lost block)."""

    http_status = 503
    exit_code = 1


class TransferKind(enum.StrEnum):
    UPLOAD = "upload"
    DOWNLOAD = "download"


class TransferState(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@attrs.define
class Transfer:
    """An upload or a download and how far it got (REST and the CLI show it)."""

    kind: TransferKind
    remote_path: str
    local_path: str
    total: int
    started: float
    done: int = 0
    state: TransferState = TransferState.RUNNING
    error: str = ""
    finished: float = 0.0
    version: str = ""


class TransferLog:
    """The latest transfers by number, oldest forgotten first; each one's end recorded with the clock."""

    def __init__(self, clock: Clock, keep: int = MAX_TRANSFERS_KEPT) -> None:
        self.clock = clock
        self.keep = keep
        self.by_number: collections.OrderedDict[int, Transfer] = collections.OrderedDict()
        self._next = 1

    def start(
        self, kind: TransferKind, remote_path: str, local_path: str, total: int,
        work: Callable[[Transfer], Coroutine[Any, Any, None]],
    ) -> tuple[Transfer, defer.Deferred[Transfer]]:
        transfer = Transfer(kind, remote_path, local_path, total, started=self.clock.seconds())
        self.by_number[self._next] = transfer
        self._next += 1
        while len(self.by_number) > self.keep:
            self.by_number.popitem(last=False)
        return transfer, defer.ensureDeferred(self._run(transfer, work(transfer)))

    async def _run(self, transfer: Transfer, work: Coroutine[Any, Any, None]) -> Transfer:
        try:
            await work
            transfer.state = TransferState.DONE
        except Exception as err:
            transfer.state, transfer.error = TransferState.FAILED, str(err)
            raise
        finally:
            transfer.finished = self.clock.seconds()
        return transfer


class SlotHolder(Protocol):
    """Who holds each position now (Suppliers)."""

    slots: list[Slot]


def piece_id(key_id: str, path_id: str, version: str, block: int, position: int) -> str:
    return f"{key_id}:{path_id}/{version}/{block}-{position}-Data"


def associated(path_id: str, version: str, block: int) -> bytes:
    return f"{path_id}/{version}/{block}".encode()


class ShareMover:
    """Shares to and from the supplier of each position, and files through them: a supplier that fails a store
    is replaced (`replace(position, why)` fires once another holds the position) and the share goes to it."""

    def __init__(
        self, link: SupplierLink, me: Me, holder: SlotHolder, replace: Callable[[int, str], defer.Deferred[None]],
        counters: collections.Counter[str], worker: Worker = threads.deferToThread,
    ) -> None:
        self.link = link
        self.me = me
        self.holder = holder
        self.replace = replace
        self.counters = counters
        self._worker = worker

    @property
    def key_id(self) -> str:
        return self.me.require().key_id

    # -- shares to and from one supplier

    def piece_packet(self, position: int, packet_id: str, payload: bytes) -> wire.Packet:
        """The Data packet of one share (`payload`: the share in base64), signed, for the supplier now at
        `position` (safe in a worker thread)."""
        return self.link.piece_packet(self.holder.slots[position].idurl, packet_id, payload)

    async def put_share(self, position: int, packet: wire.Packet) -> None:
        """Store one share (its signed Data packet) at the supplier of `position`; a failing supplier is replaced
        and asked no more, and the share is signed again for the one that takes its place."""
        for _attempt in range(3):
            slot = self.holder.slots[position]
            if not slot.connected:
                await self.replace(position, "no supplier")
                continue
            asked = slot.idurl
            try:
                if packet.remote_id != asked:
                    packet = await self._worker(self.piece_packet, position, packet.packet_id, packet.payload)
                refused = await self.link.store(packet)
            except BitDustError as err:
                if self._still_holds(position, asked):
                    await self.replace(position, f"store failed: {err}")
                continue
            if refused is None:
                return
            if self._still_holds(position, asked):
                await self.replace(position, "refused a piece: " + refused)
        raise TransferError(f"no supplier at position {position} took piece {packet.packet_id}")

    def _still_holds(self, position: int, asked: str) -> bool:
        """Whether the supplier asked still holds the position: a failure of one already replaced fires nobody
        (the share goes to its successor)."""
        slot = self.holder.slots[position]
        return not slot.connected or slot.idurl == asked

    async def get_share(self, position: int, packet_id: str) -> tuple[bytes, str] | None:
        """The share at one supplier and its hash, checked to be the packet I stored (my signature); None if
        it has none or gave something else."""
        slot = self.holder.slots[position] if position < len(self.holder.slots) else None
        if slot is None or not slot.connected:
            return None
        fetched = await self.link.fetch(slot.idurl, packet_id)
        if fetched.outcome is Fetch.ALTERED:
            self.counters["bad_shares"] += 1
            log.warn("supplier {idurl} gave a piece I did not store as {pid}: {why}", idurl=slot.idurl, pid=packet_id,
                     why=fetched.why)
        return (fetched.share, fetched.hash) if fetched.outcome is Fetch.GOT else None

    # -- upload

    async def upload(self, path: Path, entry: Entry, version: Version, transfer: Transfer) -> None:
        me = self.me.require()
        n = len(self.holder.slots)
        pending: list[defer.Deferred[BlockInfo]] = []
        # the size the version records; an empty file is one empty block, so it has a version too
        count = max(1, -(-version.size // version.block_size))
        try:
            for number in range(count):
                pending.append(defer.ensureDeferred(self._upload_block(me, entry, version, number, path, n, transfer)))
                if len(pending) >= WINDOW:
                    version.blocks.append(await pending.pop(0))
            while pending:
                version.blocks.append(await pending.pop(0))
        finally:
            _let_go(pending)
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
        info, packets = await self._worker(prepare)
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

    async def good_shares(
        self, entry: Entry, version: Version, number: int, skip: Collection[int] = (),
    ) -> dict[int, bytes]:
        """Up to k shares of a block whose hashes match the catalog, asked for k at a time (more when some are
        missing or wrong); the positions `skip` are not asked (the ones being rebuilt)."""
        info = version.blocks[number]
        n = len(info.shares)
        k = erasure.needed(n)
        shares: dict[int, bytes] = {}
        order = [i for i in range(n) if i not in skip]
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
        return await self._worker(rebuild)

    async def download(self, entry: Entry, version: Version, destination: Path, transfer: Transfer) -> None:
        temp = destination.with_name(destination.name + ".incoming")
        destination.parent.mkdir(parents=True, exist_ok=True)
        pending: list[defer.Deferred[bytes]] = []
        try:
            with open(temp, "wb") as out:
                for number in range(len(version.blocks)):
                    pending.append(defer.ensureDeferred(self.read_block(entry, version, number)))
                    if len(pending) >= WINDOW:
                        self._written(out, await pending.pop(0), transfer)
                while pending:
                    self._written(out, await pending.pop(0), transfer)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, destination)
        finally:
            _let_go(pending)
            temp.unlink(missing_ok=True)

    def _written(self, out: Any, data: bytes, transfer: Transfer) -> None:
        out.write(data)
        transfer.done += len(data)
        self.counters["bytes_downloaded"] += len(data)


def _let_go(pending: list[defer.Deferred[Any]]) -> None:
    """Blocks still in flight when a transfer failed: they finish on their own, their failures already told."""
    for waiting in pending:
        waiting.addErrback(lambda _failure: None)


def _seal_and_code(
    chunk: bytes, owner: Any, place: bytes, n: int,
) -> tuple[sealed_block.SealedBlock, list[bytes | memoryview]]:
    sealed = sealed_block.seal(chunk, owner, place)
    return sealed, erasure.encode(sealed.ciphertext, n)
