"""service_private_messages: Message packets to and from users, with their history in the home."""

from __future__ import annotations

from twisted.internet import defer

from bitdust_node.messages.history import MessageHistory
from bitdust_node.messages.messenger import Messenger
from bitdust_node.services.base import Service
from bitdust_node.services.gateway import GatewayService
from bitdust_node.services.identity_propagate import IdentityPropagateService
from bitdust_node.services.p2p_hookups import P2pHookupsService

HISTORY_PATH = ("messages", "history.db")
# the most recent correspondents told of a move of my identity
CORRESPONDENTS_TOLD = 100


class PrivateMessagesService(Service):
    name = "private_messages"
    needs_identity = True

    messenger: Messenger | None = None

    def start(self) -> defer.Deferred[None]:
        gateway = self.need(GatewayService).gateway
        hookups = self.need(P2pHookupsService).hookups
        assert gateway is not None and hookups is not None
        self._history = MessageHistory(self.ctx.home.joinpath(*HISTORY_PATH))
        self.messenger = Messenger(gateway, hookups, self.ctx.identity, self.ctx.identity_cache, self._history,
                                   self.ctx.reactor)
        # those I wrote to or heard from lately hear of my identity's moves
        history = self._history
        self._unlist = self.need(IdentityPropagateService).peers.add(
            "correspondents", lambda: history.peers(CORRESPONDENTS_TOLD))
        return defer.succeed(None)

    def stop(self) -> defer.Deferred[None]:
        self._unlist()
        if self.messenger is not None:
            self.messenger.close()
        self.messenger = None
        self._history.close()
        return defer.succeed(None)

    def status(self) -> dict[str, object]:
        if self.messenger is None:
            return {}
        # what the history holds, and what it let go to stay within its bound
        history = self.messenger.history
        return {**self.messenger.counters, "history_bytes": history.held_bytes(), "history_dropped": history.dropped}
