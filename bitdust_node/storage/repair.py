"""Rebuilding a customer's lost shares: a block's shares for its bad positions made again from any k good shares
of the others and stored at the suppliers now holding those positions.

`RepairQueue` takes the degraded blocks health.py found, fewest healthy shares first, `REPAIR_CONCURRENCY` blocks
at a time (each holds its k shares, its ciphertext and its n new shares: a few blocks of memory), skipping
positions whose supplier is unreachable now (they are repaired once it answers again or is replaced). The
degraded blocks are in the health file, so a restarted customer goes on where it stopped."""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import attrs
import pybase64
from twisted.internet import defer, threads
from twisted.logger import Logger

from bitdust_node.errors import BitDustError
from bitdust_node.storage import erasure
from bitdust_node.storage.catalog import Entry, Version
from bitdust_node.storage.health import BlockRef, HealthChecker
from bitdust_node.storage.interfaces import Worker
from bitdust_node.storage.transfers import OutgoingShare, ShareMover, piece_id

log = Logger()
REPAIR_CONCURRENCY = 2


class Rebuilder:
    """Shares made again, one block at a time (a block's k shares, its ciphertext and the new share in memory)."""

    def __init__(
        self, mover: ShareMover, counters: collections.Counter[str], worker: Worker = threads.deferToThread,
    ) -> None:
        self.mover = mover
        self.counters = counters
        self._worker = worker

    async def rebuild_share(self, entry: Entry, version: Version, number: int, position: int) -> bool:
        """Store again, at the supplier now holding `position`, its share of one block; False when fewer than k
        good shares are left (the block is lost)."""
        info = version.blocks[number]
        n = len(info.shares)
        shares = await self.mover.good_shares(entry, version, number, skip={position})

        def remake() -> bytes | None:
            try:
                ciphertext = b"".join(erasure.primary(shares, n, info.sealed_size))[: info.sealed_size]
            except erasure.NotEnoughShares as err:
                log.error("block {n} of {path} not repaired: {why}", n=number, path=entry.path, why=str(err))
                return None
            return pybase64.b64encode(erasure.encode(ciphertext, n)[position])

        payload = await self._worker(remake)
        if payload is None:
            self.counters["unrepairable_blocks"] += 1
            return False
        await self._store(entry, version, number, position, payload)
        self.counters["bytes_repaired"] += len(payload) * 3 // 4
        self.counters["shares_repaired"] += 1
        return True

    async def rebuild_block(self, block: BlockRef, positions: set[int]) -> set[int]:
        """The block's shares of `positions` made from k good shares of the others and stored: the positions
        done (none when fewer than k good shares could be had)."""
        entry, version, number = block.entry, block.version, block.number
        info = version.blocks[number]
        n = len(info.shares)
        shares = await self.mover.good_shares(entry, version, number, skip=positions)

        def remake() -> dict[int, bytes] | None:
            try:
                ciphertext = b"".join(erasure.primary(shares, n, info.sealed_size))[: info.sealed_size]
            except erasure.NotEnoughShares as err:
                log.error("block {n} of {path} not repaired now: {why}", n=number, path=entry.path, why=str(err))
                return None
            made = erasure.encode(ciphertext, n)
            return {p: pybase64.b64encode(made[p]) for p in positions}

        payloads = await self._worker(remake)
        if payloads is None:
            self.counters["unrepairable_blocks"] += 1
            return set()
        done: set[int] = set()
        for position, payload in payloads.items():
            try:
                await self._store(entry, version, number, position, payload)
            except BitDustError as err:
                log.warn("share {pos} of block {n} of {path} not stored: {why}", pos=position, n=number,
                         path=entry.path, why=str(err))
                continue
            self.counters["bytes_repaired"] += len(payload) * 3 // 4
            self.counters["shares_repaired"] += 1
            done.add(position)
        return done

    async def _store(self, entry: Entry, version: Version, number: int, position: int, payload: bytes) -> None:
        """One share made again (its payload, held here till stored) to the supplier of its position."""
        packet_id = piece_id(self.mover.key_id, entry.path_id, version.version, number, position)
        packet = await self._worker(self.mover.piece_packet, position, packet_id, payload)
        await self.mover.put_share(position, OutgoingShare(packet_id, packet, lambda: payload))

    async def rebuild_version(self, entry: Entry, version: Version, position: int) -> None:
        """Every block's share of `position`; the version then records who holds it."""
        n = len(self.mover.holder.slots)
        for number, info in enumerate(version.blocks):
            if len(info.shares) == n:
                await self.rebuild_share(entry, version, number, position)
        if position < len(version.suppliers):
            version.suppliers[position] = self.mover.holder.slots[position].idurl

    async def heal(self, entry: Entry, version: Version) -> None:
        """Positions whose supplier was replaced while the version was stored get its earlier shares too."""
        for slot in self.mover.holder.slots:
            if slot.position < len(version.suppliers) and version.suppliers[slot.position] != slot.idurl:
                await self.rebuild_version(entry, version, slot.position)


@attrs.define
class RepairProgress:
    """What REST and /metrics show of the repairs."""

    queued: int = 0  # degraded blocks waiting
    running: int = 0
    repaired_blocks: int = 0
    waiting_for_suppliers: int = 0  # degraded blocks whose bad positions' suppliers do not answer now


class RepairQueue:
    """The degraded blocks rebuilt, fewest healthy shares first, a few at a time."""

    def __init__(
        self, rebuilder: Rebuilder, health: HealthChecker, saved: Callable[[], defer.Deferred[Any]],
        concurrency: int = REPAIR_CONCURRENCY,
    ) -> None:
        self.rebuilder = rebuilder
        self.health = health
        # the catalog saved (who holds each version changed) once repairs run dry
        self.saved = saved
        self.concurrency = concurrency
        self.progress = RepairProgress()
        self.stopped = False
        self._busy: set[str] = set()
        # blocks that could not be repaired now: tried again after the next check
        self._stuck: set[str] = set()
        self._starting = False
        self._again = False
        self._stop_listening = health.on_degraded(self.kick)

    def stop(self) -> None:
        self.stopped = True
        self._stop_listening()

    @property
    def idle(self) -> bool:
        return not self._busy

    def kick(self) -> None:
        """Start repairs up to the concurrency (a check that found degraded blocks calls it: stuck ones too)."""
        self._stuck.clear()
        self._start()

    def _ready(self) -> list[tuple[BlockRef, set[int]]]:
        """Degraded blocks not being repaired whose bad positions have a supplier answering now, in order."""
        unreachable = self.health.unreachable()
        ready, waiting = [], 0
        for _healthy, block, bad in self.health.degraded():
            if block.key in self._busy or block.key in self._stuck:
                continue
            reachable = bad - unreachable
            if reachable:
                ready.append((block, reachable))
            else:
                waiting += 1
        self.progress.waiting_for_suppliers = waiting
        return ready

    def _start(self) -> None:
        # a repair that ends at once (a test's grid) calls back in here: the loop below goes on instead
        if self._starting:
            self._again = True
            return
        self._starting = True
        try:
            self._again = True
            while self._again and not self.stopped:
                self._again = False
                ready = self._ready()
                while ready and len(self._busy) < self.concurrency:
                    block, positions = ready.pop(0)
                    self._busy.add(block.key)
                    work = defer.ensureDeferred(self._repair(block, positions))
                    work.addErrback(lambda f: log.failure("repair failed", f))
                    work.addBoth(self._finished, block.key)
                self.progress.queued = len(ready)
                self.progress.running = len(self._busy)
        finally:
            self._starting = False
        if not self._busy and not self.stopped:
            self._ran_dry()

    async def _repair(self, block: BlockRef, positions: set[int]) -> None:
        done = await self.rebuilder.rebuild_block(block, positions)
        if done:
            self.health.repaired(block, done)
            self.progress.repaired_blocks += 1
        if done != positions:
            self._stuck.add(block.key)  # fewer than k good shares reachable, or a store failed: not now

    def _finished(self, _result: object, key: str) -> None:
        self._busy.discard(key)
        self._start()

    def _ran_dry(self) -> None:
        if self.health.catalog_changed:
            self.health.catalog_changed = False
            self.saved().addErrback(lambda f: log.warn("catalog not saved after repairs: {why}",
                                                       why=f.getErrorMessage()))
        self.health.save()
