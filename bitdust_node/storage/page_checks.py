"""My catalog's pages on the suppliers, checked a page at a time with the rounds of health checks (health.py): each
supplier's pages in turn, fetched from it and hashed against the root. The listings show the index
piece but not the pages (they are no versions a supplier lists), so a supplier that lost or damaged a page would
otherwise keep it so until a fresh machine needed it.

What it reads: a page (about 512 KiB) from a supplier at most every `CYCLE` / pages, in turn (the turns counted
from the epoch, so that restarts neither repeat nor skip them), so each supplier's whole copy is read about once in
`CYCLE` however often the rounds run, and never more than a page a round."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from bitdust_node.storage.catalog_pages import PageRef
from bitdust_node.storage.interfaces import Clock

# each supplier's copy of my catalog read whole in about this long
CYCLE = 7 * 86400.0


class PageChecks:
    def __init__(
        self, pages: Callable[[], list[PageRef]], held: Callable[[str], set[str]],
        intact: Callable[[str, PageRef], Awaitable[bool | None]], clock: Clock, interval: Callable[[], float],
    ) -> None:
        self.pages = pages
        self.held = held
        self.intact = intact
        self.clock = clock
        # how often the rounds run: a turn is never shorter, so that no round skips one (and its page)
        self.interval = interval
        # when each (holder, page piece) was last found intact; only the pages of the current root are kept
        self.checked: dict[tuple[str, str], float] = {}
        # the turn a page was last asked of each holder in
        self._last: dict[str, int] = {}

    def _slot(self) -> int:
        """The turn a page is checked in: a page each CYCLE / pages (or each round, if rounds are further apart),
        counted from the epoch (no restart resets it)."""
        count = len(self.pages())
        return int(self.clock.seconds() // max(CYCLE / count, self.interval(), 1.0)) if count else -1

    def next_for(self, idurl: str) -> PageRef | None:
        """The page of this turn at `idurl`: its pages (those it is known to hold) in turn, from a place of its own,
        so that each is read once a CYCLE whatever restarts come between."""
        held = self.held(idurl)
        candidates = [page for page in self.pages() if page.piece in held]
        if not candidates:
            return None
        offset = int.from_bytes(hashlib.sha256(idurl.encode()).digest()[:4], "big")
        return candidates[(self._slot() + offset) % len(candidates)]

    def due(self, idurl: str) -> bool:
        """Whether this turn's page of `idurl`'s is still to be checked (a page each CYCLE / pages)."""
        slot = self._slot()
        return slot >= 0 and self._last.get(idurl) != slot

    async def check(self, idurl: str) -> bool | None:
        """A page at `idurl` checked if one is due: False when it was lost or altered (the next save sends it again);
        None when none was checked or the holder gave no verdict."""
        if not self.due(idurl):
            return None
        page = self.next_for(idurl)
        if page is None:
            return None
        self._last[idurl] = self._slot()
        intact = await self.intact(idurl, page)
        if intact is None:
            return None
        if not intact:
            self.checked.pop((idurl, page.piece), None)
            return False
        self.checked[(idurl, page.piece)] = self.clock.seconds()
        self._forget_stale()
        return True

    def _forget_stale(self) -> None:
        """What is kept of pages no longer in the root, and of holders that hold none of them."""
        current = {page.piece for page in self.pages()}
        for key in [k for k in self.checked if k[1] not in current or k[1] not in self.held(k[0])]:
            del self.checked[key]
        for idurl in [i for i in self._last if not self.held(i)]:
            del self._last[idurl]
