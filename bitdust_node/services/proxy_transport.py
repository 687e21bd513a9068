"""service_proxy_transport: reach and be reached through a proxy router (machine `proxy_receiver`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet import defer

from bitdust_node.services.base import Service
from bitdust_node.services.gateway import GatewayService
from bitdust_node.services.identity_propagate import IdentityPropagateService
from bitdust_node.services.nodes_lookup import NodesLookupService
from bitdust_node.services.tcp_connections import TcpConnectionsService

if TYPE_CHECKING:
    from bitdust_node.proxy.client import ProxyClient


def parse_routers(raw: str) -> list[str]:
    """`preferred-routers`: IDURLs split by newline, comma, semicolon or space (as official nodes split them)."""
    return [part for part in raw.replace(",", " ").replace(";", " ").split() if part]


class ProxyTransportService(Service):
    name = "proxy_transport"
    needs_identity = True

    client: ProxyClient | None = None

    def start(self) -> defer.Deferred[None]:
        # the room's code is imported when the service starts: a node that leaves it off never loads it
        from bitdust_node.proxy.client import ProxyClient

        ctx = self.ctx
        gateway = self.need(GatewayService).gateway
        tcp = self.need(TcpConnectionsService).tcp
        lookup = self.need(NodesLookupService).lookup
        propagate = self.need(IdentityPropagateService)
        assert gateway is not None and tcp is not None and lookup is not None
        # a router is given my identity with my own contacts: a routed one left by an earlier run goes
        propagate.use_contacts(None)
        self._entry = ctx.registry.register("proxy_receiver", "AT_STARTUP")
        self.client = ProxyClient(gateway, ctx.identity, ctx.identity_cache, ctx.reactor, lookup, tcp, propagate,
                                  self._preferred, self._entry)
        self._entry.details = self._summary
        self.client.start()
        # my router hears of my identity's moves first: the others are reached through it
        client = self.client
        self._unlist = propagate.peers.add(
            "router", lambda: [client.router.sources[0]] if client.router is not None else [], first=True)
        return defer.succeed(None)

    def _summary(self) -> str:
        client = self.client
        if client is None or client.router is None:
            return "no router"
        counters = client.counters
        return (f"router {client.router.global_id}, relayed {counters['relayed_out']} out, {counters['relayed_in']} in,"
                f" {counters['relay_failed']} failed, {len(client.choice.history)} routers left")

    def _preferred(self) -> list[str]:
        return parse_routers(str(self.setting("preferred-routers")))

    def stop(self) -> defer.Deferred[None]:
        self._unlist()
        client, self.client = self.client, None
        done = client.stop() if client is not None else defer.succeed(None)

        def forget(_: object) -> None:
            self._entry.unregister()

        return done.addBoth(forget)
