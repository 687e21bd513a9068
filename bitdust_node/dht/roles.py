"""Finding nodes that play a role: random members of a DHT layer (2 routers, 3 suppliers, ...), asked for
their IDURL, their identities fetched and checked. The proxy client and the customer use it."""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet import defer
from twisted.logger import Logger

from bitdust_node.errors import BitDustError
from bitdust_node.identity.cache import IdentityCache
from bitdust_node.wire.identity_xml import Identity

log = Logger()
# a lookup asks more nodes than wanted: some are gone, some answer nothing, one may be me
OVERSAMPLE = 3
MAX_WANTED = 50


class RoleLookup(Protocol):
    def random_values(self, key: str, layer_id: int = 0, count: int = 1) -> defer.Deferred[Any]: ...


class NodesLookup:
    def __init__(self, dht: RoleLookup, cache: IdentityCache, my_idurl: Any) -> None:
        self.dht = dht
        self.cache = cache
        self._my_idurl = my_idurl

    async def random_nodes(self, layer_id: int, count: int = 1) -> list[Identity]:
        """Up to `count` other nodes of the layer, each with its identity fetched and verified."""
        count = max(1, min(count, MAX_WANTED))
        found = await self.dht.random_values("idurl", layer_id, count * OVERSAMPLE)
        mine = self._my_idurl()
        idurls = list(dict.fromkeys(v for v in found if isinstance(v, str) and v and v != mine))
        identities: list[Identity] = []
        for idurl in idurls:
            try:
                identities.append(await self.cache.fetch(idurl))
            except (BitDustError, ValueError) as err:
                log.info("node {idurl} found in layer {layer} is not reachable: {why}", idurl=idurl,
                         layer=layer_id, why=str(err))
            if len(identities) >= count:
                break
        return identities
