"""A year of storage on one simulated clock, with the customer's real health checks, replacement rule and
repairs (storage/health.py, storage/repair.py, storage/transfers.py: the same objects a node runs, real erasure
coding and sealing), over simulated suppliers.

    .venv/bin/python benchmarks/durability_sim.py [--seed 1] [--days 365] [--customers 50] [--files 4]
                                                  [--max-blocks 4]

100 suppliers whose lifetimes are random (exponential, mean 90 days); one that dies takes its disk with it and a
new one takes its place in the pool. Each customer stores its files (200 in all by default, 1 to 4 blocks of
64 KiB each) on 4 of them, any 2 of which rebuild a block. Run twice on the same seed: with the customer's checks
(hourly, a supplier replaced after a day of silence, or after two silent checks when no share is left to spare)
and with nobody checking. Prints the files lost in each, and the bytes the repairs and the checks read and wrote
per stored byte. CPU only and deterministic for a seed; the network and hiring are simulated (a replacement is a
random live supplier), the decisions are the customer's own.

The checks verify at least one piece a round: a customer storing a few dozen small pieces (as here by default)
reads far more than 1 % of them a day; `--customers 1 --files 200 --max-blocks 16` is one customer with a store
large enough for the budget (0.9 % a day) to be what counts.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pybase64
from cryptography.hazmat.primitives.asymmetric import rsa
from twisted.internet import defer
from twisted.internet.task import Clock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bitdust_node.storage import erasure  # noqa: E402
from bitdust_node.storage.catalog import Catalog, Version, new_version  # noqa: E402
from bitdust_node.storage.health import HealthChecker, HealthSettings  # noqa: E402
from bitdust_node.storage.listing import HeldVersion, Holdings  # noqa: E402
from bitdust_node.storage.repair import Rebuilder, RepairQueue  # noqa: E402
from bitdust_node.storage.supplier_link import Fetch, Fetched, Unanswered  # noqa: E402
from bitdust_node.storage.suppliers import Slot, SlotState  # noqa: E402
from bitdust_node.storage.transfers import ShareMover, Transfer, TransferKind  # noqa: E402
from bitdust_node.wire import packet as wire  # noqa: E402

DAY = 86400.0
BLOCK = 64 * 1024
N, K = 4, erasure.needed(4)


class SimSupplier:
    def __init__(self, name: str) -> None:
        self.idurl = f"http://sim/{name}.xml"
        self.alive = True
        self.shares: dict[str, bytes] = {}
        # `<path id>/<version>` -> block numbers held (what its listing says)
        self.held: dict[str, set[int]] = collections.defaultdict(set)

    def keep(self, packet_id: str, share: bytes) -> None:
        self.shares[packet_id] = share
        path, block = _version_and_block(packet_id)
        self.held[path].add(block)


def _version_and_block(packet_id: str) -> tuple[str, int]:
    path = packet_id.partition(":")[2]
    head, _slash, piece = path.rpartition("/")
    return head, int(piece.split("-")[0])


class Pool:
    """The suppliers: a fixed number alive, each dying at a random time and replaced by a newcomer."""

    def __init__(self, clock: Clock, rng: random.Random, size: int, mean_days: float) -> None:
        self.clock, self.rng, self.mean = clock, rng, mean_days * DAY
        self.by_idurl: dict[str, SimSupplier] = {}
        self.born = 0
        self.deaths = 0
        for _ in range(size):
            self._birth()

    def _birth(self) -> None:
        supplier = SimSupplier(f"s{self.born}")
        self.born += 1
        self.by_idurl[supplier.idurl] = supplier
        self.clock.callLater(self.rng.expovariate(1 / self.mean), self._death, supplier)

    def _death(self, supplier: SimSupplier) -> None:
        supplier.alive = False
        supplier.shares.clear()
        supplier.held.clear()
        self.deaths += 1
        self._birth()

    def alive(self) -> list[SimSupplier]:
        return [s for s in self.by_idurl.values() if s.alive]


class SimLink:
    """`SupplierLink` in memory: no packets, no signatures; a dead supplier does not answer."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.fetched_bytes = 0
        self.stored_bytes = 0

    def piece_packet(self, idurl: str, packet_id: str, payload: bytes) -> wire.Packet:
        return wire.Packet(command="Data", owner_id="", creator_id="", packet_id=packet_id, date="",
                           payload=payload, remote_id=idurl, key_id="")

    def _up(self, idurl: str) -> SimSupplier:
        supplier = self.pool.by_idurl.get(idurl)
        if supplier is None or not supplier.alive:
            raise Unanswered(f"{idurl} is gone")
        return supplier

    async def store(self, packet: wire.Packet, on_sent: Callable[[], object] | None = None) -> str | None:
        supplier = self._up(packet.remote_id)
        if on_sent is not None:
            on_sent()  # the supplier has the bytes at once: nothing is on its way
        share = pybase64.b64decode(packet.payload)
        supplier.keep(packet.packet_id, share)
        self.stored_bytes += len(share)
        return None

    async def fetch(self, idurl: str, packet_id: str, expected: str = "") -> Fetched:
        try:
            supplier = self._up(idurl)
        except Unanswered as err:
            return Fetched(Fetch.UNREACHABLE, why=str(err))
        share = supplier.shares.get(packet_id)
        if share is None:
            return Fetched(Fetch.MISSING)
        self.fetched_bytes += len(share)
        return Fetched(Fetch.GOT, share, erasure.share_hash(share, expected))

    async def list_files(self, idurl: str) -> Holdings:
        supplier = self._up(idurl)
        return Holdings({path: HeldVersion(max(blocks), frozenset(set(range(max(blocks) + 1)) - blocks))
                         for path, blocks in supplier.held.items() if blocks}, True)


class Memory:
    """The health state kept in memory (a node keeps it in its home)."""

    def load(self) -> dict[str, Any]:
        return {}

    def write(self, doc: dict[str, Any]) -> defer.Deferred[None]:
        return defer.succeed(None)


@attrs.define
class Owner:
    key_id: str
    key: Any


class Me:
    def __init__(self, owner: Owner) -> None:
        self.owner = owner

    def require(self) -> Any:
        return self.owner


class SimCustomer:
    """One customer: its catalog, its 4 slots and the real cores that keep its files."""

    def __init__(self, number: int, pool: Pool, link: SimLink, clock: Clock, rng: random.Random, key: Any,
                 checking: bool) -> None:
        self.pool, self.clock, self.rng = pool, clock, rng
        self.counters: collections.Counter[str] = collections.Counter()
        self.catalog = Catalog()
        self.me = Me(Owner(f"master$c{number}@sim", key))
        self.slots = [Slot(i) for i in range(N)]
        for slot in self.slots:
            self._hire(slot)
        self.mover = ShareMover(link, self.me, self, self.replace, self.counters, worker=defer.maybeDeferred)
        self.rebuilder = Rebuilder(self.mover, self.counters, worker=defer.maybeDeferred)
        self.health = HealthChecker(link, self, lambda: self.catalog, lambda: self.me.owner.key_id, clock,
                                    HealthSettings(lambda: 3600.0, lambda: DAY), self.replace,
                                    lambda _p: defer.succeed(False), Memory(), self.counters, rng)
        self.repairs = RepairQueue(self.rebuilder, self.health, lambda: defer.succeed(None))
        self.checking = checking

    def _hire(self, slot: Slot) -> None:
        taken = {s.idurl for s in self.slots}
        choice = self.rng.choice([s for s in self.pool.alive() if s.idurl not in taken])
        slot.idurl, slot.state, slot.since = choice.idurl, SlotState.CONNECTED, self.clock.seconds()

    def replace(self, position: int, why: str) -> defer.Deferred[None]:
        self.counters["replaced"] += 1
        self._hire(self.slots[position])
        self.health.position_lost(position)
        return defer.succeed(None)

    def store(self, path: Path, name: str) -> int:
        now = self.clock.seconds()
        entry = self.catalog.ensure(name, "file", now, self.rng)
        version = Version(new_version(now, set()), path.stat().st_size, now, BLOCK, [s.idurl for s in self.slots])
        entry.versions.append(version)
        transfer = Transfer(TransferKind.UPLOAD, name, str(path), version.size, now)
        done = defer.ensureDeferred(self.mover.upload(path, entry, version, transfer))
        assert done.called, "the simulated upload waits for nothing"
        return sum(len(b.shares) * -(-b.sealed_size // K) for b in version.blocks)

    def lost_files(self) -> int:
        """Files with a block of which fewer than k shares are left anywhere."""
        lost = 0
        for entry in self.catalog.entries.values():
            version = entry.versions[-1]
            for number, info in enumerate(version.blocks):
                good = 0
                for position in range(N):
                    supplier = self.pool.by_idurl.get(self.slots[position].idurl)
                    packet_id = (f"{self.me.owner.key_id}:{entry.path_id}/{version.version}/{number}-{position}-Data")
                    share = supplier.shares.get(packet_id) if supplier is not None and supplier.alive else None
                    good += share is not None and erasure.share_hash(share) == info.shares[position]
                if good < K:
                    lost += 1
                    break
        return lost


def run(seed: int, days: int, customers: int, files: int, checking: bool, max_blocks: int = 4) -> dict[str, float]:
    rng = random.Random(seed)
    clock = Clock()
    clock.advance(1_800_000_000)
    pool = Pool(clock, rng, 100, 90.0)
    link = SimLink(pool)
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    people = [SimCustomer(n, pool, link, clock, random.Random(rng.random()), key, checking)
              for n in range(customers)]
    stored = 0
    with tempfile.TemporaryDirectory() as tmp:
        for person in people:
            for number in range(files):
                path = Path(tmp) / f"f{number}"
                path.write_bytes(os.urandom(rng.randint(1, max_blocks * BLOCK)))
                stored += person.store(path, f"file{number}.bin")
    link.stored_bytes = 0
    for person in people:
        if checking:
            person.health.start()
    started = time.perf_counter()
    for _hour in range(days * 24):
        clock.advance(3600)
    elapsed = time.perf_counter() - started
    counters: collections.Counter[str] = collections.Counter()
    for person in people:
        counters.update(person.counters)
    check_bytes = counters["check_bytes"]
    return {
        "lost": sum(p.lost_files() for p in people), "files": customers * files, "stored": stored,
        "deaths": pool.deaths, "replaced": counters["replaced"], "repair_written": link.stored_bytes,
        "repair_read": link.fetched_bytes - check_bytes, "check_read": check_bytes,
        "checks": counters["pieces_checked"], "listings": counters["listings_asked"], "seconds": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--files", type=int, default=4, help="files per customer")
    parser.add_argument("--max-blocks", type=int, default=4, help="blocks of 64 KiB a file has at most")
    args = parser.parse_args()
    for checking in (True, False):
        got = run(args.seed, args.days, args.customers, args.files, checking, args.max_blocks)
        stored = got["stored"]
        label = "with checks and repair" if checking else "nobody checking     "
        line = (f"durability {args.days} days, {got['files']} files on 4 of 100 suppliers (mean life 90 days, "
                f"{got['deaths']} died), {label}: {got['lost']} files lost")
        if checking:
            line += (f"; {got['replaced']} replacements; per stored byte over the run: repair wrote "
                     f"{got['repair_written'] / stored:.2f} and read {got['repair_read'] / stored:.2f}, checks read "
                     f"{got['check_read'] / stored:.3f} ({got['check_read'] / stored / args.days * 100:.2f} % a day, "
                     f"{got['checks']} pieces verified, {got['listings']} listings); simulated in "
                     f"{got['seconds']:.0f} s")
        print(line, flush=True)


if __name__ == "__main__":
    main()
