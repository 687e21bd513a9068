"""My catalog's pages on the suppliers, checked a page at a time with the rounds of health checks (health.py): the
page checked at a supplier longest ago is fetched from it and hashed against the root. The listings show the index
piece but not the pages (they are no versions a supplier lists), so a supplier that lost or damaged a page would
otherwise keep it so until a fresh machine needed it.

What it reads: a page (about 512 KiB) from a supplier at most every `CYCLE` / pages, so each supplier's whole copy
is read about once in `CYCLE` however often the rounds run, and never more than a page a round."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

from bitdust_node.storage.catalog_pages import PageRef
from bitdust_node.storage.interfaces import Clock

# each supplier's copy of my catalog read whole in about this long
CYCLE = 7 * 86400.0


class PageChecks:
    def __init__(
        self, pages: Callable[[], list[PageRef]], held: Callable[[str], set[str]],
        intact: Callable[[str, PageRef], Awaitable[bool | None]], clock: Clock, rng: random.Random | None = None,
    ) -> None:
        self.pages = pages
        self.held = held
        self.intact = intact
        self.clock = clock
        self.rng = rng or random.Random()
        # when each (holder, page piece) was last found intact; only the pages of the current root are kept
        self.checked: dict[tuple[str, str], float] = {}
        # when a page was last asked of each holder
        self._last: dict[str, float] = {}

    def next_for(self, idurl: str) -> PageRef | None:
        """The page `idurl` is known to hold that was checked there longest ago (never checked: first, at random)."""
        held = self.held(idurl)
        candidates = [page for page in self.pages() if page.piece in held]
        if not candidates:
            return None
        return min(candidates, key=lambda page: (self.checked.get((idurl, page.piece), 0.0), self.rng.random()))

    def due(self, idurl: str) -> bool:
        """Whether a page of `idurl`'s is to be checked now (a page each CYCLE / pages)."""
        count = len(self.pages())
        return bool(count) and self.clock.seconds() - self._last.get(idurl, float("-inf")) >= CYCLE / count

    async def check(self, idurl: str) -> bool | None:
        """A page at `idurl` checked if one is due: False when it was lost or altered (the next save sends it again);
        None when none was checked or the holder gave no verdict."""
        if not self.due(idurl):
            return None
        page = self.next_for(idurl)
        if page is None:
            return None
        self._last[idurl] = self.clock.seconds()
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
