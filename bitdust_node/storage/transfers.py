"""Moving a customer's files to its suppliers and back (PROTOCOL-P2P.md 5.2, 5.4).

Upload: the file is read in blocks; each block is sealed (sealed_block.py), cut into n shares (erasure.py)
and share i goes to the supplier at position i as a Data packet
`master$<me>:<path id>/<version>/<block>-<i>-Data` whose payload is the share in base64 (official
suppliers store it like any piece). A supplier that fails is replaced and the upload goes on. Download:
shares are asked for (Retrieve) until k good ones are in (the nested packet signed by me, the share's
hash as the catalog says), then the block is rebuilt and opened. The shares travel through a `SupplierLink`.
"""

from __future__ import annotations

import collections
import enum
import functools
import os
from collections.abc import Callable, Collection, Coroutine
from pathlib import Path
from typing import Any, Protocol, TypeVar

import attrs
import pybase64
from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.failure import Failure

from bitdust_node.errors import BitDustError
from bitdust_node.storage import erasure, sealed_block
from bitdust_node.storage.catalog import BlockInfo, Entry, Version
from bitdust_node.storage.interfaces import Clock, Me, Worker
from bitdust_node.storage.supplier_link import Fetch, SupplierLink
from bitdust_node.storage.suppliers import Slot
from bitdust_node.wire import packet as wire

log = Logger()
# blocks awaiting their suppliers' Acks (upload; each holds its record only) or their shares (download; each
# holds its k shares): the pipeline stays full, memory stays bounded
WINDOW = 4
# blocks going out to their suppliers while the next is made (upload): one supplier slower for a moment does not
# stop the others (one: 83-84 MB/s for 256 MiB, two: 116-124, the same peak memory)
SENDING = 2
MAX_TRANSFERS_KEPT = 100
T = TypeVar("T")


class TransferError(BitDustError):
    """A transfer that cannot complete (too few suppliers, a lost block)."""

    http_status = 503
    exit_code = 1


class TransferStopped(TransferError):
    """A transfer its user stopped."""

    http_status = 409


class TransferKind(enum.StrEnum):
    UPLOAD = "upload"
    DOWNLOAD = "download"


class TransferState(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"


class StopButton:
    """A transfer's stop: once pressed, what the transfer waits on through `wait` fails at once with
    TransferStopped (the awaited work goes on, let go: a share on its way is not taken back from a socket)."""

    def __init__(self) -> None:
        self.pressed = False
        self.why = "stopped by the user"
        self._waits: set[defer.Deferred[Any]] = set()

    def press(self, why: str = "stopped by the user") -> None:
        if self.pressed:
            return
        self.pressed, self.why = True, why
        waits, self._waits = self._waits, set()
        for waiting in waits:
            waiting.errback(TransferStopped(why))

    def check(self) -> None:
        """Raise TransferStopped once pressed: between one block or file and the next."""
        if self.pressed:
            raise TransferStopped(self.why)

    def wait(self, work: defer.Deferred[T]) -> defer.Deferred[T]:
        """`work`'s outcome, or TransferStopped as soon as the button is pressed (`work` is then let go)."""
        if self.pressed:
            work.addErrback(lambda _failure: None)
            return defer.fail(TransferStopped(self.why))
        waiting: defer.Deferred[T] = defer.Deferred()
        self._waits.add(waiting)

        def settled(outcome: Any) -> None:
            if not waiting.called:  # pressed before: the outcome is nobody's (a failure is dropped here)
                self._waits.discard(waiting)
                if isinstance(outcome, Failure):
                    waiting.errback(outcome)
                else:
                    waiting.callback(outcome)

        work.addBoth(settled)
        return waiting


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
    stop: StopButton = attrs.field(factory=StopButton, eq=False, repr=False)
    # fires once the transfer ended, whatever its outcome (its own Deferred is its caller's)
    ended: defer.Deferred[None] = attrs.field(factory=defer.Deferred, eq=False, repr=False)


class TransferLog:
    """The latest transfers by number, oldest forgotten first; each one's end recorded with the clock."""

    def __init__(self, clock: Clock, keep: int = MAX_TRANSFERS_KEPT) -> None:
        self.clock = clock
        self.keep = keep
        self.by_number: collections.OrderedDict[int, Transfer] = collections.OrderedDict()
        self._next = 1
        # running ones, kept here however many later ones pushed them out of by_number
        self._running: dict[int, Transfer] = {}

    def start(
        self, kind: TransferKind, remote_path: str, local_path: str, total: int,
        work: Callable[[Transfer], Coroutine[Any, Any, None]],
    ) -> tuple[Transfer, defer.Deferred[Transfer]]:
        transfer = Transfer(kind, remote_path, local_path, total, started=self.clock.seconds())
        number, self._next = self._next, self._next + 1
        self.by_number[number] = self._running[number] = transfer
        while len(self.by_number) > self.keep:
            self.by_number.popitem(last=False)
        transfer.ended.addBoth(lambda _: self._running.pop(number, None))
        return transfer, defer.ensureDeferred(self._run(transfer, work(transfer)))

    def running(self) -> list[Transfer]:
        return list(self._running.values())

    def stop(self, kind: TransferKind, remote_path: str) -> list[Transfer]:
        """Stop the running transfers of `kind` of a path (a folder's: those of its files too); those asked to.
        Each ends at once in state `stopped`, unless it is past its last wait (its file stored whole, or written)."""
        stopped = [t for t in self.running() if t.kind == kind and t.state == TransferState.RUNNING
                   and (t.remote_path == remote_path or t.remote_path.startswith(remote_path + "/"))]
        for transfer in stopped:
            transfer.stop.press()
        return stopped

    def stop_all(self, why: str) -> defer.Deferred[None]:
        """Every running transfer stopped; fires once they all ended (it never fails)."""
        running = self.running()
        for transfer in running:
            transfer.stop.press(why)
        return defer.gatherResults([t.ended for t in running]).addCallback(lambda _: None)

    async def _run(self, transfer: Transfer, work: Coroutine[Any, Any, None]) -> Transfer:
        try:
            await work
            transfer.state = TransferState.DONE
        except TransferStopped as err:
            transfer.state, transfer.error = TransferState.STOPPED, str(err)
            raise
        except Exception as err:
            transfer.state, transfer.error = TransferState.FAILED, str(err)
            raise
        finally:
            transfer.finished = self.clock.seconds()
            transfer.ended.callback(None)
        return transfer


class SlotHolder(Protocol):
    """Who holds each position now (Suppliers)."""

    slots: list[Slot]


def piece_id(key_id: str, path_id: str, version: str, block: int, position: int) -> str:
    return f"{key_id}:{path_id}/{version}/{block}-{position}-Data"


def associated(path_id: str, version: str, block: int) -> bytes:
    return f"{path_id}/{version}/{block}".encode()


@attrs.define(eq=False)
class OutgoingShare:
    """One share on its way to the supplier of its position: its signed packet until a transport takes it, then
    only a way to make its payload again should a supplier fail it (the block is not kept for that)."""

    packet_id: str
    packet: wire.Packet | None
    # the share's payload (base64) made again, in a worker thread
    remake: Callable[[], bytes]
    # fires once the first packet is delivered, or the store failed: the upload's pace
    sent: defer.Deferred[None] = attrs.field(factory=defer.Deferred)

    def delivered(self) -> None:
        if not self.sent.called:
            self.sent.callback(None)


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

    async def put_share(self, position: int, share: OutgoingShare, stop: StopButton | None = None) -> None:
        """Store one share at the supplier of `position`; a failing supplier is replaced and asked no more, and
        the share is made again and signed for the one that takes its place."""
        stop = stop or StopButton()  # one nobody presses: a repair's share
        try:
            for attempt in range(3):
                if attempt:
                    stop.check()  # a stopped upload's share is deleted anyway: no supplier fired for it
                slot = self.holder.slots[position]
                if not slot.connected:
                    await self.replace(position, "no supplier")
                    continue
                asked = slot.idurl
                try:
                    packet, share.packet = share.packet, None
                    if packet is None or packet.remote_id != asked:
                        payload = packet.payload if packet is not None else await self._worker(share.remake)
                        packet = await self._worker(self.piece_packet, position, share.packet_id, payload)
                        del payload
                    asked = packet.remote_id
                    storing = defer.ensureDeferred(self.link.store(packet, share.delivered))
                    del packet  # the transport's until delivered, then nobody's: no block is kept for the Acks
                    refused = await storing
                except BitDustError as err:
                    stop.check()
                    if self._still_holds(position, asked):
                        await self.replace(position, f"store failed: {err}")
                    continue
                if refused is None:
                    return
                stop.check()
                if self._still_holds(position, asked):
                    await self.replace(position, "refused a piece: " + refused)
            raise TransferError(f"no supplier at position {position} took piece {share.packet_id}")
        finally:
            share.delivered()

    def _still_holds(self, position: int, asked: str) -> bool:
        """Whether the supplier asked still holds the position: a failure of one already replaced fires nobody
        (the share goes to its successor)."""
        slot = self.holder.slots[position]
        return not slot.connected or slot.idurl == asked

    async def get_share(self, position: int, packet_id: str, expected: str = "") -> tuple[bytes, str] | None:
        """The share at one supplier and its hash (in the scheme of `expected`, the catalog's), checked to be the
        packet I stored (my signature); None if it has none or gave something else."""
        slot = self.holder.slots[position] if position < len(self.holder.slots) else None
        if slot is None or not slot.connected:
            return None
        fetched = await self.link.fetch(slot.idurl, packet_id, expected)
        if fetched.outcome is Fetch.ALTERED:
            self.counters["bad_shares"] += 1
            log.warn("supplier {idurl} gave a piece I did not store as {pid}: {why}", idurl=slot.idurl, pid=packet_id,
                     why=fetched.why)
        return (fetched.share, fetched.hash) if fetched.outcome is Fetch.GOT else None

    # -- upload

    async def upload(
        self, path: Path, entry: Entry, version: Version, transfer: Transfer,
        unsettled: list[defer.Deferred[Any]] | None = None,
    ) -> None:
        """The file's blocks made one at a time while the ones before go out, a block made only once its suppliers
        have all but SENDING blocks before it: at most SENDING + 1 blocks' packets are held (fewer: a packet is let
        go once written), whatever the file's size and however late the suppliers' Acks come (up to WINDOW blocks
        wait for them, holding only their records). Stopped or failed, the blocks whose stores were still under way
        go into `unsettled`."""
        me = self.me.require()
        n = len(self.holder.slots)
        unacked: list[defer.Deferred[BlockInfo]] = []
        going_out: list[defer.Deferred[Any]] = []  # blocks whose packets their suppliers do not all have yet
        # the size the version records; an empty file is one empty block, so it has a version too
        count = max(1, -(-version.size // version.block_size))
        try:
            for number in range(count):
                transfer.stop.check()
                info, stores, sending = await self._send_block(me, entry, version, number, path, n, transfer.stop,
                                                               unsettled)
                unacked.append(defer.ensureDeferred(self._stored(info, stores, transfer)))
                going_out.append(defer.gatherResults(sending))
                if len(going_out) > SENDING:
                    await transfer.stop.wait(going_out.pop(0))
                if len(unacked) >= WINDOW:
                    version.blocks.append(await self._oldest_stored(unacked, transfer))
            while unacked:
                version.blocks.append(await self._oldest_stored(unacked, transfer))
        finally:
            _let_go(unacked)
            if unsettled is not None:
                unsettled.extend(unacked)
        version.complete = True

    @staticmethod
    async def _oldest_stored(unacked: list[defer.Deferred[BlockInfo]], transfer: Transfer) -> BlockInfo:
        """The oldest block in flight once stored; it stays in `unacked` (still under way) if the transfer stops."""
        info = await transfer.stop.wait(unacked[0])
        unacked.pop(0)
        return info

    async def _send_block(
        self, me: Any, entry: Entry, version: Version, number: int, path: Path, n: int,
        stop: StopButton | None = None, unsettled: list[defer.Deferred[Any]] | None = None,
    ) -> tuple[BlockInfo, list[defer.Deferred[None]], list[defer.Deferred[None]]]:
        """One block read, sealed and coded, each share signed and handed to its store as soon as it is made: the
        data shares straight from the ciphertext while the parity is coded, side by side in worker threads (hashing
        and sealing release the GIL). The block's record, its stores, and when each share went out."""
        place = associated(entry.path_id, version.version, number)
        key = sealed_block.BlockKey.fresh()
        owner = me.key.public_key()
        size, sealed = await self._worker(_sealed_block, path, version.block_size, number, owner, place, key)
        info = BlockInfo(size, len(sealed.ciphertext), sealed.wrapped_key, sealed.nonce, [""] * n)
        primary = erasure.data_shares(sealed.ciphertext, n)
        del sealed  # the data shares are views of its ciphertext: it goes once they are signed and coded
        stores: list[defer.Deferred[None]] = []
        sending: list[defer.Deferred[None]] = []

        def share_out(i: int, share: bytes | memoryview) -> defer.Deferred[None]:
            remake = functools.partial(_remade_share, path, version.block_size, number, key, owner, place, n, i)
            made = self._worker(self._outgoing, piece_id(self.key_id, entry.path_id, version.version, number, i), i,
                                share, remake)
            return made.addCallback(start, i)

        def start(made: tuple[str, OutgoingShare], i: int) -> None:
            info.shares[i], share = made
            sending.append(share.sent)
            stores.append(defer.ensureDeferred(self.put_share(i, share, stop)))

        async def parity_out(data: list[bytes | memoryview]) -> None:
            k = len(data)
            parity = await self._worker(erasure.parity_shares, data, n)
            del data
            await defer.gatherResults([share_out(k + j, share) for j, share in enumerate(parity)])

        making = [share_out(i, share) for i, share in enumerate(primary)]
        making.append(defer.ensureDeferred(parity_out(primary)))
        del primary
        try:
            await defer.gatherResults(making, consumeErrors=True)
        except defer.FirstError as err:
            _let_go(stores)
            if unsettled is not None:
                unsettled.extend(stores)  # shares of it already on their way
            err.subFailure.raiseException()
        return info, stores, sending

    def _outgoing(
        self, packet_id: str, position: int, share: bytes | memoryview, remake: Callable[[str], bytes],
    ) -> tuple[str, OutgoingShare]:
        """(In a worker thread.) A share's hash and its signed packet."""
        digest = erasure.share_hash(share)
        packet = self.piece_packet(position, packet_id, pybase64.b64encode(share))
        return digest, OutgoingShare(packet_id, packet, functools.partial(remake, digest))

    async def _stored(self, info: BlockInfo, stores: list[defer.Deferred[None]], transfer: Transfer) -> BlockInfo:
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
                                                                number, i), info.shares[i]))
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

    async def download(self, entry: Entry, version: Version, destination: Path, transfer: Transfer) -> None:
        """The blocks' shares fetched up to WINDOW blocks ahead; each block, in turn, rebuilt and opened straight
        into the file in a worker thread: a block in flight holds its k shares only."""
        me = self.me.require()
        temp = destination.with_name(destination.name + ".incoming")
        destination.parent.mkdir(parents=True, exist_ok=True)
        pending: list[defer.Deferred[dict[int, bytes]]] = []
        oldest = 0  # the number of the oldest block in flight
        try:
            with open(temp, "wb") as out:
                writeback = EarlyWriteback(self._worker, out.fileno())
                try:
                    for number in range(len(version.blocks)):
                        transfer.stop.check()
                        pending.append(defer.ensureDeferred(self.good_shares(entry, version, number)))
                        if len(pending) >= WINDOW:
                            oldest = await self._write_block(out, me, entry, version, oldest, pending, transfer)
                            writeback.written()
                    while pending:
                        oldest = await self._write_block(out, me, entry, version, oldest, pending, transfer)
                        writeback.written()
                finally:
                    await writeback.settled()  # no sync may run on the file's descriptor once it is closed
                await writeback.finished()
                await self._worker(_flushed, out)
            os.replace(temp, destination)
        finally:
            _let_go(pending)
            temp.unlink(missing_ok=True)

    async def _write_block(
        self, out: Any, me: Any, entry: Entry, version: Version, number: int,
        pending: list[defer.Deferred[dict[int, bytes]]], transfer: Transfer,
    ) -> int:
        """The oldest block in flight opened into the file; the number of the next."""
        shares = await transfer.stop.wait(pending[0])
        pending.pop(0)
        info = version.blocks[number]

        def rebuild() -> int:
            try:
                pieces = erasure.primary(shares, len(info.shares), info.sealed_size)
            except erasure.NotEnoughShares as err:
                raise TransferError(f"block {number} of {entry.path} cannot be rebuilt: {err}") from None
            shares.clear()  # the pieces hold what is needed
            return sealed_block.open_into(out.write, pieces, info.sealed_size, info.wrapped_key, info.nonce, me.key,
                                          associated(entry.path_id, version.version, number))

        if not (isinstance(info.wrapped_key, bytes) and isinstance(info.nonce, bytes)):  # a copy edited by hand
            raise TransferError(f"block {number} of {entry.path} has no readable key in the catalog")
        # decoding, opening and writing release the GIL: a worker thread does them while the next shares come in
        size = await self._worker(rebuild)
        transfer.done += size
        self.counters["bytes_downloaded"] += size
        return number + 1


def _read_block(path: Path, block_size: int, number: int) -> bytes:
    with open(path, "rb") as source:  # a handle of its own: none is closed under a block still reading
        source.seek(number * block_size)
        return source.read(block_size)


def _sealed_block(
    path: Path, block_size: int, number: int, owner: Any, place: bytes, key: sealed_block.BlockKey,
) -> tuple[int, sealed_block.SealedBlock]:
    """(In a worker thread.) A block of the file, sealed: its plaintext size and the sealed block."""
    chunk = _read_block(path, block_size, number)
    return len(chunk), sealed_block.seal(chunk, owner, place, key)


def _remade_share(
    path: Path, block_size: int, number: int, key: sealed_block.BlockKey, owner: Any, place: bytes, n: int,
    position: int, expected: str,
) -> bytes:
    """(In a worker thread.) A share of a block sent before, made again from the file with the block's own key:
    the payload of a packet for a supplier that takes the place of one that failed it."""
    _size, sealed = _sealed_block(path, block_size, number, owner, place, key)
    share = erasure.encode(sealed.ciphertext, n)[position]
    if erasure.share_hash(share) != expected:
        raise TransferError(f"{path} changed while it was stored (block {number})")
    return pybase64.b64encode(share)


class EarlyWriteback:
    """A download's blocks sent to the disk while the next ones come in, one fdatasync at a time in a worker
    thread: the fsync that ends it waits for the last block or two, not the whole file (16 MiB: 4-6 ms instead
    of 11)."""

    def __init__(self, worker: Worker, fd: int) -> None:
        self._worker = worker
        self._fd = fd
        self._syncing: defer.Deferred[None] | None = None
        self._error: Failure | None = None

    def written(self) -> None:
        """More of the file was written: to the disk with it, unless a sync is under way (the next covers it)."""
        if self._syncing is None:
            self._syncing = self._worker(_data_synced, self._fd)
            self._syncing.addCallbacks(self._done, self._failed)

    def _done(self, _result: None) -> None:
        self._syncing = None

    def _failed(self, failure: Failure) -> None:
        self._syncing, self._error = None, failure

    async def settled(self) -> None:
        """Once no sync is under way (its outcome kept for `finished`)."""
        if self._syncing is not None:
            await self._syncing

    async def finished(self) -> None:
        """Once the sync under way is over; its error, or an earlier one's, raised."""
        await self.settled()
        if self._error is not None:
            self._error.raiseException()


def _data_synced(fd: int) -> None:
    # fdatasync is not everywhere (macOS): fsync does the same and a little more
    (os.fdatasync if hasattr(os, "fdatasync") else os.fsync)(fd)


def _flushed(out: Any) -> None:
    out.flush()
    os.fsync(out.fileno())


def _let_go(pending: list[defer.Deferred[Any]]) -> None:
    """Blocks still in flight when a transfer failed: they finish on their own, their failures already told."""
    for waiting in pending:
        waiting.addErrback(lambda _failure: None)
