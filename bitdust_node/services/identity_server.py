"""service_identity_server: host identities over HTTP (web-port) and the TCP receiver (tcp-port)."""

from __future__ import annotations

from twisted.internet import defer

from bitdust_node.errors import InvalidInput
from bitdust_node.fsm import trace
from bitdust_node.home import open_for_web_server
from bitdust_node.identity.known_servers import parse_known_servers
from bitdust_node.identity.server import IdServer
from bitdust_node.identity.server_http_fast import make_site
from bitdust_node.identity.server_store import IdentityStore
from bitdust_node.identity.server_tcp import make_receiver
from bitdust_node.net.addresses import peer_facing_address
from bitdust_node.net.deadline import DeadlineFactory
from bitdust_node.net.ports import PortSet
from bitdust_node.services.base import Service
from bitdust_node.services.network import NetworkService
from bitdust_node.settings import Settings
from bitdust_node.sizes import size_to_bytes

PREFIX = "services/identity-server/"
# enough queued connections for bursts of uploads from many clients
LISTEN_BACKLOG = 1024
STORE_DIR = "identityserver"


def server_host(settings: Settings) -> str:
    """The host name this server answers for: the setting, else the address it listens on."""
    host = str(settings.get(PREFIX + "host")).strip()
    return host or peer_facing_address(str(settings.get("services/network/bind-address")))


def other_servers(settings: Settings, host: str) -> tuple[str, ...]:
    """The other identity servers the index page links to, from known-servers."""
    try:
        known = parse_known_servers(str(settings.get("services/identity-propagate/known-servers")))
    except InvalidInput:
        return ()
    return tuple(f"{s.host}:{s.web_port}" for s in known if s.host != host)


class IdentityServerService(Service):
    name = "identity_server"

    idserver: IdServer | None = None
    _fronts: tuple[DeadlineFactory, ...] = ()

    def start(self) -> defer.Deferred[None]:
        ctx = self.ctx
        store = IdentityStore(ctx.home / STORE_DIR)
        store.load()
        # Apache or nginx may serve GET /<name>.xml from the store folder itself (conf/)
        open_for_web_server(ctx.home, store.root)
        idserver = IdServer(
            host=server_host(ctx.settings),
            store=store,
            clock=ctx.reactor,
            expire_days=self.setting("expire-days"),
            max_hosted_bytes=size_to_bytes(str(self.setting("max-hosted-size"))),
        )
        self._entry = ctx.registry.register("id_server", "AT_STARTUP")
        trace(idserver.machine, self._entry)
        others = other_servers(ctx.settings, idserver.host)
        self._ports = PortSet(ctx.reactor)
        try:
            # uploads being read hold their bytes against the node's one receive budget
            budget = self.need(NetworkService).budget
            site = make_site(idserver, ctx.reactor, others, budget=budget)
            self._ports.listen_tcp(self.setting("web-port"), site, ctx.bind_address, LISTEN_BACKLOG)
            receiver = make_receiver(idserver, ctx.reactor, budget=budget)
            self._ports.listen_tcp(self.setting("tcp-port"), receiver, ctx.bind_address, LISTEN_BACKLOG)
        except Exception:
            self._ports.close_all()
            self._entry.unregister()
            raise
        self.idserver = idserver
        self._fronts = (site, receiver)
        idserver.machine.start()
        self.log.info(
            "identity server for {host} holds {count} identities",
            host=idserver.host,
            count=len(store),
        )
        return defer.succeed(None)

    def stop(self) -> defer.Deferred[None]:
        if self.idserver is not None:
            self.idserver.machine.stop()
            self.idserver = None
        self._entry.unregister()
        return self._ports.close_all()

    def status(self) -> dict[str, object]:
        if self.idserver is None:
            return {}
        return {
            "host": self.idserver.host,
            "identities": len(self.idserver.store),
            "hosted_bytes": self.idserver.store.size(),
            "refused_full": self.idserver.refused_full,
            "uploads_accepted": self.idserver.uploads_accepted,
            "uploads_refused": self.idserver.uploads_refused,
            # connections closed at once: too many in all, or from one address
            "connections_refused": sum(sum(front.caps.refused.values()) for front in self._fronts if front.caps),
        }
