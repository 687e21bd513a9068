"""Space back from customers gone silent (official `customer_patrol`): a customer not heard from for
`services/customer-patrol/customer-idle-days` (14) loses its space: forgotten, its folder removed, its quota
freed, logged. If it comes back it is answered as an unknown customer is (the official refusals) and may ask
for space again like a new one.

Any packet a customer sends me counts as hearing from it (its pieces, retrievals, listings, deletes, identity
pings, service requests). When it was last heard is kept in `HOME/supplier/last_seen.json`: a restart does not
make anyone look idle, nor new; a customer with no date yet is counted from the first patrol that sees it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from twisted.internet import defer, threads
from twisted.logger import Logger

from bitdust_node.crypto.keys import write_secret_file
from bitdust_node.storage.customers import Customers
from bitdust_node.storage.interfaces import Clock, Worker
from bitdust_node.transport.interfaces import Inbound, PacketNetwork

log = Logger()
DAY = 86400.0
LAST_SEEN_FILE = "last_seen.json"
PATROL_INTERVAL = 3600.0
# what a customer sends a supplier
HEARD_COMMANDS = ("Data", "Retrieve", "ListFiles", "DeleteFile", "DeleteBackup", "Identity", "RequestService")


class Dropper(Protocol):
    """What the patrol asks of the supplier (Supplier.drop_customer)."""

    customers: Customers

    def drop_customer(self, idurl: str) -> defer.Deferred[None] | None: ...


class CustomerPatrol:
    def __init__(
        self, network: PacketNetwork, supplier: Dropper, folder: Path, clock: Clock, idle_days: Callable[[], float],
        worker: Worker = threads.deferToThread, interval: float = PATROL_INTERVAL,
    ) -> None:
        self.network = network
        self.supplier = supplier
        self.path = folder / LAST_SEEN_FILE
        self.clock = clock
        self.idle_days = idle_days
        self.interval = interval
        self._worker = worker
        self._lock = defer.DeferredLock()
        self.last_seen: dict[str, float] = self._load()
        self.reclaimed = 0
        self._unregister: list[Callable[[], None]] = []
        self._next: Any = None

    def _load(self) -> dict[str, float]:
        try:
            doc = json.loads(self.path.read_text())
            return {str(k): float(v) for k, v in doc.items()} if isinstance(doc, dict) else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError) as err:
            log.error("{path} unreadable ({why}): customers are counted from now", path=str(self.path), why=str(err))
            return {}

    def start(self) -> None:
        self._unregister = [self.network.register(command, self.heard) for command in HEARD_COMMANDS]
        self._next = self.clock.callLater(self.interval, self._due)

    def stop(self) -> defer.Deferred[None]:
        for unregister in self._unregister:
            unregister()
        self._unregister = []
        if self._next is not None and self._next.active():
            self._next.cancel()
        return self.save()

    def heard(self, inbound: Inbound) -> None:
        idurl = inbound.packet.creator_id
        if self.supplier.customers.get(idurl) is not None:
            self.last_seen[idurl] = self.clock.seconds()

    def _due(self) -> None:
        self.patrol()
        self._next = self.clock.callLater(self.interval, self._due)

    def patrol(self) -> list[str]:
        """Customers silent past the idle days dropped; their IDURLs."""
        now = self.clock.seconds()
        idle = self.idle_days() * DAY
        dropped = []
        for idurl in list(self.supplier.customers.by_idurl):
            seen = self.last_seen.setdefault(idurl, now)
            if now - seen >= idle:
                log.info("customer {idurl} silent for {days:.1f} days: its space is freed", idurl=idurl,
                         days=(now - seen) / DAY)
                self.supplier.drop_customer(idurl)
                del self.last_seen[idurl]
                dropped.append(idurl)
        self.reclaimed += len(dropped)
        for idurl in [i for i in self.last_seen if self.supplier.customers.get(i) is None]:
            del self.last_seen[idurl]  # cancelled or dropped otherwise: nothing to watch
        self.save()
        return dropped

    def save(self) -> defer.Deferred[None]:
        text = json.dumps(self.last_seen, sort_keys=True).encode()
        return self._lock.run(self._worker, write_secret_file, self.path, text)
