"""service_gateway: signed packets in and out, verified before any service sees them."""

from __future__ import annotations

from twisted.internet import defer

from bitdust_node.services.base import Service
from bitdust_node.services.network import NetworkService
from bitdust_node.transport.gateway import Gateway


class GatewayService(Service):
    name = "gateway"
    needs_identity = True

    gateway: Gateway | None = None

    def start(self) -> defer.Deferred[None]:
        self.gateway = Gateway(self.ctx.reactor, self.ctx.identity, self.ctx.identity_cache,
                               budget=self.need(NetworkService).budget)
        return defer.succeed(None)

    def stop(self) -> defer.Deferred[None]:
        self.gateway = None
        return defer.succeed(None)

    def status(self) -> dict[str, object]:
        return self.gateway.status() if self.gateway is not None else {}
