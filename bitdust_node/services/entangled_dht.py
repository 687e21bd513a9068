"""service_entangled_dht: the DHT on `services/entangled-dht/udp-port`, joined through
`known-nodes`, with contacts and values kept in the home (dht/dht.db)."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from bitdust_node.dht.bootstrap import (
    BootstrapCore,
    BootstrapMachine,
    parse_known_nodes,
)
from bitdust_node.dht.errors import InvalidValue
from bitdust_node.dht.node import DhtConfig, DhtNode
from bitdust_node.dht.persist import DhtDatabase
from bitdust_node.dht.protocol import DhtProtocol
from bitdust_node.fsm import trace
from bitdust_node.identity.my_identity import MyIdentity
from bitdust_node.net.ports import PortSet
from bitdust_node.services.base import Service
from bitdust_node.services.network import NetworkService
from bitdust_node.services.udp_datagrams import UdpDatagramsService

PREFIX = "services/entangled-dht/"
DB_PATH = ("dht", "dht.db")
MAX_DATAGRAM = 65535


def parse_layers(raw: str) -> frozenset[int]:
    """`2,3` -> {0, 2, 3}: the base layer is always attached."""
    layers = {0}
    for part in raw.replace(";", ",").replace(" ", ",").split(","):
        if not part:
            continue
        if not part.isdigit() or int(part) > 255:
            raise InvalidValue(f"{PREFIX}attached-layers: {part!r} is not a layer number")
        layers.add(int(part))
    return frozenset(layers)


class EntangledDhtService(Service):
    name = "entangled_dht"

    dht: DhtNode | None = None
    _db: DhtDatabase | None = None
    _entry: Any = None
    _machine: Any = None

    def _config(self) -> DhtConfig:
        return DhtConfig(
            k=int(self.setting("bucket-size")),
            alpha=int(self.setting("parallel-calls")),
            maintenance_interval=float(self.setting("maintenance-interval")),
            attached=parse_layers(str(self.setting("attached-layers"))),
        )

    def start(self) -> defer.Deferred[None]:
        ctx = self.ctx
        try:
            seeds = parse_known_nodes(str(self.setting("known-nodes")))
        except ValueError as exc:
            raise InvalidValue(str(exc)) from None
        # every setting read before anything is opened: a start that fails on one leaves no port for its retry
        config = self._config()
        protocol = DhtProtocol(ctx.reactor, rpc_timeout=float(self.setting("rpc-timeout")),
                               budget=self.need(NetworkService).budget)
        self._ports = PortSet(ctx.reactor)
        # the port first: if it is taken, nothing else was opened
        # Twisted reads 8192 bytes by default; a full part is 46 + 8166 bytes
        port = self._ports.listen_udp(int(self.setting("udp-port")), protocol, ctx.bind_address, MAX_DATAGRAM)
        try:
            self._db = DhtDatabase(ctx.home.joinpath(*DB_PATH))
        except Exception:
            self._ports.close_all()
            raise
        dht = DhtNode(protocol, ctx.reactor, config, self._db)
        dht.advertised["stun_port"] = self.need(UdpDatagramsService).udp_port()
        dht.advertised["idurl"] = _idurl(ctx.identity.current)
        # the `idurl` answer follows my identity (created, restored or rotated while the DHT runs)
        self._unsubscribe = ctx.identity.subscribe(lambda me: dht.advertised.update(idurl=_idurl(me)))
        dht.udp_port = port.getHost().port
        dht.start()
        self.dht = dht
        self._entry = ctx.registry.register("dht_bootstrap", "AT_STARTUP")
        # contacts go to the home as soon as the node joined, not only on the next upkeep round
        core = BootstrapCore(dht, seeds, ctx.reactor, ctx.reactor.resolve, on_ready=dht.save_contacts)
        self._bootstrap = core
        dht.join_state = lambda: {"state": self._entry.state if self._entry else "STOPPED", "reason": core.reason}
        self._machine = BootstrapMachine(core)
        trace(self._machine, self._entry)
        if not seeds.genesis:
            dht.on_lonely = self._machine.lost
        self._machine.start()
        return defer.succeed(None)

    def stop(self) -> defer.Deferred[None]:
        self._unsubscribe()
        if self._machine is not None:
            self._machine.stop()
        if self._entry is not None:
            self._entry.unregister()
        self._machine = self._entry = None
        if self.dht is not None:
            self.dht.stop()
        self.dht = None
        d = self._ports.close_all()

        def close(_: object) -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        d.addBoth(close)
        return d

    def status(self) -> dict[str, object]:
        if self.dht is None:
            return {}
        return {
            "udp_port": self.dht.udp_port,
            "contacts": self.dht.contact_count(),
            "bootstrap": self._entry.state if self._entry is not None else None,
            "bootstrap_reason": self._bootstrap.reason,
            "dropped": dict(self.dht.protocol.dropped),
            # what the layers hold for others, against the cap that stops a flood of stores
            "stored_bytes": self.dht.layer_set.room.used,
            "stored_bytes_max": self.dht.layer_set.room.max_bytes,
        }


def _idurl(me: MyIdentity | None) -> str | None:
    return me.idurl if me is not None else None
