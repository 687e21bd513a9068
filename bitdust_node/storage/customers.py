"""Who may store here and how much (PROTOCOL-P2P.md 5.1, 3.3): the customers a supplier accepted, each with
the bytes it asked for, kept in `HOME/supplier/customers.json` (replaced atomically) across restarts. The file is
rewritten by a worker (off the reactor's thread), one write at a time: changes made while one is under way share
the next. A record whose write failed is taken back (the one before it kept); until its write is done, what the
customer may do is what the disk holds (`written`).

A customer whose identity moved to other servers (a rotation) is the same customer: found by any of its
IDURLs, filed again under the one it goes by now, its folder (`global_id`) the one it was given first."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from bitdust_node.crypto.keys import write_secret_file
from bitdust_node.storage.interfaces import Worker

log = Logger()


class BrokenCustomersFile(ValueError):
    """The customers file cannot be read: the official `broken customers file`."""


@attrs.frozen
class Customer:
    idurl: str
    global_id: str
    allocated: int
    ecc_map: str = ""
    position: int = -1
    family: list[str] = attrs.field(factory=list)
    since: float = 0.0


def _alone(idurl: str) -> list[str]:
    return [idurl]


def _write(path: Path, customers: list[Customer]) -> None:
    doc = {"customers": [attrs.asdict(c) for c in customers]}
    write_secret_file(path, json.dumps(doc, indent=1, sort_keys=True).encode("utf-8"))


@attrs.define(eq=False)
class _Write:
    """One rewrite of the file: those waiting for it, and the records put that it carries."""

    waiting: list[defer.Deferred[None]] = attrs.field(factory=list)
    put: list[Customer] = attrs.field(factory=list)


@attrs.define(eq=False)
class _Unsaved:
    """A record put and not yet on the disk: the write carrying it, and the record to go back to if that fails."""

    before: Customer | None
    write: _Write = attrs.field(factory=_Write)


@attrs.define
class Customers:
    path: Path
    by_idurl: dict[str, Customer] = attrs.field(factory=dict)
    # every IDURL known for the user at an IDURL, the one it goes by now first (the identity cache's aliases)
    aliases: Callable[[str], list[str]] = attrs.field(default=_alone, kw_only=True)
    # rewrites the file: deferToThread in the node, where it is asked in a test
    worker: Worker = attrs.field(default=defer.maybeDeferred, kw_only=True)
    _writing: defer.DeferredLock = attrs.field(factory=defer.DeferredLock, init=False)
    # the write not started yet (None: none waits)
    _queued: _Write | None = attrs.field(default=None, init=False)
    # records put and not yet written, by IDURL
    _unwritten: dict[str, _Unsaved] = attrs.field(factory=dict, init=False)
    # the last write failed: the file may lack what memory holds
    _unsaved: bool = attrs.field(default=False, init=False)
    # the bytes all customers rent, kept up to date: a stranger's request does not add up every customer
    _allocated: int = attrs.field(default=0, init=False)

    @classmethod
    def load(cls, path: Path, aliases: Callable[[str], list[str]] = _alone,
             worker: Worker = defer.maybeDeferred) -> Customers:
        found = cls(path, aliases=aliases, worker=worker)
        if not path.exists():
            return found
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            for item in raw["customers"]:
                customer = Customer(**item)
                found._record(customer)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise BrokenCustomersFile(f"broken customers file {path}: {err}") from None
        return found

    def save(self) -> defer.Deferred[None]:
        """Every customer written, after the write under way if any; fires once on the disk (fails, logged here,
        if the disk refused)."""
        return self._join()

    def _join(self, put: _Unsaved | None = None, customer: Customer | None = None) -> defer.Deferred[None]:
        """A wait for the next write, which carries `customer` (put, not yet written, `put` its record to go back
        to) if given."""
        write = self._queued
        fresh = write is None
        if write is None:
            write = self._queued = _Write()
        if put is not None and customer is not None:
            put.write = write
            write.put.append(customer)
            self._unwritten[customer.idurl] = put
        waiting = self._wait_for(write)
        if fresh:  # last: a worker that does not wait writes at once
            self._writing.run(self._write_now, write)
        return waiting

    @staticmethod
    def _wait_for(write: _Write) -> defer.Deferred[None]:
        waiting: defer.Deferred[None] = defer.Deferred()
        write.waiting.append(waiting)
        return waiting

    def _write_now(self, write: _Write) -> defer.Deferred[None]:
        if self._queued is write:
            self._queued = None  # what changes from now on needs the next write
        # the records are frozen: the list taken here is what the worker writes, whatever changes meanwhile
        written = self.worker(_write, self.path, list(self.by_idurl.values()))

        def done(result: Failure | None) -> None:
            self._unsaved = isinstance(result, Failure)
            if isinstance(result, Failure):
                log.warn("{path} not written: {why}", path=str(self.path), why=result.getErrorMessage())
            self._settle(write, failed=isinstance(result, Failure))
            for one in write.waiting:
                if isinstance(result, Failure):
                    one.errback(result)
                else:
                    one.callback(None)

        return written.addBoth(done)

    def _settle(self, write: _Write, failed: bool) -> None:
        """The records `write` carried: on the disk now, or (it failed) taken back to those before them, unless
        changed since (a later write carries them)."""
        for idurl, customer in {c.idurl: c for c in write.put}.items():  # the last put of each
            unsaved = self._unwritten.get(idurl)
            if unsaved is None:
                continue
            if unsaved.write is not write:
                if not failed:
                    unsaved.before = customer  # on the disk: what a later write that fails goes back to
                continue
            del self._unwritten[idurl]
            if failed and self.by_idurl.get(idurl) is customer:
                log.info("customer {user} taken back: its record was not written", user=idurl)
                if unsaved.before is not None:
                    self._record(unsaved.before)
                else:
                    self._unrecord(idurl)

    def _save_later(self) -> None:
        self.save().addErrback(lambda _: None)  # logged where it failed

    def flushed(self) -> defer.Deferred[None]:
        """Fires once the writes asked so far are done."""
        return self._writing.run(defer.succeed, None)

    def get(self, idurl: str) -> Customer | None:
        """The customer known by `idurl` or by an IDURL it moved from; filed under its newest one."""
        found = self.by_idurl.get(idurl)
        if found is not None:
            return found
        # a stranger costs a look at each of its own IDURLs (at most the cache's 64 a user), not at every customer
        known = self.aliases(idurl)
        for alias in known:
            customer = self.by_idurl.get(alias)
            if customer is not None:
                return self._moved(customer, known[0])
        return None

    def written(self, idurl: str) -> Customer | None:
        """The customer known by `idurl` as the disk holds it: a record put and not yet written gives no rights
        before it is (a write that fails takes it back), so the one before it, or None for a new customer."""
        customer = self.get(idurl)
        if customer is None:
            return None
        unsaved = self._unwritten.get(customer.idurl)
        if unsaved is None:
            return customer
        before = unsaved.before
        if before is None:
            return None
        # the smaller room of the two: a customer lowering its request is held to it at once
        return attrs.evolve(before, allocated=min(before.allocated, customer.allocated))

    def _moved(self, customer: Customer, idurl: str) -> Customer:
        if customer.idurl != idurl:
            log.info("customer {old} moved to {new}: its folder {folder} follows", old=customer.idurl, new=idurl,
                     folder=customer.global_id)
            del self.by_idurl[customer.idurl]
            moved = self.by_idurl[idurl] = attrs.evolve(customer, idurl=idurl)
            unsaved = self._unwritten.pop(customer.idurl, None)
            if unsaved is not None:
                # a write not done yet carries it: a failure takes back the moved record, a repeat waits for it
                unsaved.write.put = [moved if c is customer else c for c in unsaved.write.put]
                if unsaved.before is not None:
                    unsaved.before = attrs.evolve(unsaved.before, idurl=idurl)
                self._unwritten[idurl] = unsaved
            self._save_later()
            return moved
        return customer

    def allocated(self, but: str | None = None) -> int:
        other = self.by_idurl.get(but) if but is not None else None
        return self._allocated - (other.allocated if other is not None else 0)

    def _record(self, customer: Customer) -> None:
        """`customer` kept in memory in place of the record it had, the bytes rented kept up to date."""
        old = self.by_idurl.get(customer.idurl)
        self._allocated += customer.allocated - (old.allocated if old is not None else 0)
        self.by_idurl[customer.idurl] = customer

    def _unrecord(self, idurl: str) -> Customer | None:
        gone = self.by_idurl.pop(idurl, None)
        if gone is not None:
            self._allocated -= gone.allocated
        return gone

    def put(self, customer: Customer) -> defer.Deferred[None]:
        """The customer kept; fires once it is on the disk (at once when it was already, unchanged), fails (and
        the customer is as it was) if the disk refused."""
        unsaved = self._unwritten.get(customer.idurl)
        if self.by_idurl.get(customer.idurl) == customer:
            # a customer asking again for what it has: nothing more to write, but no yes before its record's write
            if unsaved is not None:
                return self._wait_for(unsaved.write)
            if not self._unsaved:
                return self.flushed()
        before = unsaved.before if unsaved is not None else self.by_idurl.get(customer.idurl)
        self._record(customer)
        return self._join(_Unsaved(before), customer)

    def remove(self, idurl: str) -> Customer | None:
        known = self.get(idurl)
        gone = self._unrecord(known.idurl) if known is not None else None
        if gone is not None:
            self._save_later()
        return gone

    def describe(self) -> list[dict[str, Any]]:
        return [attrs.asdict(c) for c in self.by_idurl.values()]
