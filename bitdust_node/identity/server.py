"""The identity server's state: accept uploads into the store and expire stale ones (machine `id_server`).

The HTTP resource (`server_http.py`) and the TCP receiver (`server_tcp.py`) feed `IdServer.receive`.

    AT_STARTUP --start--> LISTEN  (expire now, then sweep every SWEEP_INTERVAL)
    LISTEN --sweep--> LISTEN      (remove identities untouched for expire-days)
    LISTEN --stop--> CLOSED       (sweeping stops; CLOSED --start--> LISTEN again)
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs
from automat import TypeMachineBuilder
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from bitdust_node.identity.acceptance import IdentityRefused, check_upload
from bitdust_node.identity.server_store import IdentityStore, charged
from bitdust_node.net.clock import TimeSource
from bitdust_node.wire.identity_xml import Identity

log = Logger()
DAY = 86_400.0
SWEEP_INTERVAL = 3_600.0
# what the node's receive budget counts an identity upload still being read under (both fronts)
UPLOAD_BUDGET_KIND = "identity_upload"
# services/identity-server/max-hosted-size's default: 65,536 identities of up to 4 KB
MAX_HOSTED_BYTES = 256 * 1024 * 1024


class IdServerInputs(Protocol):
    def start(self) -> None:
        "The ports are open: serve and start the expiry sweep."

    def sweep(self) -> list[str]:
        "Remove identities untouched for too long; the removed names."

    def stop(self) -> None:
        "The ports are closing."


@attrs.define
class IdServerCore:
    store: IdentityStore
    clock: TimeSource
    expire_seconds: float
    sweep_interval: float = SWEEP_INTERVAL
    _loop: LoopingCall | None = None

    def start_sweeping(self, sweep: Any) -> None:
        self._loop = LoopingCall(sweep)
        self._loop.clock = self.clock
        self._loop.start(self.sweep_interval, now=False)

    def stop_sweeping(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def expire(self) -> list[str]:
        deadline = self.clock.seconds() - self.expire_seconds
        names = self.store.untouched_since(deadline)
        for name in names:
            self.store.remove(name)
            log.info("identity {name} expired", name=name)
        return names


_builder = TypeMachineBuilder(IdServerInputs, IdServerCore)
AT_STARTUP = _builder.state("AT_STARTUP")
LISTEN = _builder.state("LISTEN")
CLOSED = _builder.state("CLOSED")


@AT_STARTUP.upon(IdServerInputs.start).to(LISTEN)
def _begin(inputs: IdServerInputs, core: IdServerCore) -> None:
    core.expire()  # a server that was down for long must not serve stale files until the first sweep
    core.start_sweeping(inputs.sweep)


@LISTEN.upon(IdServerInputs.sweep).loop()
def _expire(inputs: IdServerInputs, core: IdServerCore) -> list[str]:
    return core.expire()


@LISTEN.upon(IdServerInputs.stop).to(CLOSED)
def _end(inputs: IdServerInputs, core: IdServerCore) -> None:
    core.stop_sweeping()


AT_STARTUP.upon(IdServerInputs.sweep).loop().returns([])
AT_STARTUP.upon(IdServerInputs.stop).to(CLOSED).returns(None)
CLOSED.upon(IdServerInputs.sweep).loop().returns([])
CLOSED.upon(IdServerInputs.stop).loop().returns(None)
LISTEN.upon(IdServerInputs.start).loop().returns(None)
CLOSED.upon(IdServerInputs.start).to(LISTEN)(_begin)

IdServerMachine = _builder.build()


@attrs.define
class IdServer:
    """What the HTTP and TCP fronts talk to: the host it answers for, the store, the machine."""

    host: str
    store: IdentityStore
    clock: TimeSource
    expire_days: float
    sweep_interval: float = SWEEP_INTERVAL
    # the hosted files' bytes (also held in memory to serve them): anyone may upload, so a new name or a larger
    # file that would pass it is refused
    max_hosted_bytes: int = MAX_HOSTED_BYTES
    core: IdServerCore = attrs.field(init=False)
    machine: IdServerInputs = attrs.field(init=False)
    uploads_accepted: int = 0
    uploads_refused: int = 0
    refused_full: int = 0

    def __attrs_post_init__(self) -> None:
        self.core = IdServerCore(self.store, self.clock, self.expire_days * DAY, self.sweep_interval)
        self.machine = IdServerMachine(self.core)

    def receive(self, data: bytes) -> Identity:
        """Validate and store one uploaded identity file; IdentityRefused if it may not be stored."""
        try:
            identity = check_upload(data, self.host, self.store.get)
            self._check_room(identity, data)
        except IdentityRefused as err:
            self.uploads_refused += 1
            log.debug("identity refused: {why}", why=err.message)
            raise
        self.store.put(identity, data, self.clock.seconds())
        self.uploads_accepted += 1
        return identity

    def _check_room(self, identity: Identity, data: bytes) -> None:
        """A new name, or a file growing past its slot, that would take the store past the cap is refused: each
        name is counted at least a slot, so a hosted user's new revisions within it are never refused."""
        stored = self.store.get(identity.name)
        growth = charged(len(data)) - (charged(len(stored.xml)) if stored is not None else 0)
        if growth > 0 and self.store.charged() + growth > self.max_hosted_bytes:
            self.refused_full += 1
            raise IdentityRefused(f"this server is full: it hosts {self.store.size()} bytes of identities")
