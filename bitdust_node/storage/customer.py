"""The customer as REST and the services use it: a thin front over its cores, each with one job.

- `catalog_keeper.py`: the catalog here and its sealed, signed copies on the suppliers;
- `suppliers.py`: the supplier of each position, hired, replaced, published in the DHT family record;
- `transfers.py`: files to the suppliers and back through their shares, and the transfers' log;
- `health.py`: what each supplier holds, checked at an interval; degraded blocks; the silent replaced;
- `repair.py`: the degraded blocks' shares made again, fewest healthy shares first;
- `piece_deletes.py`: pieces deleted at the suppliers, asked again of one that was down until it answers.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Collection, Coroutine
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import defer, threads
from twisted.logger import Logger

from bitdust_node.errors import BitDustError, InvalidInput, NotFound
from bitdust_node.heap import ReleaseWhenIdle
from bitdust_node.sizes import size_to_bytes
from bitdust_node.storage import erasure
from bitdust_node.storage.catalog import Catalog, CatalogError, Entry, Version, new_version, normalize
from bitdust_node.storage.catalog_copies import CATALOG_TIMEOUT
from bitdust_node.storage.catalog_disk import CatalogDisk
from bitdust_node.storage.catalog_keeper import CatalogKeeper
from bitdust_node.storage.health import HealthChecker, HealthFile, HealthSettings
from bitdust_node.storage.interfaces import Clock, IdentityLookup, Me, Worker
from bitdust_node.storage.page_checks import PageChecks
from bitdust_node.storage.piece_deletes import DeleteJournal, delete_at
from bitdust_node.storage.repair import Rebuilder, RepairQueue
from bitdust_node.storage.supplier_link import NetworkLink, SupplierLink
from bitdust_node.storage.suppliers import Suppliers, per_supplier_bytes
from bitdust_node.storage.transfers import ShareMover, Transfer, TransferError, TransferKind, TransferLog
from bitdust_node.storage.waits import at_most, shielded
from bitdust_node.transport.interfaces import PacketNetwork

log = Logger()
# how long after an attempt to take my suppliers' catalog that could not end the wait it is made again
RECOVERY_RETRY = 300.0
# how long a delete waits for the suppliers' answers before it returns (what is left is asked again later)
DELETE_WAIT = 10.0
# how long a stopping customer waits in all for its transfers, the saves they asked for and a round of checks under
# way (`bitdust stop` waits 60 s for the whole node)
STOP_WAIT = 40.0
STOPPED = "stopped: the customer service stopped"


class PathBeingDeleted(BitDustError):
    """A path whose delete is under way: nothing is made under it until the delete's save ended."""

    http_status = 409


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
    def check_interval(self) -> float:
        return float(self._get("health-check-interval-seconds"))

    @property
    def replace_after(self) -> float:
        return float(self._get("replace-offline-after-seconds"))

    @property
    def preferred(self) -> list[str]:
        raw = str(self._get("preferred-suppliers"))
        return [p for p in raw.replace(",", " ").replace(";", " ").split() if p]


class Customer:
    def __init__(
        self, network: PacketNetwork, me: Me, identities: IdentityLookup, suppliers: Suppliers,
        settings: StorageSettings, folder: Path, clock: Clock, worker: Worker = threads.deferToThread,
        link: SupplierLink | None = None, rng: random.Random | None = None,
    ) -> None:
        self.network = network
        self.me = me
        self.identities = identities
        self.suppliers = suppliers
        self.settings = settings
        suppliers.preferred = lambda: self.settings.preferred  # whichever fill hires: a connect or a replacement
        self.folder = folder
        self.clock = clock
        self._worker = worker
        # one set of figures for the customer, its transfers and its repairs
        self.counters: collections.Counter[str] = collections.Counter()
        self.keeper = CatalogKeeper(network, me, identities, CatalogDisk(folder, worker), suppliers.holders, worker,
                                    self.counters)
        self.link = link or NetworkLink(network, me, identities, worker)
        self.mover = ShareMover(self.link, me, suppliers, self.replace, self.counters, worker)
        self.rebuilder = Rebuilder(self.mover, self.counters, worker)
        self.transfer_log = TransferLog(clock)
        copies = self.keeper.copies
        # (path id, version) of abandoned versions whose DeleteBackup is still to go: their names are not reused
        self._deleting: set[tuple[str, str]] = set()
        # paths whose delete has not saved the catalog yet: nothing is made under them meanwhile
        self._deleting_paths: set[str] = set()
        # what the catalog names, for the deletes owed: (the catalog, its changes, path ids and prefixes, versions)
        self._named_index: tuple[Catalog, int, set[str], set[str]] | None = None
        self.deletes = DeleteJournal(network, identities, folder, CATALOG_TIMEOUT, self._named_now, worker)
        self.page_checks = PageChecks(lambda: copies.pages, lambda idurl: copies.held.get(idurl, set()),
                                      copies.page_intact, clock, lambda: settings.check_interval)
        self.health = HealthChecker(
            self.link, suppliers, lambda: self.catalog, lambda: me.require().key_id, clock,
            HealthSettings(lambda: settings.check_interval, lambda: settings.replace_after), self.replace,
            self.rehire, HealthFile(folder, worker), self.counters, rng, check_page=self.page_checks.check,
            answered=self._ask_owed_deletes)
        self.repairs = RepairQueue(self.rebuilder, self.health,
                                   lambda: defer.ensureDeferred(self._save_after_checks()))
        self._stop_listening = suppliers.on_replaced(self._replaced)
        self._heap = ReleaseWhenIdle(clock, worker)
        # no copy of my catalog read here: when my suppliers' may be asked for again
        self._recover_after = 0.0
        # when a supplier last refused more space (an official one drops me): none is asked again before the
        # round of checks after it ran and its repairs are done
        self._space_refused_at: float | None = None

    async def _save_after_checks(self) -> None:
        """The catalog saved after the checks and their repairs: a supplier whose listing lacked my catalog's copy
        (it lost its disk, say) is sent every page of it, not the root alone."""
        lost, self.health.catalog_lost = self.health.catalog_lost, set()
        await self.keeper.copies.forget(*lost)
        await self.save_catalog()

    def start(self) -> None:
        """Checks at the interval, and the repairs a restart interrupted."""
        self.health.start()

    async def stop(self) -> None:
        """Transfers stopped and ended, and the catalog saves they asked for done (a folder upload's files stored
        whole are kept), STOP_WAIT at most each; then closed. A customer service started again in this process reads
        the same home: the first one's upload may not store on, nor save its catalog, beside it."""
        deadline = self.clock.seconds() + STOP_WAIT

        def left() -> float:
            return max(0.0, deadline - self.clock.seconds())

        self.health.stop()  # no round starts any more; one under way is waited for
        await at_most(self.transfer_log.stop_all(STOPPED), left(), self.clock)
        if self.health.round is not None:
            await at_most(self.health.round, left(), self.clock)
        await at_most(self.keeper.settled(), left(), self.clock)  # asked once the transfers asked for theirs
        self.close()

    def close(self) -> None:
        """Nothing more is saved nor written; a transfer still running stops (after: what it does as it stops finds
        the catalog closed)."""
        self.keeper.close()
        self.deletes.close()
        self.transfer_log.stop_all(STOPPED)
        self._heap.stop()
        self.health.stop()
        self.repairs.stop()
        self._stop_listening()

    @property
    def catalog(self) -> Catalog:
        return self.keeper.catalog

    @property
    def transfers(self) -> collections.OrderedDict[int, Transfer]:
        return self.transfer_log.by_number

    # -- the catalog

    async def save_catalog(self) -> None:
        await self.keeper.save()  # its copies counted by the keeper: callers sharing a save would count it twice

    async def recover_catalog(self) -> None:
        """My catalog from my suppliers while none was read here (keeper.fetch_first): asked again RECOVERY_RETRY
        after an attempt that could not end the wait (a root whose pages cannot all be found is not read again and
        again, every hiring round)."""
        if not (self.keeper.fetch_first and self.suppliers.connected()) or self.clock.seconds() < self._recover_after:
            return
        await self.keeper.fetch_newest()
        if self.keeper.fetch_first:
            self._recover_after = self.clock.seconds() + RECOVERY_RETRY

    async def create(self, path: str, kind: str) -> tuple[Entry, bool]:
        """The entry of a remote path, made (and the catalog saved) when new; True when made."""
        if not self.keeper.damaged:  # no copy ever here (a fresh home): the suppliers' first, if they have one
            await self.recover_catalog()
        self.keeper.require_recovered()
        created = self.catalog.entry(path) is None
        self._not_being_deleted(path)
        entry = self.catalog.ensure(path, kind, self.clock.seconds(), avoid=self.deletes.path_ids())
        if created:
            await self.save_catalog()
        return entry, created

    # -- suppliers

    def per_supplier(self) -> int:
        """What each supplier is asked to keep for me: the space I need spread over them, and my catalog's copies."""
        n = self.settings.suppliers
        return per_supplier_bytes(self.settings.needed, n, erasure.needed(n), self.keeper.disk.size)

    async def keep_space(self) -> int:
        """The suppliers that keep less for me than per_supplier asked for it again (the space I need grew, my
        catalog doubled): how many took it. One that refused may have dropped what it stored (official suppliers
        do): a round of checks runs at once, and the repairs put back what went."""
        if self._space_refused_at is not None and (self.health.last_round <= self._space_refused_at
                                                   or self.health.bad):
            return 0  # the last refusal's position not checked and rebuilt yet: harm no second one meanwhile
        asked = await self.suppliers.ask_again(self.per_supplier())
        if asked.refused is not None:
            self._space_refused_at = self.clock.seconds()
            # my catalog's pages went with what it stored: the next save sends it every page, not the root alone
            await self.keeper.copies.forget(self.suppliers.slots[asked.refused].idurl)
            self.health.check_soon()
        return asked.took

    async def connect(self) -> int:
        """Hire up to suppliers-number suppliers, then take the suppliers' catalog if it is newer."""
        connected = await self.suppliers.fill(self.settings.suppliers, self.per_supplier())
        if connected:
            await self.keeper.fetch_newest()
        return connected

    def replace(self, position: int, why: str) -> defer.Deferred[None]:
        """Hire another supplier for `position` (once, however many transfers noticed); its shares are rebuilt.
        What still awaits the fired supplier's answer fails now, to go to its successor without waiting out its
        timeout (a supplier that took a piece and died never answers)."""
        slot = self.suppliers.slots[position] if position < len(self.suppliers.slots) else None
        fired = slot.idurl if slot is not None and slot.connected else ""
        replacing = self.suppliers.replace(position, why, self.settings.suppliers, self.per_supplier())
        if fired:
            self.network.fail_pending_to(fired, TransferError(f"supplier {fired} was replaced: {why}"))
        return replacing

    def _replaced(self, position: int, previous: str) -> None:
        self.counters["replaced"] += 1
        # the new supplier may have held my catalog's pages once (a supplier replaced before and hired again); the
        # one it replaced holds none I keep track of any more, unless another position hired it meanwhile
        holding = {slot.idurl for slot in self.suppliers.connected()}
        gone = () if previous in holding else (previous,)
        if gone:  # no longer mine: what it owes of my deletes is not asked of it any more
            self.deletes.forget(previous)
        defer.ensureDeferred(self.keeper.copies.forget(self.suppliers.slots[position].idurl, *gone))
        # the stored versions' shares for the new supplier are repaired meanwhile; transfers go on at once
        self.health.position_lost(position)

    def rehire(self, position: int) -> defer.Deferred[bool]:
        """The supplier at `position` forgot me (it freed my space): ask it again, else replace it. True when
        the position has a supplier that knows me (its shares are then all missing)."""
        return defer.ensureDeferred(self._rehire(position))

    async def _rehire(self, position: int) -> bool:
        slot = self.suppliers.slots[position]
        if await self.suppliers.hire(slot, slot.idurl, self.per_supplier()):
            await self.keeper.copies.forget(slot.idurl)  # my catalog's pages went with my space
            return True
        try:
            await self.replace(position, "it forgot me and did not take me back")
        except BitDustError:
            return False
        return False  # the replacement marked its shares missing already

    # -- health

    def file_health(self, entry: Entry) -> tuple[int, int]:
        """(healthy shares of the weakest block, shares a block has) of a file's latest version at the last check;
        of a folder, its weakest file's; (0, 0) when nothing is stored yet."""
        files = [entry] if entry.kind == "file" else [
            e for e in self.catalog.entries.values() if e.kind == "file" and e.path.startswith(entry.path + "/")]
        found = []
        for one in files:
            latest = one.latest()
            if latest is not None and latest.blocks:
                found.append(self.health.version_health(latest, one.path_id))
        return min(found) if found else (0, 0)

    # -- transfers

    def start_upload(self, local: Path, remote: str) -> tuple[Transfer, defer.Deferred[Transfer]]:
        if self.keeper.damaged:
            self.keeper.require_recovered()
        local = local.expanduser().resolve()
        if not local.exists():
            raise NotFound(f"{local} does not exist")
        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
        base = normalize(remote or local.name)
        if local.is_dir():
            try:  # a file too deep for a supplier to store is refused before any file of the folder is stored
                for path in files:
                    normalize(f"{base}/{path.relative_to(local).as_posix()}")
            except CatalogError as err:
                raise InvalidInput(f"{local} holds {path}: {err}") from None
        total = sum(p.stat().st_size for p in files)
        return self.transfer_log.start(TransferKind.UPLOAD, base, str(local), total,
                              lambda transfer: self._given_back(self._upload(local, files, base, transfer)))

    async def _upload(self, local: Path, files: list[Path], base: str, transfer: Transfer) -> None:
        if len(self.suppliers.connected()) < self.settings.suppliers:
            await transfer.stop.wait(defer.ensureDeferred(self.connect()))
        await transfer.stop.wait(defer.ensureDeferred(self.recover_catalog()))
        self.keeper.require_recovered()
        if len(self.suppliers.connected()) < erasure.needed(self.settings.suppliers):
            raise TransferError(f"only {len(self.suppliers.connected())} suppliers; "
                                f"{erasure.needed(self.settings.suppliers)} needed at least")
        # path ids and version names some supplier still owes a delete of: none is given to a new file
        if local.is_dir():
            self._not_being_deleted(base)
            self.catalog.ensure(base, "dir", self.clock.seconds(), avoid=self.deletes.path_ids())
        try:
            for path in files:
                transfer.stop.check()
                remote = base if local.is_file() else f"{base}/{path.relative_to(local).as_posix()}"
                now = self.clock.seconds()
                size = path.stat().st_size  # a file gone meanwhile fails here, before its entry is made
                made = self.catalog.entry(remote) is None
                self._not_being_deleted(remote)
                entry = self.catalog.ensure(remote, "file", now, avoid=self.deletes.path_ids())
                # a name whose pieces are still to be deleted is not reused: the delete would take the new ones
                taken = ({v.version for v in entry.versions} | {v for p, v in self._deleting if p == entry.path_id}
                         | self.deletes.versions().get(entry.path_id, set()))
                version = Version(new_version(now, taken), size, now, self.settings.block_size,
                                  [s.idurl for s in self.suppliers.slots])
                entry.versions.append(version)
                self.catalog.changes += 1
                transfer.version = f"{self.me.require().key_id}:{entry.path_id}/{version.version}"
                unsettled: list[defer.Deferred[Any]] = []
                try:
                    await self.mover.upload(path, entry, version, transfer, unsettled)
                except Exception:
                    self._abandon(entry, version, made, unsettled)
                    raise
                if self.catalog.entries.get(entry.path) is not entry or version not in entry.versions:
                    # deleted while it was stored (a file of a folder, say): its pieces are owed a DeleteBackup
                    self._abandon(entry, version, False, unsettled)
                    continue
                await self.rebuilder.heal(entry, version)
        except Exception:
            # the files of a folder stored before it stopped are kept, and the version it left taken out, in my
            # copy and the suppliers' (a save that ran meanwhile may have kept it)
            self._save_in_background("after an upload that did not finish")
            raise
        await self.save_catalog()

    def _abandon(self, entry: Entry, version: Version, made: bool, unsettled: list[defer.Deferred[Any]]) -> None:
        """A version whose upload stopped or failed: out of the catalog (and its file, if the upload made it and it
        has no other), and its pieces deleted from the suppliers once the stores under way have settled."""
        if version in entry.versions:
            entry.versions.remove(version)
            self.catalog.changes += 1
        if made and not entry.versions and self.catalog.entries.get(entry.path) is entry:
            del self.catalog.entries[entry.path]
            self.catalog.changes += 1
        self.counters["versions_abandoned"] += 1
        backup_id = f"{self.me.require().key_id}:{entry.path_id}/{version.version}"
        reserved = (entry.path_id, version.version)
        self._deleting.add(reserved)
        asked = {idurl for idurl in version.suppliers if idurl}  # those it was for, replaced ones included
        defer.ensureDeferred(self._delete_pieces(backup_id, asked, unsettled)).addErrback(
            lambda f: log.info("pieces of {backup} not deleted: {why}", backup=backup_id, why=f.getErrorMessage())
        ).addBoth(lambda _: self._deleting.discard(reserved))

    async def _delete_pieces(self, backup_id: str, asked: set[str], unsettled: list[defer.Deferred[Any]]) -> None:
        """DeleteBackup of a version at each supplier it went to or that holds a position now, once no store of it
        is under way (best effort: what a supplier keeps is only space). Written down at once, held until then: a
        customer that stops meanwhile leaves it to the one started next on this home."""
        hired = self.suppliers.hired()
        await self.deletes.add(sorted(asked & hired), "DeleteBackup", [backup_id], held=True)
        await defer.DeferredList(unsettled, consumeErrors=True)
        self.deletes.release("DeleteBackup", [backup_id])
        hired = self.suppliers.hired()
        holders = sorted(asked & hired | {slot.idurl for slot in self.suppliers.connected()})
        await self.deletes.add(holders, "DeleteBackup", [backup_id])  # its name stays reserved while owed
        # a supplier replaced meanwhile is asked once, not owed: it answers no round of mine any more
        replaced = sorted(asked - hired) if not self.deletes.closed else []
        once: list[defer.Deferred[Any]] = [
            defer.ensureDeferred(delete_at(self.network, self.identities, idurl, "DeleteBackup", [backup_id],
                                           CATALOG_TIMEOUT)) for idurl in replaced]
        await defer.DeferredList([defer.ensureDeferred(self.deletes.send(holders)), *once], consumeErrors=True)

    def _ask_owed_deletes(self, answered: list[str]) -> None:
        """Suppliers that answered a round of checks: what they owe of my deletes is asked of them (not awaited by
        the round: one that never answers a delete would hold it); what suppliers no longer mine owe is forgotten."""
        if self.keeper.fetch_first:
            return  # my catalog is still to be taken: what it names, and so what is moot, is not known yet
        hired = self.suppliers.hired()
        self.deletes.forget(*[idurl for idurl in self.deletes.pending if idurl not in hired])
        defer.ensureDeferred(self.deletes.send(answered))

    def _named_now(self, owed: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        """Of deletes owed, those whose pieces my catalog names now: a DeleteFile of a path id it has (or has
        anything under), a DeleteBackup of a version it has."""
        if not owed:
            return set()
        # asked before every packet: made again only for another catalog (taken) or a change of what it names
        catalog = self.catalog
        if self._named_index is None or self._named_index[0] is not catalog or self._named_index[1] != catalog.changes:
            paths: set[str] = set()
            versions: set[str] = set()
            for entry in catalog.entries.values():
                parts = entry.path_id.split("/")
                paths.update("/".join(parts[:n]) for n in range(1, len(parts) + 1))
                versions.update(f"{entry.path_id}/{version.version}" for version in entry.versions)
            self._named_index = (catalog, catalog.changes, paths, versions)
        _catalog, _changes, paths, versions = self._named_index
        return {(command, one) for command, one in owed
                if one.partition(":")[2] in (paths if command == "DeleteFile" else versions)}

    def _save_in_background(self, why: str) -> None:
        defer.ensureDeferred(self.save_catalog()).addErrback(
            lambda f: log.info("catalog not saved {why}: {err}", why=why, err=f.getErrorMessage()))

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
        return self.transfer_log.start(TransferKind.DOWNLOAD, entry.path, str(destination), total,
                              lambda transfer: self._given_back(self._download(entry, chosen, destination, transfer)))

    async def _given_back(self, work: Coroutine[Any, Any, None]) -> None:
        """A transfer, then the heap freed given back to the system once no transfer has run for a while: the
        buffers of its blocks are free but still resident (the next transfer reuses them)."""
        self._heap.started()
        try:
            await work
        finally:
            self._heap.ended()

    async def _download(self, top: Entry, chosen: list[tuple[Entry, Version]], destination: Path,
                        transfer: Transfer) -> None:
        if not self.suppliers.connected():
            await transfer.stop.wait(defer.ensureDeferred(self.connect()))
        for entry, version in chosen:
            transfer.stop.check()
            # into the destination folder: a file by its name, a folder's files under the folder's name
            name = top.path.rsplit("/", 1)[-1]
            relative = name if entry is top else f"{name}/{entry.path[len(top.path) + 1:]}"
            transfer.version = f"{self.me.require().key_id}:{entry.path_id}/{version.version}"
            await self.mover.download(entry, version, destination.joinpath(*relative.split("/")), transfer)

    async def delete(self, remote: str) -> int:
        """`remote` (a folder with everything under it) out of the catalog, saved, then its pieces deleted at every
        supplier at once (a folder's own path id covers what is under it); how many entries went. What a supplier
        down or slow has not answered in DELETE_WAIT is asked of it again once it answers a round of checks. A caller
        that stops waiting (a REST client gone) leaves the delete to end as it would have."""
        return await shielded(defer.ensureDeferred(self._delete(remote)), lambda failure: log.warn(
            "delete of {path} did not happen: {why}", path=remote, why=failure.getErrorMessage()))

    async def _delete(self, remote: str) -> int:
        started = self.clock.seconds()
        self.keeper.require_recovered()
        key_id = self.me.require().key_id
        path = normalize(remote)
        self._not_being_deleted(path, above_too=True)
        gone = self.catalog.remove(path)
        if not gone:
            raise NotFound(f"{remote} is not in the catalog")
        # nothing is made under it until its save ended: a delete whose save fails puts back what it took, unmixed
        self._deleting_paths.add(path)
        try:
            return await self._delete_removed(path, gone, key_id, started)
        finally:
            self._deleting_paths.discard(path)

    def _not_being_deleted(self, path: str, above_too: bool = False) -> None:
        """PathBeingDeleted for a path under one whose delete is under way (or, `above_too`, above one)."""
        path = normalize(path)
        for deleting in self._deleting_paths:
            if path == deleting or path.startswith(deleting + "/") or (above_too and deleting.startswith(path + "/")):
                raise PathBeingDeleted(f"{path} is being deleted; try again in a moment")

    async def _delete_removed(self, remote: str, gone: list[Entry], key_id: str, started: float) -> int:
        # an upload under it ends: the pieces it stored are owed a DeleteBackup (_abandon)
        self.transfer_log.stop(TransferKind.UPLOAD, remote)
        paths = {entry.path for entry in gone}
        ids = [f"{key_id}:{e.path_id}" for e in gone if e.path.rpartition("/")[0] not in paths]
        # every supplier hired owes it, one offline now too (asked once it answers a round of checks); written first,
        # and held until my copy without the entries is written: a crash between would bring back a file whose
        # pieces are gone (after a crash, one that comes back is dropped from what is owed)
        hired = sorted(self.suppliers.hired())
        await self.deletes.add(hired, "DeleteFile", ids, held=True)
        try:
            await self.save_catalog()
        except Exception:
            # not deleted: the catalog as it was, and nothing owed; saved again, since the suppliers' copies may have
            # taken the save my disk refused (the newest, a restart would take it)
            for entry in gone:  # nothing was made under the path meanwhile (_not_being_deleted)
                self.catalog.entries[entry.path] = entry
            self.catalog.changes += 1
            await self.deletes.withdraw("DeleteFile", ids)
            self._save_in_background("after a delete that could not be saved")
            raise
        self.deletes.release("DeleteFile", ids)
        sending = defer.ensureDeferred(self.deletes.send(slot.idurl for slot in self.suppliers.connected()))
        await at_most(sending, max(0.0, DELETE_WAIT - (self.clock.seconds() - started)), self.clock)
        return len(gone)

    # -- what REST shows (shaped in api/endpoints/files.py)

    def space(self) -> SpaceUsed:
        files = [e for e in self.catalog.entries.values() if e.kind == "file"]
        latest = [v for v in (e.latest() for e in files) if v is not None]
        return SpaceUsed(
            suppliers=len(self.suppliers.connected()), shares_needed=erasure.needed(max(1, len(self.suppliers.slots))),
            needed=self.settings.needed, per_supplier=self.per_supplier(),
            stored=sum(v.size for e in files for v in e.versions if v.complete),
            files=len(files), files_size=sum(v.size for v in latest),
            folders=sum(1 for e in self.catalog.entries.values() if e.kind == "dir"), items=len(self.catalog.entries),
        )


@attrs.frozen
class SpaceUsed:
    suppliers: int  # connected now
    shares_needed: int  # k of the positions there are
    needed: int
    per_supplier: int
    stored: int  # bytes of every complete version
    files: int
    files_size: int  # bytes of every file's latest version
    folders: int
    items: int
