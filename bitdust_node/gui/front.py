"""The web interface as the REST API's front (api/rest.py WebFront): its paths known at once, its code loaded
with its first request, so a node nobody browses (a seed) never holds it, while the Logs page's tail keeps the
log from the start."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bitdust_node.gui.logtail import LogTail
from bitdust_node.gui.paths import serves_gui
from bitdust_node.logs import level_for

if TYPE_CHECKING:
    from bitdust_node.api.routes import ApiContext
    from bitdust_node.gui.site import GuiSite


class LazyGui:
    def __init__(self, api: ApiContext, check_secret: Callable[[Any], None]) -> None:
        self._api = api
        self._check_secret = check_secret
        self._site: GuiSite | None = None
        settings = api.ctx.settings
        self._tail = LogTail(lambda: level_for(int(settings.get("logs/debug-level") or 0)))
        self._tail.watch()

    def serves(self, path: bytes) -> bool:
        return serves_gui(path)

    def site(self) -> GuiSite:
        """The web interface, made (its code imported) the first time it is asked for."""
        if self._site is None:
            from bitdust_node.gui.site import GuiSite

            self._site = GuiSite(self._api, self._check_secret, tail=self._tail)
        return self._site

    async def handle(self, request: Any) -> bytes:
        return await self.site().handle(request)
