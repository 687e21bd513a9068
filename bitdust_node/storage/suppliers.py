"""The customer's suppliers, one per position (PROTOCOL-P2P.md 3.3, 5.5): hired with an Identity ping and
RequestService `service_supplier`, kept in `HOME/customer/suppliers.json`, published in the DHT family
record `suppliers:<customer IDURL>:0:7`, replaced when one stops answering or refuses.

Candidates come from `services/customer/preferred-suppliers`, else the DHT family record (a fresh machine
finds its old suppliers there), else random members of DHT layer 3.
"""

from __future__ import annotations

import collections
import enum
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import attrs
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from bitdust_node.crypto.keys import write_secret_file
from bitdust_node.errors import BitDustError
from bitdust_node.storage.family import FAMILY_EXPIRE, FamilyRecords, family_key, family_value, read_family
from bitdust_node.storage.interfaces import Clock, IdentityLookup, Me, Pinger
from bitdust_node.transport.interfaces import PacketNetwork
from bitdust_node.wire.identity_xml import Identity

log = Logger()
SUPPLIERS_LAYER = 3
HIRE_TIMEOUT = 20.0
# what _ask_space says when the supplier did not answer at all
NO_ANSWER = "no answer"
# a hired supplier that did not answer a request for more space is asked again after this long
UNANSWERED_ASKED_AGAIN_AFTER = 900.0
# looks into layer 3 (each around another random id) per fill before a position is given up for now: in a
# small layer one look may find only the hired and the dead
FILL_ROUNDS = 5
# the packets a supplier stores are the pieces in base64 inside JSON: a third more than the shares
WIRE_OVERHEAD = 4 / 3 * 1.02


class NoSupplier(BitDustError):
    """No supplier could be hired for a position."""

    http_status = 503
    exit_code = 1


class SupplierLookup(Protocol):
    async def random_nodes(self, layer_id: int, count: int = 1) -> list[Identity]: ...


def per_supplier_bytes(needed: int, n: int, k: int, catalog_text: int = 0) -> int:
    """What to ask each supplier for so that `needed` bytes of files fit (n/k shares of it, in base64), and the
    copies of my catalog, whose text is `catalog_text` bytes (catalog_room)."""
    return math.ceil(needed / k * WIRE_OVERHEAD) + catalog_room(catalog_text)


def catalog_room(catalog_text: int) -> int:
    """The room my catalog's copies take on a supplier, whose text is `catalog_text` bytes: each copy sealed in base64
    inside a packet (a third more), twice (a save stores its pages before the ones it replaces go), in powers of two
    from 1 MiB up, so that a growing catalog asks the suppliers again only when it doubles."""
    wanted = math.ceil(catalog_text * 2 * WIRE_OVERHEAD)
    room = 1 << 20
    while room < wanted:
        room *= 2
    return room


@attrs.frozen
class AskedAgain:
    """What a round of ask_again did: how many suppliers took more, and the position of the one that refused (which
    an official supplier drops, with what it stored), if one did."""

    took: int
    refused: int | None = None


class SlotState(enum.StrEnum):
    EMPTY = "EMPTY"
    CONNECTED = "CONNECTED"
    FAILED = "FAILED"


@attrs.define
class Slot:
    position: int
    idurl: str = ""
    state: SlotState = attrs.field(default=SlotState.EMPTY, converter=SlotState)
    since: float = 0.0
    failures: int = 0
    # the bytes it took to keep for me when it last said yes (0: not known, a file an older version wrote)
    asked: int = 0
    # it refused more space: not asked again while it holds the position (an official supplier drops a customer it
    # refuses, with what it stored: asking again would drop me again); a store it refuses replaces it
    short: bool = False

    @property
    def connected(self) -> bool:
        return self.state is SlotState.CONNECTED


class Suppliers:
    """The slots by position, who holds each, and hiring for the empty or failed ones."""

    def __init__(
        self,
        network: PacketNetwork,
        pinger: Pinger,
        me: Me,
        identities: IdentityLookup,
        lookup: SupplierLookup | None,
        dht: FamilyRecords | None,
        path: Path,
        clock: Clock,
    ) -> None:
        self.network = network
        self.pinger = pinger
        self.me = me
        self.identities = identities
        self.lookup = lookup
        self.dht = dht
        self.path = path
        self.clock = clock
        self.slots: list[Slot] = []
        self.revision = 0
        # suppliers that failed or refused: not asked again soon
        self.set_aside: dict[str, float] = {}
        self._refusals: dict[str, int] = {}
        # IDURLs named in `services/customer/preferred-suppliers`, asked first: read at each fill (a live setting)
        self.preferred: Callable[[], list[str]] = list
        self.counters: collections.Counter[str] = collections.Counter()
        # positions being replaced, with who waits for each
        self._replacing: dict[int, list[defer.Deferred[None]]] = {}
        self._replaced_listeners: list[Callable[[int, str], object]] = []
        # suppliers that did not answer a request for more space, and when to ask them again
        self._unanswered_until: dict[str, float] = {}
        self._filling = defer.DeferredLock()
        self._publishing = defer.DeferredLock()
        self._load()

    # -- the file

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            doc = json.loads(self.path.read_text())
            self.revision = int(doc.get("revision", 0))
            self.slots = [Slot(**s) for s in doc["slots"]]
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.error("suppliers file {path} unreadable ({why}); hiring again", path=str(self.path), why=str(err))
            self.slots = []

    def save(self) -> None:
        doc = {"revision": self.revision, "slots": [_slot_doc(s) for s in self.slots]}
        write_secret_file(self.path, json.dumps(doc, indent=1).encode())

    def resize(self, n: int) -> None:
        while len(self.slots) < n:
            self.slots.append(Slot(len(self.slots)))
        del self.slots[n:]

    def idurls(self) -> list[str]:
        return [s.idurl if s.connected else "" for s in self.slots]

    def connected(self) -> list[Slot]:
        return [s for s in self.slots if s.connected]

    def hired(self) -> set[str]:
        """The IDURL of every position's supplier, connected now or not (one whose hire failed at my restart still
        holds my pieces)."""
        return {s.idurl for s in self.slots if s.idurl}

    def holders(self) -> list[tuple[int, str]]:
        """(position, IDURL) of each connected supplier."""
        return [(s.position, s.idurl) for s in self.connected()]

    # -- hiring

    async def fill(self, n: int, per_supplier: int) -> int:
        """Hire suppliers for every empty or failed position; how many positions are connected after. One fill at
        a time: a replacement and the service's hiring round never hire two suppliers for one position."""
        return await self._filling.run(lambda: defer.ensureDeferred(self._fill(n, per_supplier)))

    async def _fill(self, n: int, per_supplier: int) -> int:
        self.resize(n)
        missing = [s for s in self.slots if not s.connected]
        if not missing:
            return n
        changed = False
        # each round looks around another random id of layer 3: one look may find only the hired and the dead
        for _ in range(FILL_ROUNDS):
            missing = [s for s in self.slots if not s.connected]
            if not missing:
                break
            candidates = await self.candidates(len(missing) * 3)
            if not candidates:
                continue
            for slot in missing:
                while candidates:
                    idurl = candidates.pop(0)
                    if await self.hire(slot, idurl, per_supplier):
                        changed = True
                        break
        if changed:
            self.revision += 1
            self.save()
            # in order, but not waited for: a DHT that is slow to store (a dead holder) must not hold a replacement
            self._publishing.run(lambda: defer.ensureDeferred(self.publish_family(n)))
        return len(self.connected())

    async def candidates(self, count: int) -> list[str]:
        """IDURLs worth asking, best first: named in the settings, then the family record, then layer 3."""
        now = self.clock.seconds()
        mine = self.me.require().idurl
        taken = {s.idurl for s in self.slots if s.connected}
        found: list[str] = []

        def add(idurl: str) -> None:
            if idurl and idurl != mine and idurl not in taken and idurl not in found:
                if self.set_aside.get(idurl, 0) <= now:
                    found.append(idurl)

        for idurl in self.preferred():
            add(idurl)
        for idurl in await self.family_from_dht():
            add(idurl)
        if len(found) < count and self.lookup is not None:
            try:
                for identity in await self.lookup.random_nodes(SUPPLIERS_LAYER, count):
                    add(identity.sources[0])
            except BitDustError as err:
                log.info("no suppliers found in DHT layer 3: {why}", why=str(err))
        return found

    async def hire(self, slot: Slot, idurl: str, per_supplier: int) -> bool:
        """Ping the candidate, ask for space; True when it answered Ack `accepted...`."""
        try:
            await self.pinger.ping(idurl, timeout=HIRE_TIMEOUT, channel="supplier_finder")
        except BitDustError as err:
            self._refused(idurl, f"{NO_ANSWER}: {err}")
            return False
        refusal = await self._ask_space(slot, idurl, per_supplier)
        if refusal is not None:
            self._refused(idurl, refusal)
            return False
        previous = slot.idurl
        slot.asked, slot.short = per_supplier, False
        slot.idurl, slot.state, slot.since = idurl, SlotState.CONNECTED, self.clock.seconds()
        self._refusals.pop(idurl, None)
        self.counters["hired"] += 1
        log.info("supplier {idurl} hired for position {pos}", idurl=idurl, pos=slot.position)
        if previous and previous != idurl:
            for listener in list(self._replaced_listeners):
                listener(slot.position, previous)
        return True

    async def _ask_space(self, slot: Slot, idurl: str, per_supplier: int) -> str | None:
        """RequestService `service_supplier` for `per_supplier` bytes at `slot`'s position: None when it answered
        Ack `accepted...`, else what it answered."""
        me = self.me.require()
        try:
            supplier = await self.identities.known(idurl)
            family = self.idurls()
            family[slot.position] = idurl
            body = {"name": "service_supplier", "payload": {
                "customer_id": me.global_id, "ecc_map": f"ecc/{len(self.slots)}x{len(self.slots)}",
                "family_snapshot": family, "needed_bytes": per_supplier, "position": slot.position,
            }}
            request = self.network.outbox("RequestService", idurl, json.dumps(body, separators=(",", ":")).encode())
            answer = await self.network.request(request, supplier, timeout=HIRE_TIMEOUT)
        except BitDustError as err:
            return f"{NO_ANSWER}: {err}"
        text = answer.payload.decode("utf-8", "replace")
        if answer.command != "Ack" or not text.startswith("accepted"):
            return f"{answer.command} {text[:200]}"
        return None

    def to_ask_again(self, per_supplier: int) -> list[Slot]:
        """The connected suppliers that keep less for me than `per_supplier` (the space I need grew, or my catalog
        did), but those that refused more once (`short`) and those that did not answer lately. Never one that keeps
        more: what it holds of mine may fill it, and a supplier keeping less than it holds refuses my next pieces
        (ours) or deletes my oldest files."""
        now = self.clock.seconds()
        return [slot for slot in self.connected() if slot.asked < per_supplier and not slot.short
                and self._unanswered_until.get(slot.idurl, 0.0) <= now]

    async def ask_again(self, per_supplier: int) -> AskedAgain:
        """Each supplier to_ask_again asked for `per_supplier` bytes, one at a time, as official customers ask when the
        space they need grows. A refusal ends the round: an official supplier drops a customer it refuses more (and
        removes what it stored, PROTOCOL-P2P.md 3.3), so it is asked at once for what it kept before, to be my
        supplier again, and the round asks nobody else (at most one position to check and repair). Ours keeps
        what it gave. Either stays hired and is not asked again (`short`): asking an official one again would drop
        me again; a store it refuses replaces it. One that does not answer refused nothing: the round goes on, and
        it is asked again after UNANSWERED_ASKED_AGAIN_AFTER."""
        return await self._filling.run(lambda: defer.ensureDeferred(self._ask_again(per_supplier)))

    async def _ask_again(self, per_supplier: int) -> AskedAgain:
        took = 0
        for slot in self.to_ask_again(per_supplier):
            idurl, had = slot.idurl, slot.asked
            refusal = await self._ask_space(slot, idurl, per_supplier)
            if slot.idurl != idurl or not slot.connected:
                continue  # replaced meanwhile: its successor was hired for what a hire asks
            if refusal is None:
                slot.asked = per_supplier
                took += 1
                self.counters["asked_again"] += 1
                log.info("supplier {idurl} keeps {bytes} bytes for me now", idurl=idurl, bytes=per_supplier)
                continue
            if refusal.startswith(NO_ANSWER):
                # unreachable now (the checks see to that): no refusal, so asked again later, and the others now
                self._unanswered_until[idurl] = self.clock.seconds() + UNANSWERED_ASKED_AGAIN_AFTER
                self.counters["space_unanswered"] += 1
                log.info("supplier {idurl} did not answer a request for more space: {why}", idurl=idurl,
                         why=refusal)
                continue
            slot.short = True
            self.counters["refused_more"] += 1
            log.warn("supplier {idurl} refused {bytes} bytes for me: {why}", idurl=idurl, bytes=per_supplier,
                     why=refusal)
            back = await self._ask_space(slot, idurl, had) if had else "what it kept is not known"
            if back is not None and slot.idurl == idurl:
                log.warn("supplier {idurl} did not take me back for {had} bytes: {why}", idurl=idurl, had=had,
                         why=back)
            self.save()
            return AskedAgain(took, slot.position)
        if took:
            self.save()
        return AskedAgain(took)

    def _refused(self, idurl: str, why: str) -> None:
        """Not asked again for a while: 15 s after a first refusal (it may still be starting), then longer."""
        self.counters["refused"] += 1
        count = self._refusals[idurl] = self._refusals.get(idurl, 0) + 1
        self.set_aside[idurl] = self.clock.seconds() + min(15.0 * 2 ** (count - 1), 600.0)
        log.info("supplier candidate {idurl} not hired: {why}", idurl=idurl, why=why)

    def fire(self, position: int, why: str) -> Slot:
        """The supplier at `position` stopped answering: its slot is free for a replacement."""
        slot = self.slots[position]
        log.info("supplier {idurl} at position {pos} replaced: {why}", idurl=slot.idurl, pos=position, why=why)
        if slot.idurl:
            self.set_aside[slot.idurl] = self.clock.seconds() + 600
        slot.state, slot.failures = SlotState.FAILED, slot.failures + 1
        self.counters["fired"] += 1
        self.save()
        return slot

    def replace(self, position: int, why: str, n: int, per_supplier: int) -> defer.Deferred[None]:
        """Fire the supplier at `position` and hire another (once, however many callers noticed); fires when one
        holds the position, fails with NoSupplier when none could be hired. Listeners hear of each replacement."""
        waiting: defer.Deferred[None] = defer.Deferred()
        waiters = self._replacing.get(position)
        if waiters is not None:
            waiters.append(waiting)
            return waiting
        self._replacing[position] = [waiting]
        self.fire(position, why)

        def finished(outcome: Any) -> None:
            for waiter in self._replacing.pop(position, []):
                if isinstance(outcome, Failure):
                    waiter.errback(outcome)
                else:
                    waiter.callback(None)

        defer.ensureDeferred(self._hire_for(position, n, per_supplier)).addBoth(finished)
        return waiting

    async def _hire_for(self, position: int, n: int, per_supplier: int) -> None:
        await self.fill(n, per_supplier)
        if position >= len(self.slots) or not self.slots[position].connected:
            raise NoSupplier(f"no supplier could be hired for position {position}")

    def on_replaced(self, listener: Callable[[int, str], object]) -> Callable[[], None]:
        """Call `listener(position, previous IDURL)` when another supplier is hired where one was; the call returned
        stops it."""
        self._replaced_listeners.append(listener)
        return lambda: self._replaced_listeners.remove(listener) if listener in self._replaced_listeners else None

    # -- the family record

    async def publish_family(self, n: int) -> None:
        if self.dht is None:
            return
        me = self.me.require()
        value = family_value(me.idurl, me.idurl, self.idurls(), self.revision, self.clock.seconds())
        try:
            await self.dht.set_value(family_key(me.idurl), value, expire=FAMILY_EXPIRE)
        except Exception as err:  # a DHT that cannot store now: the next change or refresh publishes again
            log.info("family record not published: {why}", why=str(err))

    async def family_from_dht(self) -> list[str]:
        if self.dht is None:
            return []
        try:
            doc = await read_family(self.dht, self.me.require().idurl)
        except Exception as err:
            log.info("family record not read: {why}", why=str(err))
            return []
        return [s for s in doc["suppliers"] if isinstance(s, str) and s] if doc else []


def _slot_doc(slot: Slot) -> dict[str, Any]:
    doc = attrs.asdict(slot)
    doc["state"] = str(slot.state)
    return doc
