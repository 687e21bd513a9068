"""service_p2p_hookups: first contact (Identity ping and Ack) and peers' requests for my services."""

from __future__ import annotations

from twisted.internet import defer

from bitdust_node.services.base import Service
from bitdust_node.services.gateway import GatewayService
from bitdust_node.services.identity_propagate import IdentityPropagateService
from bitdust_node.transport.announce import IdentityAnnouncer
from bitdust_node.transport.hookups import Hookups


class P2pHookupsService(Service):
    name = "p2p_hookups"
    needs_identity = True

    hookups: Hookups | None = None

    def start(self) -> defer.Deferred[None]:
        gateway = self.need(GatewayService).gateway
        assert gateway is not None
        self.hookups = Hookups(gateway, self.ctx.identity, self.ctx.identity_cache, self.ctx.reactor, self._state_of)
        # when my identity moves, the peers I talk to hear it from here
        propagate = self.need(IdentityPropagateService)
        announcer = IdentityAnnouncer(gateway, self.ctx.identity, self.ctx.identity_cache, self.ctx.reactor,
                                      propagate.peers.peers)
        self._unannounce = propagate.rotator.add_announcer(announcer.announce)
        return defer.succeed(None)

    def _state_of(self, service_name: str) -> str | None:
        return self.service_state(service_name.removeprefix("service_"))

    def stop(self) -> defer.Deferred[None]:
        self._unannounce()
        if self.hookups is not None:
            self.hookups.close()
        self.hookups = None
        return defer.succeed(None)

    def status(self) -> dict[str, object]:
        # peers' service requests whose handler failed (each answered with the official Fail)
        return {"failed_requests": self.hookups.failed_requests} if self.hookups is not None else {}
