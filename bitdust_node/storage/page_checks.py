"""My catalog's pages on the suppliers, checked one a supplier each round of health checks (health.py): the page
checked there longest ago is fetched and hashed against the root. The listings show the index piece but not the
pages (they are no versions a supplier lists), so a supplier that lost or damaged a page would otherwise keep it so
until a fresh machine needed it. What a round reads: one page (about 512 KiB) from each supplier holding pages."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

from bitdust_node.storage.catalog_pages import PageRef
from bitdust_node.storage.interfaces import Clock


class PageChecks:
    def __init__(
        self, pages: Callable[[], list[PageRef]], held: Callable[[str], set[str]],
        intact: Callable[[str, PageRef], Awaitable[bool]], clock: Clock, rng: random.Random | None = None,
    ) -> None:
        self.pages = pages
        self.held = held
        self.intact = intact
        self.clock = clock
        self.rng = rng or random.Random()
        # when each (holder, page piece) was last found intact; only the pages of the current root are kept
        self.checked: dict[tuple[str, str], float] = {}

    def next_for(self, idurl: str) -> PageRef | None:
        """The page `idurl` is known to hold that was checked there longest ago (never checked: first, at random)."""
        held = self.held(idurl)
        candidates = [page for page in self.pages() if page.piece in held]
        if not candidates:
            return None
        return min(candidates, key=lambda page: (self.checked.get((idurl, page.piece), 0.0), self.rng.random()))

    async def check(self, idurl: str) -> bool:
        """One page at `idurl` checked; False when it was lost or altered (the next save sends it again)."""
        page = self.next_for(idurl)
        if page is None:
            return True
        if not await self.intact(idurl, page):
            self.checked.pop((idurl, page.piece), None)
            return False
        self.checked[(idurl, page.piece)] = self.clock.seconds()
        current = {page.piece for page in self.pages()}
        for key in [k for k in self.checked if k[1] not in current]:
            del self.checked[key]
        return True
