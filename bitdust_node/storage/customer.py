"""The customer: its suppliers, its catalog and its transfers, as REST and the CLI use them.

The catalog is saved in `HOME/customer/catalog` after every change and sent, sealed to my own key and
signed, to every supplier (the index piece). On a fresh home (a key backup restored) the suppliers are
found again in the DHT family record and the newest catalog any of them holds is taken.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.failure import Failure

from bitdust_node.crypto import block as blocks
from bitdust_node.crypto.keys import write_secret_file
from bitdust_node.crypto.packet_signing import packet_signature_valid
from bitdust_node.errors import BitDustError, NotFound
from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.sizes import size_to_bytes
from bitdust_node.storage import erasure
from bitdust_node.storage.catalog import Catalog, CatalogError, Entry, Version, new_version, normalize
from bitdust_node.storage.suppliers import Suppliers, per_supplier_bytes
from bitdust_node.storage.transfers import Mover, Transfer, TransferError
from bitdust_node.transport.interfaces import PacketNetwork
from bitdust_node.wire import packet as wire

log = Logger()
CATALOG_FILE = "catalog"
MAX_TRANSFERS_KEPT = 100
CATALOG_TIMEOUT = 30.0


class StorageSettings:
    """What the customer reads from `services/customer/*` each time it needs it (changes apply live)."""

    def __init__(self, get: Any) -> None:
        self._get = get

    @property
    def suppliers(self) -> int:
        return int(self._get("suppliers-number"))

    @property
    def needed(self) -> int:
        return size_to_bytes(str(self._get("needed-space")))

    @property
    def block_size(self) -> int:
        return size_to_bytes(str(self._get("block-size")))

    @property
    def preferred(self) -> list[str]:
        raw = str(self._get("preferred-suppliers"))
        return [p for p in raw.replace(",", " ").replace(";", " ").split() if p]


class Customer:
    def __init__(
        self, gateway: PacketNetwork, me: MyIdentityHolder, cache: IdentityCache, suppliers: Suppliers,
        settings: StorageSettings, folder: Path, clock: Any,
    ) -> None:
        self.gateway = gateway
        self.me = me
        self.cache = cache
        self.suppliers = suppliers
        self.settings = settings
        self.folder = folder
        self.clock = clock
        self.catalog = self._load_catalog()
        self._catalog_disk = defer.DeferredLock()
        self.transfers: collections.OrderedDict[int, Transfer] = collections.OrderedDict()
        self._next_transfer = 1
        self._replacing: dict[int, list[defer.Deferred[None]]] = {}
        self.repairing: defer.Deferred[None] | None = None
        self.mover = Mover(gateway, me, cache, suppliers, self.replace)
        self.counters = self.mover.counters  # one set of figures for the customer and its transfers

    # -- catalog

    def _load_catalog(self) -> Catalog:
        path = self.folder / CATALOG_FILE
        if not path.exists():
            return Catalog()
        try:
            return Catalog.parse(path.read_bytes())
        except (OSError, CatalogError) as err:
            log.error("catalog {path} unreadable ({why}); the suppliers' copy will be fetched", path=str(path),
                      why=str(err))
            return Catalog()

    @property
    def index_backup_id(self) -> str:
        return self.me.require().key_id + ":.index"

    async def save_catalog(self) -> None:
        """Keep the catalog here, then give every supplier its copy. Sealing and signing the copies and writing
        (and fsyncing) mine run in worker threads, my write while the copies travel."""
        self.catalog.revision += 1
        text = self.catalog.serialize()
        me = self.me.require()
        slots = self.suppliers.connected()
        packet_ids = [f"{me.key_id}:.index.{slot.position}.{self.gateway.new_packet_id()}" for slot in slots]

        def seal_and_sign() -> list[wire.Packet]:
            payload = blocks.seal(text, self.index_backup_id, me.idurl, me.key.public_key(), me.key)
            return [self.gateway.outbox("Data", slot.idurl, payload, packet_id=packet_id)
                    for slot, packet_id in zip(slots, packet_ids, strict=True)]

        kept = self._keep_catalog(text)
        try:
            packets = await threads.deferToThread(seal_and_sign)
            sends = [defer.ensureDeferred(self._send_index(packet)) for packet in packets]
            results = await defer.DeferredList(sends, consumeErrors=True)
            self.counters["catalog_copies"] += sum(1 for ok, stored in results if ok and stored)
        finally:
            await kept  # a local write that failed fails the save, as before

    def _keep_catalog(self, text: bytes) -> defer.Deferred[None]:
        """Write my copy of the catalog in a worker thread, one write at a time and in the order asked: the
        newest revision is the one left on disk."""
        return self._catalog_disk.run(threads.deferToThread, write_secret_file, self.folder / CATALOG_FILE, text)

    async def _send_index(self, packet: wire.Packet) -> bool:
        supplier = await self.cache.known(packet.remote_id)
        answer = await self.gateway.request(packet, supplier, timeout=CATALOG_TIMEOUT)
        return answer.command == "Ack"

    async def fetch_catalog(self) -> bool:
        """The newest catalog any supplier holds, if newer than mine; True when one was taken."""
        me = self.me.require()
        asks = []
        for slot in self.suppliers.connected():
            packet_id = f"{me.key_id}:.index.{slot.position}.{self.gateway.new_packet_id()}"
            asks.append(defer.ensureDeferred(self._fetch_index(slot.idurl, packet_id)))
        found = [c for ok, c in await defer.DeferredList(asks, consumeErrors=True) if ok and c is not None]
        newest = max(found, key=lambda c: c.revision, default=None)
        if newest is None or newest.revision <= self.catalog.revision:
            return False
        self.catalog = newest
        await self._keep_catalog(newest.serialize())
        log.info("catalog revision {rev} taken from the suppliers", rev=newest.revision)
        return True

    async def _fetch_index(self, idurl: str, packet_id: str) -> Catalog | None:
        me = self.me.require()
        supplier = await self.cache.known(idurl)
        request = self.gateway.outbox("Retrieve", idurl, b"", packet_id=packet_id)
        answer = await self.gateway.request(request, supplier, timeout=CATALOG_TIMEOUT)
        if answer.command != "Data":
            return None
        try:
            stored = wire.parse(answer.payload)
            if stored.creator_id != me.idurl:
                return None
            if not packet_signature_valid(stored, me.key.public_key()):
                log.warn("supplier {idurl} gave a catalog I did not sign", idurl=idurl)
                return None
            return Catalog.parse(blocks.unseal(stored.payload, me.key, self.index_backup_id))
        except (wire.PacketFormatError, blocks.BlockError, CatalogError) as err:
            log.info("catalog from {idurl} unreadable: {why}", idurl=idurl, why=str(err))
            return None

    # -- suppliers

    def per_supplier(self) -> int:
        n = self.settings.suppliers
        return per_supplier_bytes(self.settings.needed, n, erasure.needed(n))

    async def connect(self) -> int:
        """Hire up to suppliers-number suppliers, then take the suppliers' catalog if it is newer."""
        self.suppliers.preferred = self.settings.preferred
        connected = await self.suppliers.fill(self.settings.suppliers, self.per_supplier())
        if connected:
            await self.fetch_catalog()
        return connected

    def replace(self, position: int, why: str) -> defer.Deferred[None]:
        """Hire another supplier for `position` (once, however many transfers noticed), then rebuild its shares."""
        waiting: defer.Deferred[None] = defer.Deferred()
        waiters = self._replacing.get(position)
        if waiters is not None:
            waiters.append(waiting)
            return waiting
        self._replacing[position] = [waiting]
        self.suppliers.fire(position, why)

        def finished(outcome: Any) -> None:
            for waiter in self._replacing.pop(position, []):
                if isinstance(outcome, Failure):
                    waiter.errback(outcome)
                else:
                    waiter.callback(None)

        defer.ensureDeferred(self._replace(position)).addBoth(finished)
        return waiting

    async def _replace(self, position: int) -> None:
        await self.suppliers.fill(self.settings.suppliers, self.per_supplier())
        if self.suppliers.slots[position].state != "CONNECTED":
            raise TransferError(f"no supplier could be hired for position {position}")
        self.counters["replaced"] += 1
        # the stored versions' shares for the new supplier are rebuilt meanwhile; transfers go on at once
        self.repairing = defer.ensureDeferred(self._repair_all(position))
        self.repairing.addErrback(lambda f: log.error("repair of position {pos} failed: {why}", pos=position,
                                                      why=f.getErrorMessage()))

    async def _repair_all(self, position: int) -> None:
        for entry in list(self.catalog.entries.values()):
            for version in entry.versions:
                if version.complete:
                    await self.mover.repair(entry, version, position)
        await self.save_catalog()
        self.counters["repaired_positions"] += 1

    async def _heal(self, entry: Entry, version: Version) -> None:
        """Positions whose supplier was replaced while the version was stored get its earlier shares too."""
        for slot in self.suppliers.slots:
            if slot.position < len(version.suppliers) and version.suppliers[slot.position] != slot.idurl:
                await self.mover.repair(entry, version, slot.position)

    # -- transfers

    def _track(self, transfer: Transfer) -> Transfer:
        self.transfers[self._next_transfer] = transfer
        self._next_transfer += 1
        while len(self.transfers) > MAX_TRANSFERS_KEPT:
            self.transfers.popitem(last=False)
        return transfer

    def start_upload(self, local: Path, remote: str) -> tuple[Transfer, defer.Deferred[Transfer]]:
        local = local.expanduser().resolve()
        if not local.exists():
            raise NotFound(f"{local} does not exist")
        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
        base = normalize(remote or local.name)
        total = sum(p.stat().st_size for p in files)
        transfer = self._track(Transfer("upload", base, str(local), total))
        work = defer.ensureDeferred(_tracked(transfer, self._upload(local, files, base, transfer)))
        return transfer, work

    async def _upload(self, local: Path, files: list[Path], base: str, transfer: Transfer) -> None:
        if len(self.suppliers.connected()) < self.settings.suppliers:
            await self.connect()
        if len(self.suppliers.connected()) < erasure.needed(self.settings.suppliers):
            raise TransferError(f"only {len(self.suppliers.connected())} suppliers; "
                                f"{erasure.needed(self.settings.suppliers)} needed at least")
        if local.is_dir():
            self.catalog.ensure(base, "dir")
        for path in files:
            remote = base if local.is_file() else f"{base}/{path.relative_to(local).as_posix()}"
            entry = self.catalog.ensure(remote, "file")
            version = Version(new_version(time.time(), {v.version for v in entry.versions}),
                              path.stat().st_size, time.time(), self.settings.block_size,
                              [s.idurl for s in self.suppliers.slots])
            entry.versions.append(version)
            transfer.version = f"{self.me.require().key_id}:{entry.path_id}/{version.version}"
            await self.mover.upload(path, entry, version, transfer)
            await self._heal(entry, version)
        await self.save_catalog()

    def start_download(self, remote: str, destination: Path) -> tuple[Transfer, defer.Deferred[Transfer]]:
        entry = self.catalog.entry(remote)
        if entry is None:
            raise NotFound(f"{remote} is not in the catalog")
        targets = [entry] if entry.kind == "file" else sorted(
            (e for e in self.catalog.entries.values() if e.kind == "file" and e.path.startswith(entry.path + "/")),
            key=lambda e: e.path)
        chosen: list[tuple[Entry, Version]] = []
        for target in targets:
            latest = target.latest()
            if latest is not None:
                chosen.append((target, latest))
        if not chosen:
            raise NotFound(f"{remote} has no complete version yet")
        destination = destination.expanduser().resolve()
        total = sum(v.size for _e, v in chosen)
        transfer = self._track(Transfer("download", entry.path, str(destination), total))
        work = defer.ensureDeferred(_tracked(transfer, self._download(entry, chosen, destination, transfer)))
        return transfer, work

    async def _download(self, top: Entry, chosen: list[tuple[Entry, Version]], destination: Path,
                        transfer: Transfer) -> None:
        if not self.suppliers.connected():
            await self.connect()
        for entry, version in chosen:
            # into the destination folder: a file by its name, a folder's files under the folder's name
            name = top.path.rsplit("/", 1)[-1]
            relative = name if entry is top else f"{name}/{entry.path[len(top.path) + 1:]}"
            await self.mover.download(entry, version, destination.joinpath(*relative.split("/")), transfer)

    async def delete(self, remote: str) -> int:
        gone = self.catalog.remove(remote)
        if not gone:
            raise NotFound(f"{remote} is not in the catalog")
        me = self.me.require()
        for slot in self.suppliers.connected():
            for entry in gone:
                if entry.kind != "file":
                    continue
                supplier = await self.cache.known(slot.idurl)
                packet = self.gateway.outbox("DeleteFile", slot.idurl, b"", packet_id=f"{me.key_id}:{entry.path_id}")
                try:
                    await self.gateway.request(packet, supplier, timeout=CATALOG_TIMEOUT)
                except BitDustError as err:
                    log.info("delete at {idurl} not confirmed: {why}", idurl=slot.idurl, why=str(err))
        await self.save_catalog()
        return len(gone)

    # -- reports

    def listing(self) -> list[dict[str, Any]]:
        me = self.me.require()
        rows = []
        for entry in sorted(self.catalog.entries.values(), key=lambda e: e.path):
            latest = entry.latest()
            rows.append({
                "remote_path": f"{me.key_id}:{entry.path}",
                "path": entry.path,
                "name": entry.path.rsplit("/", 1)[-1],
                "path_id": entry.path_id,
                "global_id": f"{me.key_id}:{entry.path_id}",
                "key_id": me.key_id,
                "key_alias": "master",
                "customer": me.global_id,
                "idurl": me.idurl,
                "type": entry.kind,
                "size": latest.size if latest else 0,
                "latest": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(latest.created)) if latest else "",
                "versions": [{"backup_id": f"{me.key_id}:{entry.path_id}/{v.version}", "size": v.size,
                              "blocks": len(v.blocks), "complete": v.complete} for v in entry.versions],
            })
        return rows

    def consumed(self) -> dict[str, Any]:
        files = [e for e in self.catalog.entries.values() if e.kind == "file"]
        stored = sum(v.size for e in files for v in e.versions if v.complete)
        n = max(1, len(self.suppliers.slots))
        needed = self.settings.needed
        return {
            "suppliers_num": len(self.suppliers.connected()),
            "needed": needed,
            "needed_per_supplier": self.per_supplier(),
            "used": stored,
            "used_per_supplier": round(stored * 4 / 3 / erasure.needed(n)),
            "available": max(0, needed - stored),
            "used_percent": f"{100 * stored / needed:.3f}%" if needed else "0%",
            "my_files": len(files),
            "my_files_size": sum(v.size for v in (e.latest() for e in files) if v is not None),
            "my_folders": sum(1 for e in self.catalog.entries.values() if e.kind == "dir"),
            "my_catalog_items": len(self.catalog.entries),
        }


async def _tracked(transfer: Transfer, work: Coroutine[Any, Any, None]) -> Transfer:
    """Run a transfer's work; its state says how it ended (REST and the CLI show it)."""
    try:
        await work
        transfer.state = "done"
    except Exception as err:
        transfer.state, transfer.error = "failed", str(err)
        raise
    finally:
        transfer.finished = time.time()
    return transfer
