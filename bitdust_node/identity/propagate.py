"""Send my identity to the servers that host it, and confirm it the way official clients do.

Official servers answer the POST with HTTP 500 yet store the file, so only a GET that returns
the same bytes counts as confirmation.
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet import defer
from twisted.logger import Logger

from bitdust_node.net.http import CappedHttp, Unreachable
from bitdust_node.wire.identity_xml import IdUrl, parse_idurl

log = Logger()


def server_root(idurl: IdUrl) -> str:
    netloc = idurl.host if idurl.port == 80 else f"{idurl.host}:{idurl.port}"
    return f"http://{netloc}/"


@attrs.define
class Propagator:
    http: CappedHttp

    async def publish_one(self, idurl: IdUrl, xml: bytes) -> bool:
        """POST to the server of `idurl`, then GET it back: True when the server serves our bytes."""
        try:
            await self.http.post(server_root(idurl), xml)
            reply = await self.http.get(idurl.url)
        except Unreachable as err:
            log.info(
                "identity server of {url} unreachable: {err}",
                url=idurl.url,
                err=str(err),
            )
            return False
        if reply.status != 200 or reply.body != xml:
            log.info("identity server of {url} did not take our identity", url=idurl.url)
            return False
        return True

    async def publish(self, idurls: list[IdUrl], xml: bytes) -> list[IdUrl]:
        """Publish to all at once; the idurls that confirmed."""
        results = await defer.gatherResults([defer.ensureDeferred(self.publish_one(u, xml)) for u in idurls])
        return [u for u, ok in zip(idurls, results, strict=True) if ok]

    async def propagate(self, me: Any) -> list[IdUrl]:
        """Send `me` (a MyIdentity) to every one of its sources."""
        idurls = [parse_idurl(s) for s in me.identity.sources]
        confirmed = await self.publish(idurls, me.xml)
        log.info(
            "identity revision {rev} confirmed by {ok} of {all} servers",
            rev=me.identity.revision,
            ok=len(confirmed),
            all=len(idurls),
        )
        return confirmed
