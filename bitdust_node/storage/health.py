"""Is what I stored still whole? Every `services/customer/health-check-interval-seconds` the customer asks each
supplier what it holds (ListFiles, as official customers do) and fetches a sample of pieces (Retrieve), each
hashed against the catalog. A piece missing, altered or unreadable marks its block degraded (repair.py makes it
again); a supplier silent for `services/customer/replace-offline-after-seconds`, or silent twice when the
blocks have no share to spare, is replaced.

What a check costs: the listing of every supplier every round checks every piece's presence (kilobytes). The
sample is what reads bytes: the pieces verified longest ago first, as many as fit in `CHECK_BUDGET` of the stored
bytes a day spread over the day's rounds, at least one a round. At the defaults (hourly, 0.9 % a day) a store of
up to a week of rounds' pieces (168) is read whole within a week; a larger one in rotation (every piece within
about 111 days) while reading under 1 % of its bytes a day, and one under about 5 GB reads one piece an hour.
Reading every piece each week would cost a seventh of the stored bytes a day (14 %): the presence of every piece
is what is checked that often.

The state (each supplier's last answer, the degraded blocks, when each piece was verified) is kept in
`HOME/customer/health.json`, so a restarted customer resumes where it was.
"""

from __future__ import annotations

import collections
import enum
import heapq
import random
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import attrs
from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.failure import Failure

from bitdust_node.storage import erasure
from bitdust_node.storage.catalog import Catalog, Entry, Version
from bitdust_node.storage.interfaces import Clock, Worker
from bitdust_node.storage.listing import Holdings
from bitdust_node.storage.state_file import StateFile
from bitdust_node.storage.supplier_link import Fetch, NotHired, SupplierLink, Unanswered
from bitdust_node.storage.transfers import SlotHolder, piece_id

log = Logger()
DAY = 86400.0
HEALTH_FILE = "health.json"
# the share of the stored bytes a day's checks may read
CHECK_BUDGET = 0.009
# pieces fetched at once during a check
CHECK_CONCURRENCY = 4
# unanswered checks in a row after which a supplier counts as offline when no share can be spared
CRITICAL_MISSES = 2
# the longest wait before the interval setting is read again
TICK = 10.0


class Verdict(enum.StrEnum):
    """What a piece was found to be at its supplier."""

    GOOD = "good"
    MISSING = "missing"
    ALTERED = "altered"


@attrs.define
class SupplierCheck:
    """One position's supplier at the last checks (REST shows it)."""

    idurl: str = ""
    last_answer: float = 0.0  # when it last answered a check (its hiring counts)
    last_check: float = 0.0
    misses: int = 0  # checks in a row it did not answer
    held: int = 0  # pieces the catalog expects that it listed at the last answer
    expected: int = 0
    failed: int = 0  # checks unanswered and pieces found missing or altered, since hired
    verified: int = 0  # pieces fetched and found good, since hired


@attrs.frozen
class BlockRef:
    entry: Entry = attrs.field(eq=False)
    version: Version = attrs.field(eq=False)
    number: int
    key: str  # `<path id>/<version>/<block>`


@attrs.frozen
class Piece:
    block: BlockRef
    position: int
    size: int  # the share's bytes

    @property
    def key(self) -> str:
        return f"{self.block.key}/{self.position}"


class HealthStore(Protocol):
    def load(self) -> dict[str, Any]: ...

    def write(self, doc: dict[str, Any]) -> defer.Deferred[None]: ...


class HealthFile(StateFile):
    """The state on disk, `HOME/customer/health.json`."""

    def __init__(self, folder: Path, worker: Worker = threads.deferToThread) -> None:
        super().__init__(folder / HEALTH_FILE, worker)


@attrs.define
class HealthSettings:
    interval: Callable[[], float]
    replace_after: Callable[[], float]


class HealthChecker:
    """The checks' schedule and what they found: each position's supplier, the degraded blocks and their bad
    positions, when each piece was last verified."""

    def __init__(
        self, link: SupplierLink, holder: SlotHolder, catalog: Callable[[], Catalog], key_id: Callable[[], str],
        clock: Clock, settings: HealthSettings, replace: Callable[[int, str], defer.Deferred[None]],
        rehire: Callable[[int], defer.Deferred[bool]], store_file: HealthStore, counters: collections.Counter[str],
        rng: random.Random | None = None, check_page: Callable[[str], Awaitable[bool | None]] | None = None,
        answered: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.link = link
        self.holder = holder
        self.catalog = catalog
        self.key_id = key_id
        self.clock = clock
        self.settings = settings
        self.replace = replace
        self.rehire = rehire
        self.file = store_file
        self.counters = counters
        self.rng = rng or random.Random()
        # one page of my catalog's copy checked at a supplier (page_checks.py): False when it was lost or altered
        self.check_page = check_page
        # the suppliers that answered a round, told (what they still owe of my deletes is asked again, unawaited)
        self.answered = answered
        self.suppliers: list[SupplierCheck] = []
        # degraded blocks by key: the positions whose share is missing or altered
        self.bad: dict[str, set[int]] = {}
        self.verified: dict[str, float] = {}
        self.last_round = 0.0
        self.catalog_changed = False
        # suppliers whose listing lacked my catalog's copy: what they held of it (its pages) is gone too
        self.catalog_lost: set[str] = set()
        self.round: defer.Deferred[None] | None = None
        self._asked_for: set[str] = set()
        self._carry = 0.0
        self._started = 0.0
        self._stopped = True
        self._next: Any = None
        # check_soon asked while a round ran: another follows it
        self._again = False
        self._listeners: list[Callable[[], object]] = []
        self._load()

    # -- the state

    def _load(self) -> None:
        doc = self.file.load()
        try:
            self.suppliers = [SupplierCheck(**s) for s in doc.get("suppliers", [])]
            self.bad = {k: set(v) for k, v in doc.get("bad", {}).items()}
            self.verified = {str(k): float(v) for k, v in doc.get("verified", {}).items()}
            self.last_round = float(doc.get("last_round", 0.0))
        except (TypeError, ValueError) as err:
            log.error("health state not understood ({why}); checking afresh", why=str(err))
            self.suppliers, self.bad, self.verified, self.last_round = [], {}, {}, 0.0

    def save(self) -> defer.Deferred[None]:
        doc = {"suppliers": [attrs.asdict(s) for s in self.suppliers],
               "bad": {k: sorted(v) for k, v in self.bad.items()}, "verified": self.verified,
               "last_round": self.last_round}
        return self.file.write(doc)

    def check_of(self, position: int) -> SupplierCheck:
        """The record of the supplier now at `position` (a new one when another was hired there)."""
        while len(self.suppliers) <= position:
            self.suppliers.append(SupplierCheck())
        slot = self.holder.slots[position]
        record = self.suppliers[position]
        if record.idurl != slot.idurl:
            record = self.suppliers[position] = SupplierCheck(slot.idurl, last_answer=max(slot.since,
                                                                                          self.clock.seconds()))
        return record

    def on_degraded(self, listener: Callable[[], object]) -> Callable[[], None]:
        """Call `listener()` when blocks were found degraded; the call returned stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _tell(self) -> None:
        for listener in list(self._listeners):
            listener()

    # -- the schedule

    def start(self) -> None:
        """Check at the interval from the last round (soon when a restart made it overdue)."""
        self._started = self.clock.seconds()
        self._stopped = False
        self._schedule()
        if self.bad:
            self._tell()  # repairs left by the last run go on at once

    def stop(self) -> None:
        self._stopped = True
        self._again = False
        if self._next is not None and self._next.active():
            self._next.cancel()
        self._next = None

    def _schedule(self) -> None:
        # the interval is read again at least every TICK seconds: a changed setting applies soon, not next round
        if self._stopped:
            return
        due = (self.last_round or self._started) + self.settings.interval()
        delay = max(1.0, due - self.clock.seconds()) if due > self.clock.seconds() else 1.0
        self._next = self.clock.callLater(min(delay, TICK), self._tick)

    def _tick(self) -> None:
        self._next = None
        if self.clock.seconds() < (self.last_round or self._started) + self.settings.interval():
            self._schedule()
            return
        self._round_now()

    def _round_now(self) -> None:
        self._next = None
        self.round = defer.ensureDeferred(self.check())
        self.round.addErrback(lambda f: log.failure("health check failed", f))
        self.round.addBoth(lambda _: self._after_round())

    def _after_round(self) -> None:
        if self._again and not self._stopped:
            self._again = False
            self._next = self.clock.callLater(1.0, self._round_now)
            return
        self._schedule()

    def check_soon(self) -> None:
        """A round in a second, whatever the interval: a supplier may have dropped what I stored there (one that
        refused more space). One running now may have had its listing before: another follows it."""
        if self._stopped:
            return
        if self.round is not None and not self.round.called:
            self._again = True
            return
        if self._next is not None and self._next.active():
            self._next.cancel()
        self._next = self.clock.callLater(1.0, self._round_now)

    # -- a round

    async def check(self) -> None:
        """Ask every connected supplier what it holds, verify a sample, mark what is degraded, replace the silent."""
        now = self.clock.seconds()
        self.last_round = now
        self.counters["health_rounds"] += 1
        positions = [s.position for s in self.holder.slots if s.connected]
        asked = {p: self.holder.slots[p].idurl for p in positions}
        # what is in the catalog before the listings are asked: an upload ending meanwhile is not missing
        self._asked_for = {block.key for block in self.blocks()}
        listings = await defer.DeferredList(
            [defer.ensureDeferred(self._listing(p)) for p in positions], consumeErrors=True)
        held: dict[int, Holdings] = {}
        for position, (ok, found) in zip(positions, listings, strict=True):
            if ok and found is not None:
                held[position] = found
        present = self._compare(held)
        if self.answered is not None and held:
            self.answered([asked[p] for p in held])
        await defer.gatherResults([defer.ensureDeferred(self._verify(self._sample(present))),
                                   defer.ensureDeferred(self._check_pages(held))], consumeErrors=True)
        self._replace_silent()
        await self.save()
        if self.bad or self.catalog_changed:
            self._tell()

    async def _check_pages(self, held: dict[int, Holdings]) -> None:
        """A page of my catalog's copy at each supplier that listed the copy's root; one lost or altered has the
        catalog saved after the checks, which sends it again."""
        if self.check_page is None:
            return
        idurls = [self.holder.slots[p].idurl for p, holdings in held.items() if holdings.index]
        outcomes = await defer.DeferredList([defer.ensureDeferred(_awaited(self.check_page(i))) for i in idurls],
                                            consumeErrors=True)
        found = [intact for ok, intact in outcomes if ok and intact is not None]
        for idurl, (ok, outcome) in zip(idurls, outcomes, strict=True):
            if not ok and isinstance(outcome, Failure):  # a bug met: no verdict on that supplier's pages this round
                log.failure("checking a page of my catalog at {idurl}", outcome, idurl=idurl)
        self.counters["catalog_pages_checked"] += len(found)
        if not all(found):
            self.counters["catalog_pages_bad"] += found.count(False)
            self.catalog_changed = True

    async def _listing(self, position: int) -> Holdings | None:
        record = self.check_of(position)
        record.last_check = self.clock.seconds()
        self.counters["listings_asked"] += 1
        try:
            holdings = await self.link.list_files(record.idurl)
        except NotHired as err:
            log.warn("supplier {idurl} at position {pos} forgot me ({why}): asking it again", idurl=record.idurl,
                     pos=position, why=str(err))
            record.last_answer, record.misses = self.clock.seconds(), 0
            if await self.rehire(position):
                self.position_lost(position)
            return None
        except Unanswered as err:
            record.misses += 1
            record.failed += 1
            log.info("supplier {idurl} at position {pos} did not answer the check: {why}", idurl=record.idurl,
                     pos=position, why=str(err))
            return None
        record.last_answer, record.misses = self.clock.seconds(), 0
        return holdings

    def blocks(self) -> Iterator[BlockRef]:
        """Every block of every complete version with a share for each position there is now."""
        n = len(self.holder.slots)
        for entry in self.catalog().entries.values():
            for version in entry.versions:
                if not version.complete:
                    continue
                for number, info in enumerate(version.blocks):
                    if len(info.shares) == n:
                        yield BlockRef(entry, version, number, f"{entry.path_id}/{version.version}/{number}")

    def _compare(self, held: dict[int, Holdings]) -> list[Piece]:
        """Mark the pieces the listings lack; the pieces they list, to sample from."""
        present: list[Piece] = []
        expected = collections.Counter[int]()
        found = collections.Counter[int]()
        whole: dict[tuple[int, str], bool] = {}
        known: set[str] = set()
        for block in self.blocks():
            known.add(block.key)
            if block.key not in self._asked_for:
                continue
            info = block.version.blocks[block.number]
            size = -(-info.sealed_size // erasure.needed(len(info.shares)))
            for position, holdings in held.items():
                expected[position] += 1
                version_path = f"{block.entry.path_id}/{block.version.version}"
                if holdings.has(version_path, block.number):
                    found[position] += 1
                    present.append(Piece(block, position, size))
                    whole.setdefault((position, version_path), True)
                else:
                    whole[(position, version_path)] = False
                    # a share rebuilt since the listing was asked is not missing
                    if self.verified.get(f"{block.key}/{position}", 0.0) < self.last_round:
                        self._mark(block, position, Verdict.MISSING)
        for position, holdings in held.items():
            record = self.check_of(position)
            record.held, record.expected = found[position], expected[position]
            if not holdings.index and self.catalog().revision:
                self.catalog_changed = True  # its copy of my catalog is gone: the copies are sent again
                if position < len(self.holder.slots) and self.holder.slots[position].idurl:
                    self.catalog_lost.add(self.holder.slots[position].idurl)
        # a position that lists every block of a version holds it: the catalog says so
        idurls = {s.position: s.idurl for s in self.holder.slots}
        for block in self.blocks():
            version_path = f"{block.entry.path_id}/{block.version.version}"
            for position in held:
                if whole.get((position, version_path)) and block.version.suppliers[position] != idurls[position]:
                    block.version.suppliers[position] = idurls[position]
                    self.catalog_changed = True
        # blocks no longer in the catalog (deleted, or a version replaced) are forgotten
        for key in [k for k in self.bad if k not in known]:
            del self.bad[key]
        for key in [k for k in self.verified if k.rpartition("/")[0] not in known]:
            del self.verified[key]
        return present

    def _mark(self, block: BlockRef, position: int, verdict: Verdict) -> None:
        if verdict is Verdict.GOOD:
            return
        bad = self.bad.setdefault(block.key, set())
        if position not in bad:
            bad.add(position)
            self.counters[f"pieces_{verdict}"] += 1
            self.check_of(position).failed += 1
            log.info("piece {pos} of block {key} is {verdict}", pos=position, key=block.key, verdict=str(verdict))

    def _sample(self, present: list[Piece]) -> list[Piece]:
        """The pieces verified longest ago (in random order among equals), as many as this round's share of the
        day's budget covers, at least one."""
        stored = sum(p.size for p in present)
        per_round = CHECK_BUDGET * stored * self.settings.interval() / DAY
        # what a round leaves unspent (a piece did not fit) is spent later: over the days it is the budget
        budget = self._carry + per_round
        candidates = [p for p in present if position_ok(self.bad, p)]
        if not candidates:
            return []
        # no more than the budget can take are put in order
        most = int(budget // min(p.size for p in candidates)) + 1
        candidates = heapq.nsmallest(most, candidates, key=lambda p: (self.verified.get(p.key, 0.0), self.rng.random()))
        chosen: list[Piece] = []
        spent = 0
        for piece in candidates:
            if chosen and spent + piece.size > budget:
                break
            chosen.append(piece)
            spent += piece.size
        self._carry = min(max(0.0, budget - spent), per_round * DAY / max(1.0, self.settings.interval()))
        return chosen

    async def _verify(self, sample: list[Piece]) -> None:
        for start in range(0, len(sample), CHECK_CONCURRENCY):
            batch = sample[start:start + CHECK_CONCURRENCY]
            await defer.gatherResults([defer.ensureDeferred(self._verify_one(p)) for p in batch])

    async def _verify_one(self, piece: Piece) -> None:
        block = piece.block
        record = self.check_of(piece.position)
        packet_id = piece_id(self.key_id(), block.entry.path_id, block.version.version, block.number, piece.position)
        expected = block.version.blocks[block.number].shares[piece.position]
        fetched = await self.link.fetch(record.idurl, packet_id, expected)
        self.counters["pieces_checked"] += 1
        self.counters["check_bytes"] += len(fetched.share)
        if fetched.outcome is Fetch.UNREACHABLE:
            return  # not the piece's fault: the listing's answer tells of its supplier
        if fetched.outcome is Fetch.GOT and fetched.hash == expected:
            self.verified[piece.key] = self.clock.seconds()
            record.verified += 1
            return
        self._mark(block, piece.position, Verdict.MISSING if fetched.outcome is Fetch.MISSING else Verdict.ALTERED)

    def _replace_silent(self) -> None:
        """Replace a supplier silent too long, or silent twice when a block has no share left to spare."""
        now = self.clock.seconds()
        n = len(self.holder.slots)
        spare = n - erasure.needed(n)
        silent = [s.position for s in self.holder.slots if s.connected and self.check_of(s.position).misses]
        critical = len(silent) >= spare
        for position in silent:
            record = self.check_of(position)
            offline = now - record.last_answer
            if offline >= self.settings.replace_after() or (critical and record.misses >= CRITICAL_MISSES):
                self.counters["replaced_offline"] += 1
                # hiring (and publishing the family record in the DHT) goes on without holding up the checks
                replacing = self.replace(position, f"no answer for {offline:.0f} s")
                replacing.addErrback(_not_replaced, position)

    # -- what the checks found

    def position_lost(self, position: int) -> None:
        """A new supplier holds `position` (or the one there forgot me): every block's share there is missing."""
        for block in self.blocks():
            self.bad.setdefault(block.key, set()).add(position)
        self._tell()

    def repaired(self, block: BlockRef, positions: set[int]) -> None:
        bad = self.bad.get(block.key)
        if bad is None:
            return
        bad -= positions
        if not bad:
            del self.bad[block.key]
        for position in positions:
            self.verified[f"{block.key}/{position}"] = self.clock.seconds()
        # every block of the version whole at a position again: its supplier holds the version
        for position in positions:
            if not any(position in self.bad.get(f"{block.entry.path_id}/{block.version.version}/{i}", ())
                       for i in range(len(block.version.blocks))):
                block.version.suppliers[position] = self.holder.slots[position].idurl
                self.catalog_changed = True

    def unreachable(self) -> set[int]:
        """Positions with no supplier, or whose supplier did not answer the last check."""
        out = set()
        for slot in self.holder.slots:
            if not slot.connected or (slot.position < len(self.suppliers)
                                      and self.suppliers[slot.position].idurl == slot.idurl
                                      and self.suppliers[slot.position].misses):
                out.add(slot.position)
        return out

    def healthy(self, key: str, n: int, unreachable: set[int]) -> int:
        return n - len(self.bad.get(key, set()) | unreachable)

    def version_health(self, version: Version, path_id: str) -> tuple[int, int]:
        """(healthy shares of the version's weakest block, shares a block has)."""
        unreachable = self.unreachable()
        worst, total = None, 0
        for number, info in enumerate(version.blocks):
            n = len(info.shares)
            total = max(total, n)
            ok = self.healthy(f"{path_id}/{version.version}/{number}", n, unreachable)
            worst = ok if worst is None else min(worst, ok)
        return (worst or 0, total) if worst is not None else (0, 0)

    def degraded(self) -> list[tuple[int, BlockRef, set[int]]]:
        """(healthy shares, block, bad positions) of every degraded block, fewest healthy shares first."""
        unreachable = self.unreachable()
        found = []
        for block in self.blocks():
            bad = self.bad.get(block.key)
            if bad:
                n = len(block.version.blocks[block.number].shares)
                found.append((self.healthy(block.key, n, unreachable), block, set(bad)))
        found.sort(key=lambda item: (item[0], item[1].key))
        return found


async def _awaited(work: Awaitable[bool | None]) -> bool | None:
    return await work


def _not_replaced(failure: Failure, position: int) -> None:
    log.warn("supplier at position {pos} not replaced: {why}", pos=position, why=failure.getErrorMessage())


def position_ok(bad: dict[str, set[int]], piece: Piece) -> bool:
    """A piece not already known to be bad: worth verifying."""
    return piece.position not in bad.get(piece.block.key, ())

