"""Rebuilding a customer's lost shares: a block's share for one position made again from any k good shares of
the others and stored at the supplier now holding that position."""

from __future__ import annotations

import collections

import pybase64
from twisted.internet import threads
from twisted.logger import Logger

from bitdust_node.storage import erasure
from bitdust_node.storage.catalog import Catalog, Entry, Version
from bitdust_node.storage.interfaces import Worker
from bitdust_node.storage.transfers import ShareMover, piece_id

log = Logger()


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
        shares = await self.mover.good_shares(entry, version, number, skip=position)

        def remake() -> bytes | None:
            try:
                ciphertext = erasure.decode(shares, info.shares, info.sealed_size)
            except erasure.NotEnoughShares as err:
                log.error("block {n} of {path} not repaired: {why}", n=number, path=entry.path, why=str(err))
                return None
            return pybase64.b64encode(erasure.encode(ciphertext, n)[position])

        payload = await self._worker(remake)
        if payload is None:
            self.counters["unrepairable_blocks"] += 1
            return False
        packet_id = piece_id(self.mover.key_id, entry.path_id, version.version, number, position)
        packet = await self._worker(self.mover.piece_packet, position, packet_id, payload)
        await self.mover.put_share(position, packet)
        self.counters["bytes_repaired"] += len(payload) * 3 // 4
        self.counters["shares_repaired"] += 1
        return True

    async def rebuild_version(self, entry: Entry, version: Version, position: int) -> None:
        """Every block's share of `position`; the version then records who holds it."""
        n = len(self.mover.holder.slots)
        for number, info in enumerate(version.blocks):
            if len(info.shares) == n:
                await self.rebuild_share(entry, version, number, position)
        if position < len(version.suppliers):
            version.suppliers[position] = self.mover.holder.slots[position].idurl

    async def rebuild_position(self, catalog: Catalog, position: int) -> None:
        """Every complete version's shares of `position` (its supplier was replaced)."""
        for entry in list(catalog.entries.values()):
            for version in entry.versions:
                if version.complete:
                    await self.rebuild_version(entry, version, position)

    async def heal(self, entry: Entry, version: Version) -> None:
        """Positions whose supplier was replaced while the version was stored get its earlier shares too."""
        for slot in self.mover.holder.slots:
            if slot.position < len(version.suppliers) and version.suppliers[slot.position] != slot.idurl:
                await self.rebuild_version(entry, version, slot.position)
