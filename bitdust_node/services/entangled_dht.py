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
from bitdust_node.services.base import Service

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
    depends_on = ("udp_datagrams",)

    dht: DhtNode | None = None
    _port: Any = None
    _db: DhtDatabase | None = None
    _entry: Any = None
    _machine: Any = None

    def _config(self) -> DhtConfig:
        return DhtConfig(
            k=self.node.settings.get(PREFIX + "bucket-size"),
            alpha=self.node.settings.get(PREFIX + "parallel-calls"),
            maintenance_interval=float(self.node.settings.get(PREFIX + "maintenance-interval")),
            attached=parse_layers(str(self.node.settings.get(PREFIX + "attached-layers"))),
        )

    def start(self) -> defer.Deferred[None]:
        node = self.node
        try:
            seeds = parse_known_nodes(str(node.settings.get(PREFIX + "known-nodes")))
        except ValueError as exc:
            raise InvalidValue(str(exc)) from None
        protocol = DhtProtocol(node.reactor, rpc_timeout=float(node.settings.get(PREFIX + "rpc-timeout")))
        # the port first: if it is taken, nothing else was opened
        self._port = node.reactor.listenUDP(
            node.settings.get(PREFIX + "udp-port"),
            protocol,
            interface=node.bind_address,
            # Twisted reads 8192 bytes by default; a full part is 46 + 8166 bytes
            maxPacketSize=MAX_DATAGRAM,
        )
        try:
            self._db = DhtDatabase(node.home.joinpath(*DB_PATH))
        except Exception:
            self._port.stopListening()
            self._port = None
            raise
        dht = DhtNode(protocol, node.reactor, self._config(), self._db)
        dht.advertised["stun_port"] = node.settings.get("services/udp-datagrams/udp-port")
        dht.advertised["idurl"] = lambda: getattr(node.my_identity, "idurl", None)
        dht.udp_port = self._port.getHost().port
        dht.start()
        self.dht = dht
        node.dht = dht
        self._entry = node.registry.register("dht_bootstrap", "AT_STARTUP")
        # contacts go to the home as soon as the node joined, not only on the next upkeep round
        core = BootstrapCore(dht, seeds, node.reactor, node.reactor.resolve, on_ready=dht.save_contacts)
        self._machine = BootstrapMachine(core)
        trace(self._machine, self._entry)
        if not seeds.genesis:
            dht.on_lonely = self._machine.lost
        self._machine.start()
        return defer.succeed(None)

    def stop(self) -> defer.Deferred[None]:
        if self._machine is not None:
            self._machine.stop()
        if self._entry is not None:
            self._entry.unregister()
        self._machine = self._entry = None
        if self.dht is not None:
            self.dht.stop()
        self.node.dht = None
        self.dht = None
        port, self._port = self._port, None
        d = defer.maybeDeferred(port.stopListening) if port is not None else defer.succeed(None)

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
            "dropped": dict(self.dht.protocol.dropped),
        }
