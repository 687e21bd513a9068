"""My pieces deleted at my suppliers, kept asked for until each one answered.

A delete (`Customer.delete`: DeleteFile of the path ids it removed, a folder's own for everything under it; an
abandoned upload: DeleteBackup of its version) is written to `HOME/customer/deletes.json` for every supplier hired,
then sent, once my catalog's copy without it is written: many ids in one packet as official customers send them (a
UniqueID as PacketID, the ids one a line in the payload, PROTOCOL-P2P.md 5.1), every supplier at once. What a
supplier answered (Ack; or Fail: none of them there, or an id it refuses, so a list Failed goes again an id at a
time) leaves the journal; a supplier down or silent keeps the rest, sent again each time it answers a round of
checks (health.py), after a restart too, while it stays mine.

Only what this node deleted is ever sent, never what a listing shows that my catalog lacks: another machine with my
key, or a home restored from an older backup, would lose files that way. The catalog is the truth: before anything
owed is sent, what the catalog names again is dropped (a crash before my copy was written, a catalog taken from
another machine that stored the file anew), and the path ids and version names still owed are given to no new file
(customer.py), so a late delete never takes a newer file's pieces.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path

import attrs
from twisted.internet import defer, threads
from twisted.logger import Logger

from bitdust_node.errors import BitDustError
from bitdust_node.storage.interfaces import IdentityLookup, Worker
from bitdust_node.storage.paths import MAX_LISTED_IDS
from bitdust_node.storage.state_file import StateFile
from bitdust_node.storage.supplier_link import ask
from bitdust_node.transport.interfaces import PacketNetwork

log = Logger()
DELETES_FILE = "deletes.json"
COMMANDS = ("DeleteFile", "DeleteBackup")
LIST_MAX = MAX_LISTED_IDS
# what official and our suppliers Fail a list with when one of its ids is not a path they read
REFUSED_PATH = ("incorrect path", "incorrect backupID")
# ids kept over every supplier: beyond, the oldest of the supplier owed most are dropped (space left there, said).
# A delete owes one id a supplier (a folder's own), and the journal is written whole on each change
MAX_PENDING = 20_000
# a journal file larger than this is not read (MAX_PENDING ids take about a megabyte)
MAX_FILE_BYTES = 16 * 1024 * 1024


@attrs.frozen
class Answer:
    command: str  # Ack or Fail
    # a Fail for an id the supplier could not read (ours and official ones refuse the whole list for one)
    refused_path: bool = False


async def delete_packet(
    network: PacketNetwork, identities: IdentityLookup, idurl: str, command: str, ids: Sequence[str], timeout: float,
) -> Answer | None:
    """One packet deleting `ids` (LIST_MAX at most) at a supplier: its answer, None when none came (the supplier is
    down or too slow)."""
    # one id goes as the PacketID itself, the form every supplier knows
    packet_id, payload = (ids[0], b"") if len(ids) == 1 else (network.new_packet_id(), "\n".join(ids).encode("utf-8"))
    try:
        answer = await ask(network, identities, idurl, command, packet_id, timeout, payload)
    except BitDustError as err:
        log.info("{command} of {n} ids at {idurl} not answered ({first} ...): {why}", command=command, n=len(ids),
                 idurl=idurl, first=ids[0], why=str(err))
        return None
    text = answer.payload[:200].decode("utf-8", "replace")
    if answer.command != "Ack":  # none of them there (our suppliers), an id refused, or not my supplier any more
        log.info("{command} of {n} ids at {idurl} answered {answer} {why}", command=command, n=len(ids), idurl=idurl,
                 answer=answer.command, why=text)
    return Answer(answer.command, answer.command == "Fail" and text in REFUSED_PATH)


async def delete_at(
    network: PacketNetwork, identities: IdentityLookup, idurl: str, command: str, ids: Sequence[str], timeout: float,
) -> int:
    """`ids` deleted at one supplier, LIST_MAX a packet in turn: how many of them it answered for. It stops at the
    first packet not answered (the next would wait as long)."""
    answered = 0
    for start in range(0, len(ids), LIST_MAX):
        part = ids[start:start + LIST_MAX]
        if await delete_packet(network, identities, idurl, command, part, timeout) is None:
            return answered
        answered += len(part)
    return answered


class DeleteJournal:
    """The deletes each supplier has not answered yet, by IDURL, in the order asked."""

    def __init__(
        self, network: PacketNetwork, identities: IdentityLookup, folder: Path, timeout: float,
        named: Callable[[Collection[tuple[str, str]]], set[tuple[str, str]]], worker: Worker = threads.deferToThread,
    ) -> None:
        self.network = network
        self.identities = identities
        self.timeout = timeout
        # of the deletes given, those whose pieces the catalog names now: they are no longer to be deleted
        self.named = named
        self.file = StateFile(folder / DELETES_FILE, worker, MAX_FILE_BYTES)
        self.pending: dict[str, list[tuple[str, str]]] = self._load()
        # one send at a time to a supplier: a delete and a round's retry would ask it the same ids twice
        self._locks: dict[str, defer.DeferredLock] = {}
        # deletes of a list a supplier Failed for a path it refused: one id it cannot take fails the whole list (at
        # official suppliers too), so each goes alone
        self._alone: set[tuple[str, str, str]] = set()
        # deletes written down but not to be sent yet: a delete's, until my catalog's copy without its entries is
        # written (a crash between would bring back a file whose pieces are gone)
        self.held: set[tuple[str, str]] = set()
        # bumped by every change of what is owed: path_ids and versions are made again only then
        self._changes = 0
        self._owed_index: tuple[int, set[str], dict[str, set[str]]] | None = None
        self._bound()
        # closed with the customer: a customer started again has a journal of its own on the same file
        self.closed = False

    def _load(self) -> dict[str, list[tuple[str, str]]]:
        pending: dict[str, list[tuple[str, str]]] = {}
        found = self.file.load().get("pending", {})
        for idurl, asked in found.items() if isinstance(found, dict) else ():
            kept = [(c, i) for c, i in (a for a in asked if isinstance(a, list) and len(a) == 2)
                    if c in COMMANDS and isinstance(i, str)] if isinstance(asked, list) else []
            if kept and isinstance(idurl, str):
                pending[idurl] = kept
        return pending

    def _write(self) -> defer.Deferred[None]:
        """The journal on disk; a write that fails is said, and what is owed stays in memory (never failing the
        delete whose catalog entry is gone already)."""
        if self.closed:
            return defer.succeed(None)
        doc = {"pending": {idurl: [list(a) for a in asked] for idurl, asked in self.pending.items()}}
        return self.file.write(doc).addErrback(
            lambda f: log.error("deletes still owed not written to {path}: {why}", path=str(self.file.path),
                                why=f.getErrorMessage()))

    # -- what is owed

    def add(self, idurls: Iterable[str], command: str, ids: Sequence[str], held: bool = False) -> defer.Deferred[None]:
        """`ids` owed by every supplier of `idurls`, written down (the Deferred fires once they are); `held`: not
        sent before `release`."""
        if held:
            self.held.update((command, one) for one in ids)
        for idurl in idurls:
            asked = self.pending.setdefault(idurl, [])
            owed = set(asked)  # owed once a supplier, however often asked
            asked.extend(a for a in dict.fromkeys((command, one) for one in ids) if a not in owed)
        self._changes += 1
        self._bound()
        return self._write()

    def release(self, command: str, ids: Sequence[str]) -> None:
        """Held deletes free to go."""
        self.held.difference_update((command, one) for one in ids)

    def withdraw(self, command: str, ids: Sequence[str]) -> defer.Deferred[None]:
        """Deletes no longer wanted (their delete failed before anything was sent): owed by nobody."""
        gone = {(command, one) for one in ids}
        self.held -= gone
        for idurl in list(self.pending):
            self._settle(idurl, gone)
        return self._write()

    def _bound(self) -> None:
        total = sum(len(asked) for asked in self.pending.values())
        while total > MAX_PENDING:
            idurl = max(self.pending, key=lambda i: len(self.pending[i]))
            drop = min(total - MAX_PENDING, len(self.pending[idurl]))
            log.warn("{n} deletes owed by {idurl} dropped ({limit} kept at most): their pieces stay there",
                     n=drop, idurl=idurl, limit=MAX_PENDING)
            self._alone.difference_update((idurl, command, one) for command, one in self.pending[idurl][:drop])
            del self.pending[idurl][:drop]
            if not self.pending[idurl]:
                del self.pending[idurl]
            total -= drop
            self._changes += 1

    def forget(self, *idurls: str) -> defer.Deferred[None]:
        """Suppliers no longer mine: nothing more is asked of them."""
        self._alone = {alone for alone in self._alone if alone[0] not in idurls}
        if not [idurl for idurl in idurls if self.pending.pop(idurl, None) is not None]:
            return defer.succeed(None)
        self._changes += 1
        return self._write()

    def close(self) -> None:
        self.closed = True

    def path_ids(self) -> set[str]:
        """The path ids whose DeleteFile some supplier still owes: no new entry may take one."""
        return self._owed()[1]

    def versions(self) -> dict[str, set[str]]:
        """The version names whose DeleteBackup some supplier still owes, by path id: no new version may take one."""
        return self._owed()[2]

    def _owed(self) -> tuple[int, set[str], dict[str, set[str]]]:
        # read for every file an upload makes: made again only when what is owed changed
        if self._owed_index is None or self._owed_index[0] != self._changes:
            paths: set[str] = set()
            versions: dict[str, set[str]] = {}
            for asked in self.pending.values():
                for command, one in asked:
                    if command == "DeleteFile":
                        paths.add(one.partition(":")[2])
                    else:
                        path, _slash, version = one.partition(":")[2].rpartition("/")
                        versions.setdefault(path, set()).add(version)
            self._owed_index = (self._changes, paths, versions)
        return self._owed_index

    # -- asking

    async def send(self, idurls: Iterable[str]) -> None:
        """What each supplier of `idurls` owes, asked of them all at once; never fails (what is left stays owed)."""
        outcomes = await defer.DeferredList(
            [defer.ensureDeferred(self._send_to(idurl)) for idurl in idurls if idurl in self.pending],
            consumeErrors=True)
        for ok, failure in outcomes:
            if not ok:
                log.failure("asking a supplier for deletes", failure)

    async def _send_to(self, idurl: str) -> None:
        lock = self._locks.setdefault(idurl, defer.DeferredLock())
        try:
            await lock.run(lambda: defer.ensureDeferred(self._send_now(idurl)))
        finally:
            if not lock.locked and not lock.waiting:
                self._locks.pop(idurl, None)

    async def _send_now(self, idurl: str) -> None:
        """A packet at a time, a run of one command in the order asked, until the supplier leaves one unanswered;
        what my catalog names again is dropped before each (a catalog may be taken while a packet waits). The
        journal is written after each list and at the end (settled deletes asked again after a crash are harmless:
        the supplier holds none of them)."""
        unwritten = False
        try:
            while not self.closed:
                moot = self.named(self.pending.get(idurl, []))
                if moot:
                    log.info("{n} deletes owed by {idurl} dropped: my catalog names their pieces again", n=len(moot),
                             idurl=idurl)
                    self._settle(idurl, moot)
                    unwritten = True
                asked = [a for a in self.pending.get(idurl, []) if a not in self.held]
                if not asked or self.closed:
                    return
                command, first = asked[0]
                part = [first] if (idurl, command, first) in self._alone else [
                    one for _c, one in _leading_run(asked, command)[:LIST_MAX]
                    if (idurl, command, one) not in self._alone]
                answer = await delete_packet(self.network, self.identities, idurl, command, part, self.timeout)
                if answer is None:
                    return
                if answer.refused_path and len(part) > 1:
                    self._alone.update((idurl, command, one) for one in part)
                    continue
                self._settle(idurl, {(command, one) for one in part})
                unwritten = True
                if len(part) > 1:
                    await self._write()
                    unwritten = False
        finally:
            if unwritten:
                await self._write()

    def _settle(self, idurl: str, settled: Collection[tuple[str, str]]) -> None:
        self._alone.difference_update((idurl, command, one) for command, one in settled)
        left = [a for a in self.pending.get(idurl, []) if a not in settled]
        if left:
            self.pending[idurl] = left
        else:
            self.pending.pop(idurl, None)
        self._changes += 1


def _leading_run(asked: list[tuple[str, str]], command: str) -> list[tuple[str, str]]:
    """The deletes of `command` at the head of `asked`, up to the first of another command."""
    for at, (c, _one) in enumerate(asked):
        if c != command:
            return asked[:at]
    return list(asked)

