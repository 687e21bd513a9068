"""service_identity_server: host identities over HTTP (web-port) and the TCP receiver (tcp-port)."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from bitdust_node.errors import InvalidInput
from bitdust_node.fsm import trace
from bitdust_node.identity.known_servers import parse_known_servers
from bitdust_node.identity.server import IdServer
from bitdust_node.identity.server_http import make_site
from bitdust_node.identity.server_store import IdentityStore
from bitdust_node.identity.server_tcp import make_receiver
from bitdust_node.services.base import Service
from bitdust_node.services.network import local_addresses

PREFIX = "services/identity-server/"
# enough queued connections for bursts of uploads from many clients
LISTEN_BACKLOG = 1024
STORE_DIR = "identityserver"


def server_host(node: Any) -> str:
    """The host name this server answers for: the setting, else the address it listens on."""
    host = str(node.settings.get(PREFIX + "host")).strip()
    if host:
        return host
    bind = node.bind_address
    if bind not in ("0.0.0.0", "::", ""):
        return bind
    addresses = local_addresses()
    return addresses[0] if addresses else "127.0.0.1"


def other_servers(node: Any, host: str) -> tuple[str, ...]:
    """The other identity servers the index page links to, from known-servers."""
    try:
        known = parse_known_servers(str(node.settings.get("services/identity-propagate/known-servers")))
    except InvalidInput:
        return ()
    return tuple(f"{s.host}:{s.web_port}" for s in known if s.host != host)


class IdentityServerService(Service):
    name = "identity_server"
    depends_on = ("network",)

    idserver: IdServer | None = None
    _ports: list[Any]

    def start(self) -> defer.Deferred[None]:
        node = self.node
        settings = node.settings
        store = IdentityStore(node.home / STORE_DIR)
        store.load()
        idserver = IdServer(
            host=server_host(node),
            store=store,
            clock=node.reactor,
            expire_days=settings.get(PREFIX + "expire-days"),
        )
        self._entry = node.registry.register("id_server", "AT_STARTUP")
        trace(idserver.machine, self._entry)
        others = other_servers(node, idserver.host)
        self._ports = []
        try:
            self._ports.append(
                node.reactor.listenTCP(
                    settings.get(PREFIX + "web-port"),
                    make_site(idserver, node.reactor, others),
                    backlog=LISTEN_BACKLOG,
                    interface=node.bind_address,
                )
            )
            self._ports.append(
                node.reactor.listenTCP(
                    settings.get(PREFIX + "tcp-port"),
                    make_receiver(idserver, node.reactor),
                    backlog=LISTEN_BACKLOG,
                    interface=node.bind_address,
                )
            )
        except Exception:
            self._close_ports()
            self._entry.unregister()
            raise
        self.idserver = idserver
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
        done = self._close_ports()
        self._entry.unregister()
        return done

    def _close_ports(self) -> defer.Deferred[None]:
        ports, self._ports = self._ports, []
        closing = [defer.maybeDeferred(port.stopListening) for port in ports]
        return defer.gatherResults(closing).addCallback(lambda _: None)

    def status(self) -> dict[str, object]:
        if self.idserver is None:
            return {}
        return {
            "host": self.idserver.host,
            "identities": len(self.idserver.store),
            "uploads_accepted": self.idserver.uploads_accepted,
            "uploads_refused": self.idserver.uploads_refused,
        }
