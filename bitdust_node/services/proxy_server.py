"""service_proxy_server: this node routes users behind NAT (machine `proxy_router`), and says so in DHT layer 2."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from bitdust_node.dht.membership import LayerMembership
from bitdust_node.services.base import Service
from bitdust_node.services.entangled_dht import EntangledDhtService
from bitdust_node.services.gateway import GatewayService
from bitdust_node.services.network import NetworkService
from bitdust_node.services.p2p_hookups import P2pHookupsService
from bitdust_node.services.tcp_connections import TcpConnectionsService
from bitdust_node.sizes import size_to_bytes

if TYPE_CHECKING:
    from bitdust_node.proxy.router import ProxyRouter, RouterLimits

ROUTERS_LAYER = 2
LIMIT_SETTINGS = ("routes-limit", "route-rate-limit", "total-rate-limit")


class ProxyServerService(Service):
    name = "proxy_server"
    needs_identity = True

    router: ProxyRouter | None = None

    def start(self) -> defer.Deferred[None]:
        # the room's code is imported when the service starts: a node that leaves it off never loads it
        from bitdust_node.proxy.router import SERVICE_NAME, ProxyRouter

        ctx = self.ctx
        self._entry = ctx.registry.register("proxy_router", "AT_STARTUP")
        gateway = self.need(GatewayService).gateway
        hookups = self.need(P2pHookupsService).hookups
        tcp = self.need(TcpConnectionsService).tcp
        assert gateway is not None and hookups is not None and tcp is not None
        self._entry.set_state("TRANSPORTS?")
        router = ProxyRouter(gateway, ctx.identity, ctx.identity_cache, ctx.reactor, tcp.sessions_of, self._limits(),
                             budget=self.need(NetworkService).budget)
        router.start()
        self._stop_accepting = hookups.accept_requests(SERVICE_NAME, router)
        self._unsubscribe = [ctx.settings.subscribe(f"{self.config_prefix()}/{key}", self._limits_changed)
                             for key in LIMIT_SETTINGS]
        # the users I route: their identities stay in the cache whatever it holds
        self._unsubscribe.append(ctx.identity_cache.pin(lambda: list(router.routes)))
        self.router = router
        self._entry.details = self._summary
        self._membership = LayerMembership(self.need(EntangledDhtService).dht, ROUTERS_LAYER, ctx.reactor)
        self._membership.start()
        self._entry.set_state("LISTEN")
        return defer.succeed(None)

    def _summary(self) -> str:
        router = self.router
        if router is None:
            return ""
        refused = sum(router.refusals.values())
        return (f"routes {len(router.routes)}/{router.limits.routes}, relayed {router.counters['bytes_relayed']}"
                f" bytes ({router.counters['relayed_in']} in, {router.counters['relayed_out']} out), refused {refused}")

    def _limits(self) -> RouterLimits:
        from bitdust_node.proxy.router import RouterLimits

        return RouterLimits(
            routes=int(self.setting("routes-limit")),
            route_rate=float(size_to_bytes(str(self.setting("route-rate-limit")))),
            total_rate=float(size_to_bytes(str(self.setting("total-rate-limit")))),
        )

    def _limits_changed(self, key: str, old: Any, new: Any) -> None:
        if self.router is not None:
            self.router.set_limits(self._limits())

    def stop(self) -> defer.Deferred[None]:
        self._membership.stop()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._stop_accepting()
        if self.router is not None:
            self.router.stop()
        self.router = None
        self._entry.set_state("CLOSED")
        self._entry.unregister()
        return defer.succeed(None)
