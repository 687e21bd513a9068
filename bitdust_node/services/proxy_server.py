"""service_proxy_server: this node routes users behind NAT (machine `proxy_router`), and says so in DHT layer 2."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from bitdust_node.net.clock import DelayedCall
from bitdust_node.proxy.router import SERVICE_NAME, ProxyRouter, RouterLimits
from bitdust_node.services.base import Service
from bitdust_node.services.entangled_dht import EntangledDhtService
from bitdust_node.services.gateway import GatewayService
from bitdust_node.services.p2p_hookups import P2pHookupsService
from bitdust_node.services.tcp_connections import TcpConnectionsService
from bitdust_node.sizes import size_to_bytes

ROUTERS_LAYER = 2
# how often the router asks to be known in layer 2 until it knows a member of it: 1, 2, 4 ... 60 s
LAYER_JOIN_FIRST = 1.0
LAYER_JOIN_MAX = 60.0
LIMIT_SETTINGS = ("routes-limit", "route-rate-limit", "total-rate-limit")


class ProxyServerService(Service):
    name = "proxy_server"
    needs_identity = True

    router: ProxyRouter | None = None

    def start(self) -> defer.Deferred[None]:
        ctx = self.ctx
        self._entry = ctx.registry.register("proxy_router", "AT_STARTUP")
        gateway = self.need(GatewayService).gateway
        hookups = self.need(P2pHookupsService).hookups
        tcp = self.need(TcpConnectionsService).tcp
        assert gateway is not None and hookups is not None and tcp is not None
        self._entry.set_state("TRANSPORTS?")
        router = ProxyRouter(gateway, ctx.identity, ctx.identity_cache, ctx.reactor, tcp.sessions_of, self._limits())
        router.start()
        self._stop_accepting = hookups.accept_requests(SERVICE_NAME, router)
        self._unsubscribe = [ctx.settings.subscribe(f"{self.config_prefix()}/{key}", self._limits_changed)
                             for key in LIMIT_SETTINGS]
        self.router = router
        self._entry.details = self._summary
        self._dht = self.need(EntangledDhtService).dht
        self._join_delay = LAYER_JOIN_FIRST
        self._joiner: DelayedCall | None = None
        self._join_layer()
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
        return RouterLimits(
            routes=int(self.setting("routes-limit")),
            route_rate=float(size_to_bytes(str(self.setting("route-rate-limit")))),
            total_rate=float(size_to_bytes(str(self.setting("total-rate-limit")))),
        )

    def _limits_changed(self, key: str, old: Any, new: Any) -> None:
        if self.router is not None:
            self.router.set_limits(self._limits())

    def _join_layer(self) -> None:
        """Be known in layer 2; asked again (1, 2, 4 ... 60 s) until a member of it is known to me."""
        self._joiner = None
        dht = self._dht
        if dht is None or self.router is None:
            return
        joining = dht.join_layer(ROUTERS_LAYER)
        joining.addErrback(lambda f: self.log.info("joining DHT layer 2: {why}", why=f.getErrorMessage()))
        if not dht.contact_count(ROUTERS_LAYER):
            self._joiner = self.ctx.reactor.callLater(self._join_delay, self._join_layer)
            self._join_delay = min(self._join_delay * 2, LAYER_JOIN_MAX)

    def stop(self) -> defer.Deferred[None]:
        if self._joiner is not None and self._joiner.active():
            self._joiner.cancel()
        self._joiner = None
        if self._dht is not None:
            self._dht.leave_layer(ROUTERS_LAYER)
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._stop_accepting()
        if self.router is not None:
            self.router.stop()
        self.router = None
        self._entry.set_state("CLOSED")
        self._entry.unregister()
        return defer.succeed(None)

    def status(self) -> dict[str, object]:
        return self.router.status() if self.router is not None else {}
