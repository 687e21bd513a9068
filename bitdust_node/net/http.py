"""One capped HTTP request (treq): a body cap while the reply arrives, a timeout, no pooled connections."""

from __future__ import annotations

from typing import Any

import attrs
import treq
from treq.client import HTTPClient
from twisted.web.client import Agent, HTTPConnectionPool

from bitdust_node.net.clock import INodeReactor

TIMEOUT = 10.0
# the largest reply any caller expects by default (identity files are far smaller)
MAX_BODY = 256 * 1024
USER_AGENT = b"BitDust HTTP client"
_HEADERS: Any = {b"User-Agent": USER_AGENT}


class Unreachable(Exception):
    """The server could not be asked: refused, timed out, broken or oversized reply."""


@attrs.frozen
class Reply:
    status: int
    body: bytes


@attrs.define
class CappedHttp:
    """GET and POST with a cap on the reply body; each request on its own connection, as official clients do."""

    reactor: INodeReactor
    timeout: float = TIMEOUT
    max_body: int = MAX_BODY

    def _client(self) -> HTTPClient:
        pool = HTTPConnectionPool(self.reactor, persistent=False)
        agent: Any = Agent(self.reactor, pool=pool)
        return HTTPClient(agent)

    async def get(self, url: str) -> Reply:
        return await self._call("GET", url, None)

    async def post(self, url: str, body: bytes) -> Reply:
        return await self._call("POST", url, body)

    async def _call(self, method: str, url: str, body: bytes | None) -> Reply:
        try:
            response = await self._client().request(method, url, data=body, headers=_HEADERS, timeout=self.timeout)
            return Reply(response.code, await self._read(response))
        except Unreachable:
            raise
        except Exception as err:  # every transport failure means the same to callers
            raise Unreachable(f"{method} {url}: {err!r}") from None

    async def _read(self, response: Any) -> bytes:
        parts: list[bytes] = []
        size = 0

        def collect(data: bytes) -> None:
            nonlocal size
            size += len(data)
            if size > self.max_body:
                raise Unreachable(f"reply over {self.max_body} bytes")
            parts.append(data)

        await treq.collect(response, collect)
        return b"".join(parts)
