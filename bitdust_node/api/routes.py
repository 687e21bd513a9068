"""The table of REST endpoints: modules in `api/endpoints/` add to it with `@endpoint`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from bitdust_node.context import NodeContext
from bitdust_node.errors import ServiceOff
from bitdust_node.services.base import Service
from bitdust_node.services.graph import ServiceGraph

S = TypeVar("S", bound=Service)


@attrs.frozen
class ApiRequest:
    """What a handler sees: query arguments (last value wins) and the parsed JSON body."""

    args: dict[str, str]
    body: dict[str, Any]


@attrs.frozen
class ApiContext:
    """What a handler is handed: the node's shared objects, its services, and the two things only the node does."""

    ctx: NodeContext
    graph: ServiceGraph
    rest_url: Callable[[], str]
    request_stop: Callable[[], object]

    def running(self, cls: type[S]) -> S:
        """The service object while it is ON; ServiceOff (503) otherwise."""
        found = self.graph.service(cls.name)
        if not isinstance(found, cls):
            raise ServiceOff(f"{cls.machine_name()} is not started")
        return found


@attrs.frozen
class TextReply:
    """A handler's reply that is not JSON (the Prometheus text of /metrics)."""

    body: bytes
    content_type: bytes


@attrs.frozen
class WithMessage:
    """A handler's result with the envelope's `message` lines, as official replies carry them."""

    result: Any
    message: list[str]


# A handler returns the `result` of the envelope (or a Deferred of it) or raises a BitDustError.
Handler = Callable[[ApiContext, ApiRequest], Any]


@attrs.frozen
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    # the `service_<name>` that must be ON, or None
    service: str | None = None
    # keys of the JSON body or query, for the OpenAPI document
    params: tuple[str, ...] = ()
    # replies with no `result` key (like /process/health/v1)
    bare: bool = False
    # replies with the handler's value as the whole body, no envelope (like /openapi.json)
    raw: bool = False


ENDPOINTS: list[Endpoint] = []


def endpoint(
    method: str,
    path: str,
    summary: str,
    service: str | None = None,
    params: tuple[str, ...] = (),
    bare: bool = False,
    raw: bool = False,
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ENDPOINTS.append(Endpoint(method.upper(), path, handler, summary, service, params, bare, raw))
        return handler

    return register
