"""Being a member of a role's DHT layer (2 for routers, 3 for suppliers) while the role runs: the layer
attached and my own id looked up in it, asked again with backoff until another member is known."""

from __future__ import annotations

from typing import Any, Protocol

from twisted.logger import Logger

from bitdust_node.net.clock import DelayedCall, TimeSource

log = Logger()
FIRST_DELAY = 1.0
MAX_DELAY = 60.0


class LayeredDht(Protocol):
    def join_layer(self, layer_id: int) -> Any: ...

    def leave_layer(self, layer_id: int) -> None: ...

    def contact_count(self, layer_id: int = 0) -> int: ...


class LayerMembership:
    def __init__(self, dht: LayeredDht | None, layer_id: int, clock: TimeSource) -> None:
        self.dht = dht
        self.layer_id = layer_id
        self.clock = clock
        self._delay = FIRST_DELAY
        self._timer: DelayedCall | None = None
        self._joined = False

    def start(self) -> None:
        self._joined = True
        self._join()

    def _join(self) -> None:
        """Ask to be known in the layer; again in 1, 2, 4 ... 60 s while no other member is known to me."""
        self._timer = None
        if self.dht is None or not self._joined:
            return
        joining = self.dht.join_layer(self.layer_id)
        joining.addErrback(lambda f: log.info("joining DHT layer {layer}: {why}", layer=self.layer_id,
                                              why=f.getErrorMessage()))
        if not self.dht.contact_count(self.layer_id):
            self._timer = self.clock.callLater(self._delay, self._join)
            self._delay = min(self._delay * 2, MAX_DELAY)

    def stop(self) -> None:
        self._joined = False
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self.dht is not None:
            self.dht.leave_layer(self.layer_id)
