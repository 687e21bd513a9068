"""Keeping the customer's catalog: my copy in the home (catalog_disk.py), written after every change, and its copies
on every supplier (catalog_copies.py), one save at a time. On a fresh home (a key backup restored) the newest copy
the suppliers hold is taken."""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping, Sequence

import attrs
from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.failure import Failure

from bitdust_node.errors import BitDustError
from bitdust_node.storage import catalog_pages as paging
from bitdust_node.storage.catalog import Catalog, text_of, text_size
from bitdust_node.storage.catalog_copies import CatalogCopies
from bitdust_node.storage.catalog_disk import CatalogDisk
from bitdust_node.storage.catalog_pages import PageRef
from bitdust_node.storage.interfaces import IdentityLookup, Me, Worker
from bitdust_node.transport.interfaces import PacketNetwork

log = Logger()


class CatalogNotRecovered(BitDustError):
    """My catalog could not be read here and the suppliers' copy is not fetched yet."""

    http_status = 503
    exit_code = 1


class CustomerClosed(BitDustError):
    """The customer stopped (its service off, or started again): it saves nothing more."""

    http_status = 503
    exit_code = 1


@attrs.frozen
class SavedCopies:
    """What the last save left on the suppliers: its revision, its text's size, and the copies stored of those
    asked."""

    revision: int = 0
    size: int = 0
    stored: int = 0
    holders: int = 0


class CatalogKeeper:
    """The catalog in memory, on my disk and on the suppliers `holders()` names as (position, IDURL)."""

    def __init__(
        self, network: PacketNetwork, me: Me, identities: IdentityLookup, disk: CatalogDisk,
        holders: Callable[[], Sequence[tuple[int, str]]], worker: Worker = threads.deferToThread,
        counters: collections.Counter[str] | None = None,
    ) -> None:
        self.disk = disk
        self.copies = CatalogCopies(network, me, identities, disk.path.parent, holders, worker)
        self.catalog = disk.load()
        self.last_save = SavedCopies()
        # the copies every save stored, counted once a save however many callers share it (catalog_copies)
        self.counters: collections.Counter[str] = counters if counters is not None else collections.Counter()
        # one save at a time: a supplier keeps the copy that reached it last, so overlapping saves could leave it an
        # older revision. Whether one runs, and the callers waiting for the next one, which covers every change made
        # until it starts
        self._running = False
        self._next: list[defer.Deferred[int]] = []
        # saves and fetches take turns: a fetch that took a newer catalog while a save ran would see that save's older
        # copies land over it on the suppliers
        self._turn = defer.DeferredLock()
        # the pages the last cut made (or my copy holds, as read at the start) and their entries' values (without
        # their texts): the next cut makes again only the pages whose values changed
        self._last_cut: paging.Cut | None = disk.as_read
        # no copy of mine read here (none written yet, or a damaged one set aside, now or at an earlier start): nothing
        # is saved over my suppliers' copies, which may be all that is left, until one is taken or they say they have
        # none
        self.fetch_first = disk.unread or self.catalog.revision == 0
        self._said: tuple[int, int, int] | None = None
        self.closed = False
        # waiting for no save to run nor be asked for (settled)
        self._idle: list[defer.Deferred[None]] = []

    @property
    def damaged(self) -> bool:
        """My copy was damaged (now or at an earlier start): only every holder saying it has none ends the wait;
        with no copy ever written here, every holder that answered saying so does."""
        return self.disk.unread

    def require_recovered(self) -> None:
        """CatalogNotRecovered while the suppliers' copy is still to be fetched (nothing may change the catalog:
        the copy taken replaces it)."""
        if self.fetch_first and (self.damaged or self.copies.holders()):  # with no supplier, nothing to write over
            raise CatalogNotRecovered("my catalog is to be taken from my suppliers first (none is read here), and "
                                      "their answers are awaited; try again in a moment")

    def close(self) -> None:
        """No save starts from now on (one running ends as it would): a customer started again in this process, on
        the same home, is the only one that saves."""
        self.closed = True

    def settled(self) -> defer.Deferred[None]:
        """Fires once no save runs, nor waits to."""
        if not self._running and not self._next:
            return defer.succeed(None)
        idle: defer.Deferred[None] = defer.Deferred()
        self._idle.append(idle)
        return idle

    async def save(self) -> int:
        """The catalog as it is kept here and on every holder, once any save running now has ended (callers asking
        meanwhile share the next one): how many holders took their copy."""
        # a caller's own wait: cancelling it (a REST client gone) leaves the save and the others' waits alone
        mine: defer.Deferred[int] = defer.Deferred()
        self._next.append(mine)
        if not self._running:
            self._start_next()
        return await mine

    def _start_next(self) -> None:
        if self.closed:  # asked for before the close, or after: never started
            refused, self._next = self._next, []
            for shared in refused:
                shared.errback(CustomerClosed("the customer is stopped: the catalog is not saved"))
            self._tell_idle()
            return
        self._running = True  # before the save starts: it may end, or be asked for again, in this very call
        waiting: list[defer.Deferred[int]] = []

        def save_now() -> defer.Deferred[int]:
            waiting.extend(self._next)  # those who asked until it starts (a fetch may go first) share it
            self._next = []
            if self.closed:  # closed while a fetch held the turn
                return defer.fail(CustomerClosed("the customer is stopped: the catalog is not saved"))
            return defer.ensureDeferred(self._save_now())

        self._turn.run(save_now).addBoth(self._ended, waiting)

    def _ended(self, outcome: int | Failure, waiting: list[defer.Deferred[int]]) -> None:
        self._running = False
        if self._next:
            self._start_next()  # before the waiting are told: what they do next asks for the save after it
        else:
            self._tell_idle()
        for shared in waiting:
            if isinstance(outcome, Failure):
                shared.errback(outcome)
            else:
                shared.callback(outcome)

    def _tell_idle(self) -> None:
        idle, self._idle = self._idle, []
        for waiting in idle:
            waiting.callback(None)

    async def _save_now(self) -> int:
        """A new revision here, then every holder's copy (catalog_copies.py): sealing and signing them and writing
        (and fsyncing) mine run in worker threads, my write while the copies travel."""
        self.require_recovered()
        self.catalog.revision += 1
        revision = self.catalog.revision
        holders = list(self.copies.holders())
        size, text, pages, texts = self._cut(self.catalog, lambda page: self.copies.lacks(page, holders))
        kept = self._write_mine(revision, text, pages, texts)
        putting = (self.copies.put_whole(holders, text) if text is not None
                   else self.copies.put_pages(holders, revision, pages, texts))
        del text, texts  # my write and the copies hold them until they are done with them
        try:
            results = await putting
            stored = sum(1 for ok, took in results if ok and took)
            self.counters["catalog_copies"] += stored
            self.last_save = saved = SavedCopies(revision, size, stored, len(results))
            if stored < len(results):
                self._say_unstored(saved, results)
            return stored
        finally:
            await kept  # a local write that failed fails the save

    @staticmethod
    def _say_unstored(saved: SavedCopies, results: Sequence[tuple[bool, object]]) -> None:
        """Copies that did not land, said: with none, a fresh machine could not find what this save added."""
        why = sorted({result.getErrorMessage()[:200] if not ok and hasattr(result, "getErrorMessage")
                      else "refused" for ok, result in results if not (ok and result)})
        if saved.stored:
            log.warn("catalog revision {rev} stored on {stored} of {n} suppliers: {why}", rev=saved.revision,
                     stored=saved.stored, n=saved.holders, why="; ".join(why))
        else:
            log.error("catalog revision {rev} ({size} bytes) stored on none of {n} suppliers: {why}",
                      rev=saved.revision, size=saved.size, n=saved.holders, why="; ".join(why))

    async def fetch_newest(self) -> bool:
        """The newest catalog any holder has, taken if newer than mine (between saves); True when one was taken."""
        taken: bool = await self._turn.run(lambda: defer.ensureDeferred(self._fetch_newest_now()))
        return taken

    async def _fetch_newest_now(self) -> bool:
        if self.closed:
            return False
        found = await self.copies.newest(newer_than=self.catalog.revision)
        if self.closed:  # closed while the copies were asked for: a customer started again on this home keeps it
            return False
        if found is None:
            copies = self.copies
            told = copies.asked if self.damaged else copies.answered
            if self.fetch_first and told and copies.without_copy == told:
                # every holder said it holds no copy: nothing of theirs to keep from being written over
                self.fetch_first = False
                if self.damaged:
                    log.warn("no copy of my catalog here, and my suppliers hold none: starting anew")
            elif self.fetch_first and (copies.answered, copies.asked, copies.without_copy) != self._said:
                self._said = (copies.answered, copies.asked, copies.without_copy)
                say = log.error if self.damaged else log.info  # said once a change, not each hiring round
                say("no copy of my catalog here, and my suppliers' could not be taken ({answered} of {asked} "
                    "answered, {none} have none): nothing is saved over theirs, and files cannot be added until one "
                    "is taken (a copy of mine that could not be read, if any, is kept in the customer's folder as "
                    "catalog.unreadable-N)", answered=copies.answered, asked=copies.asked, none=copies.without_copy)
            return False
        self.fetch_first = False
        newest, pages = found
        self.catalog = newest
        await self.copies.taken(pages)
        _size, text, pages, texts = self._cut(newest, lambda page: False)
        await self._write_mine(newest.revision, text, pages, texts)
        log.info("catalog revision {rev} taken from the suppliers", rev=newest.revision)
        return True

    def _cut(
        self, catalog: Catalog, copies_lack: Callable[[PageRef], bool],
    ) -> tuple[int, bytes | None, list[PageRef], dict[int, bytes]]:
        """`catalog` serialized once, each entry once, for my copy and the holders' alike: its text's size, and its
        whole text up to catalog_pages.PAGED_FROM, else its pages and the texts of those my disk or `copies_lack`
        (the others are let go as they are made). A paged catalog is cut in as many pages as my copy holds (a fresh
        home's: as the root it took), a page's entries at a time, and a page whose entries' values are those of the
        last cut is not made again; when that count turns out wrong (the catalog grew or shrank past a power of two),
        in as many as its size, known now, says, a page's entries at a time again. Only a catalog not paged before
        has all its entries made at once."""
        def cut(entry_texts: Mapping[str, bytes], count: int, last: paging.Cut | None = None) -> paging.Cut:
            return paging.paged(catalog.revision, entry_texts, count, self.copies.pages,
                                lambda page: self.disk.lacks(page) or copies_lack(page), catalog.values_of, last)

        # not page_count(disk.size): each page has its own opening, so the pages' texts together are larger than the
        # whole text, and just under a power of two of PAGE_TEXT they say twice the count
        count = self.disk.page_count or len(self.copies.pages)
        if count:
            made = cut(catalog.entry_texts_when_read(), count, self._last_cut)
            if made.size > paging.PAGED_FROM and paging.page_count(made.size) != count:
                count = paging.page_count(made.size)
                del made
                made = cut(catalog.entry_texts_when_read(), count)
            if made.size > paging.PAGED_FROM:
                self._last_cut = attrs.evolve(made, texts={})
                return made.size, None, made.pages, made.texts
            del made
        self._last_cut = None
        entry_texts = catalog.entry_texts()
        size = text_size(catalog.revision, entry_texts.values())
        if size <= paging.PAGED_FROM:
            return size, text_of(catalog.revision, entry_texts.values()), [], {}
        made = cut(entry_texts, paging.page_count(size))
        self._last_cut = attrs.evolve(made, texts={})
        return made.size, None, made.pages, made.texts

    def _write_mine(
        self, revision: int, text: bytes | None, pages: list[PageRef], texts: dict[int, bytes],
    ) -> defer.Deferred[None]:
        """My copy of what _cut made: the whole text, or the pages."""
        return self.disk.write(text) if text is not None else self.disk.write_paged(revision, pages, texts)
