"""The pages read and change the node through the REST endpoints' own handlers, with the same checks.

A page shows the answer of `/service/list/v1` exactly as a client of the REST API gets it; a field another
part of the node adds to an endpoint later shows up here without a change (or is simply absent).
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet import defer

from bitdust_node.api.routes import ENDPOINTS, ApiContext, ApiRequest, Endpoint, WithMessage
from bitdust_node.errors import BitDustError


@attrs.frozen
class Answer:
    """An endpoint's result, or its error message and HTTP status."""

    result: Any = None
    error: str | None = None
    status: int = 200

    @property
    def ok(self) -> bool:
        return self.error is None


def find_endpoint(method: str, path: str) -> Endpoint | None:
    for candidate in ENDPOINTS:
        if candidate.method == method and candidate.path == path:
            return candidate
    return None


@attrs.define
class Endpoints:
    api: ApiContext

    async def call(self, method: str, path: str, args: dict[str, str] | None = None,
                   body: dict[str, Any] | None = None) -> Answer:
        endpoint = find_endpoint(method, path)
        if endpoint is None:
            return Answer(error=f"method {method} {path} was not found", status=404)
        # the same rule as the REST API's: an endpoint of a service that is not ON answers 503
        if endpoint.service and self.api.graph.state(endpoint.service.removeprefix("service_")) != "ON":
            return Answer(error=f"{endpoint.service} is not started", status=503)
        try:
            result = await defer.maybeDeferred(endpoint.handler, self.api, ApiRequest(args or {}, body or {}))
        except BitDustError as err:
            return Answer(error=err.message, status=err.http_status)
        if isinstance(result, WithMessage):
            result = result.result
        return Answer(result)

    async def get(self, path: str, **args: str) -> Answer:
        return await self.call("GET", path, args)
