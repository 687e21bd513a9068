"""The node: one process, one reactor. Loads the home, builds the context and the service graph,
serves the REST API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.logger import Logger

from bitdust_node import home as home_files
from bitdust_node.api.rest import RestAPI
from bitdust_node.api.routes import ApiContext
from bitdust_node.context import NodeContext
from bitdust_node.fsm import Registry
from bitdust_node.gui.front import LazyGui
from bitdust_node.identity.cache import open_cache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.net.clock import INodeReactor
from bitdust_node.services.catalog import discover
from bitdust_node.services.graph import ServiceGraph
from bitdust_node.settings import Settings

log = Logger()


class Node(MultiService):
    """One BitDust node. Services and endpoints get its NodeContext, never the node itself."""

    def __init__(
        self,
        home: Path,
        reactor: INodeReactor | None = None,
        on_stop_request: Callable[[], object] | None = None,
    ) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = cast(INodeReactor, global_reactor)  # the epoll reactor provides them all
        self.home = Path(home)
        self.reactor: INodeReactor = reactor
        self.settings = Settings.load(self.home)
        self.registry = Registry()
        self.lock = home_files.HomeLock(self.home)
        self.api_secret = ""
        self.ctx: NodeContext | None = None
        self.graph: ServiceGraph | None = None
        # IListeningPort; zope interfaces do not type-check as protocols, hence Any
        self.rest_port: Any = None
        self._on_stop_request = on_stop_request
        self._stopping: defer.Deferred[None] | None = None

    @property
    def bind_address(self) -> str:
        return str(self.settings.get("services/network/bind-address"))

    @property
    def identity(self) -> MyIdentityHolder:
        assert self.ctx is not None, "the node is not prepared"
        return self.ctx.identity

    def prepare(self) -> None:
        """Everything but the sockets: the secret, the identity, the context, the service graph."""
        home_files.ensure_home(self.home)
        (self.home / home_files.LOG_DIR).mkdir(exist_ok=True)
        self.api_secret = home_files.ensure_api_secret(self.home)
        self.ctx = NodeContext(
            home=self.home,
            reactor=self.reactor,
            settings=self.settings,
            registry=self.registry,
            identity=MyIdentityHolder.load(self.home),
            identity_cache=open_cache(self.home, self.reactor),
        )
        self.graph = ServiceGraph(self.ctx, discover())

    def startService(self) -> None:
        home_files.ensure_home(self.home)
        self.lock.acquire()
        try:
            self.prepare()
            assert self.graph is not None and self.ctx is not None
            graph, identities = self.graph, self.ctx.identity_cache
            self._listen_rest()
        except BaseException:
            self.lock.release()
            raise
        super().startService()
        log.info("node started in {home}; REST API on {where}", home=str(self.home), where=self.rest_url())
        graph.reconcile()
        # once the services have pinned their peers, the identity cache may forget what it read from the disk
        graph.settled().addCallback(lambda _: identities.arm())

    def _listen_rest(self) -> None:
        assert self.ctx is not None and self.graph is not None
        host = self.settings.get("interface/api/rest-http-host")
        port = self.settings.get("interface/api/rest-http-port")
        api = ApiContext(self.ctx, self.graph, self.rest_url, self.request_stop)
        # the web interface on `/` and `/gui/`, beside the API on its address and port
        rest = RestAPI(api, self.api_secret, front=lambda check_secret: LazyGui(api, check_secret))
        site: Any = rest.site()  # twisted.web's Site misses listenTCP's generic factory type
        self.rest_port = self.reactor.listenTCP(port, site, interface=host)

    def rest_url(self) -> str:
        if self.rest_port is None:
            return ""
        address = self.rest_port.getHost()
        return f"http://{address.host}:{address.port}"

    def stopService(self) -> defer.Deferred[None]:
        if self._stopping is None:
            self._stopping = defer.ensureDeferred(self._stop())
        return self._stopping

    async def _stop(self) -> None:
        if self.graph is not None:
            await self.graph.shutdown()
        if self.rest_port is not None:
            await self.rest_port.stopListening()
            self.rest_port = None
        await defer.maybeDeferred(super().stopService)
        self.lock.release()
        log.info("node stopped")

    def request_stop(self) -> None:
        """Asked over REST: stop soon, after the reply has gone out."""
        action = self._on_stop_request or self.stopService
        self.reactor.callLater(0.2, action)
