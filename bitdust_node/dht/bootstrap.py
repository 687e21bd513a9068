"""Joining the DHT through `known-nodes` seeds, retried with backoff while none answers.

States: AT_STARTUP -> JOINING -> READY, or JOINING -> WAITING -> JOINING ... ; READY -> WAITING
when every contact went silent; JOINING -> NO_SEEDS when there is nobody to ask at all (no seeds
configured, none saved: it says once what to set, instead of retrying for ever); any -> STOPPED.
`genesis`/`root` goes straight to READY (a first node connects nowhere); saved contacts from
an earlier run count as seeds, so a restarted node rejoins without them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import attrs
from automat import TypeMachineBuilder
from twisted.internet import defer
from twisted.logger import Logger, LogLevel

from bitdust_node.dht.protocol import Address
from bitdust_node.net.clock import DelayedCall, TimeSource

log = Logger()

GENESIS_WORDS = frozenset({"genesis", "root"})
NO_SEEDS_REASON = (
    "no DHT seeds configured: set services/entangled-dht/known-nodes to host:port[,host:port...]"
    " of running nodes, or to genesis on the first node of a new network"
)
DEFAULT_PORT = 14441
FIRST_DELAY = 2.0
MAX_DELAY = 60.0


@attrs.frozen
class Seeds:
    genesis: bool
    hosts: tuple[tuple[str, int], ...]


def parse_known_nodes(raw: str) -> Seeds:
    """`host:port` items split by `,` `;` space or newline; `genesis`/`root` = no seeds."""
    parts = raw.replace(",", " ").replace(";", " ").split()
    if any(p.lower() in GENESIS_WORDS for p in parts):
        return Seeds(True, ())
    hosts = []
    for part in parts:
        host, _, port = part.rpartition(":")
        if not host:
            host, port = part, str(DEFAULT_PORT)
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad DHT seed {part!r}: expected host:port")
        hosts.append((host.strip("[]"), int(port)))
    return Seeds(False, tuple(hosts))


class Joiner(Protocol):
    def join(self, seeds: list[Address]) -> defer.Deferred[int]: ...

    def saved_addresses(self) -> list[Address]: ...


class BootstrapInputs(Protocol):
    def start(self) -> None:
        "Begin: READY at once for genesis, else try the seeds."

    def joined(self) -> None:
        "At least one seed answered."

    def nobody_answered(self) -> None:
        "No seed answered: wait, then try again."

    def retry(self) -> None:
        "The backoff delay is over."

    def lost(self) -> None:
        "The routing table emptied: every known node went silent; join again."

    def no_seeds(self) -> None:
        "Neither known-nodes nor the home name any node to ask."

    def stop(self) -> None:
        "The DHT service stops."


@attrs.define
class BootstrapCore:
    joiner: Joiner
    seeds: Seeds
    clock: TimeSource
    resolve: Callable[[str], defer.Deferred[str]]
    on_ready: Callable[[], None] = lambda: None
    delay: float = FIRST_DELAY
    max_delay: float = MAX_DELAY
    attempts: int = 0
    timer: DelayedCall | None = None
    # why the node is not joined, for the DHT status (empty once joined)
    reason: str = ""

    def cancel_timer(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None


@defer.inlineCallbacks
def _addresses(core: BootstrapCore) -> Any:
    """Seed addresses with host names resolved (unresolvable ones are skipped), then saved ones."""
    found: list[Address] = []
    for host, port in core.seeds.hosts:
        try:
            ip = yield core.resolve(host)
        except OSError as exc:  # DNSLookupError is an OSError
            log.emit(
                LogLevel.warn,
                "DHT seed {host} does not resolve: {why}",
                host=host,
                why=str(exc),
            )
            continue
        found.append((ip, port))
    for address in core.joiner.saved_addresses():
        if address not in found:
            found.append(address)
    return found


def _attempt(inputs: BootstrapInputs, core: BootstrapCore) -> None:
    core.attempts += 1

    @defer.inlineCallbacks
    def work() -> Any:
        addresses = yield _addresses(core)
        answered = yield core.joiner.join(addresses) if addresses else defer.succeed(0)
        return answered

    def done(answered: int) -> None:
        if answered:
            inputs.joined()
        else:
            inputs.nobody_answered()

    def failed(failure: Any) -> None:
        log.failure("DHT join attempt failed", failure)
        inputs.nobody_answered()

    work().addCallbacks(done, failed)


builder = TypeMachineBuilder(BootstrapInputs, BootstrapCore)
AT_STARTUP = builder.state("AT_STARTUP")
JOINING = builder.state("JOINING")
WAITING = builder.state("WAITING")
READY = builder.state("READY")
NO_SEEDS = builder.state("NO_SEEDS")
STOPPED = builder.state("STOPPED")


@AT_STARTUP.upon(BootstrapInputs.start).to(JOINING)
def _start(inputs: BootstrapInputs, core: BootstrapCore) -> None:
    if core.seeds.genesis:
        # a genesis node is ready alone; it still greets contacts saved by an earlier run
        inputs.joined()
        if core.joiner.saved_addresses():
            core.joiner.join(core.joiner.saved_addresses()).addErrback(lambda _f: None)
        return
    if not core.seeds.hosts and not core.joiner.saved_addresses():
        inputs.no_seeds()
        return
    _attempt(inputs, core)


@JOINING.upon(BootstrapInputs.no_seeds).to(NO_SEEDS)
def _no_seeds(inputs: BootstrapInputs, core: BootstrapCore) -> None:
    core.reason = NO_SEEDS_REASON
    log.warn(NO_SEEDS_REASON)


@JOINING.upon(BootstrapInputs.joined).to(READY)
def _ready(inputs: BootstrapInputs, core: BootstrapCore) -> None:
    core.delay = FIRST_DELAY
    core.reason = ""
    core.on_ready()


@JOINING.upon(BootstrapInputs.nobody_answered).to(WAITING)
def _wait(inputs: BootstrapInputs, core: BootstrapCore) -> None:
    core.reason = f"no DHT seed answered after {core.attempts} tries; next try in {core.delay:g} s"
    log.info("no DHT seed answered; next try in {delay} s", delay=core.delay)
    core.timer = core.clock.callLater(core.delay, inputs.retry)
    core.delay = min(core.delay * 2, core.max_delay)


@READY.upon(BootstrapInputs.lost).to(WAITING)
def _lost(inputs: BootstrapInputs, core: BootstrapCore) -> None:
    core.reason = "all DHT contacts went silent; joining again"
    log.info("all DHT contacts went silent; joining again in {delay} s", delay=core.delay)
    core.timer = core.clock.callLater(core.delay, inputs.retry)


# losing contacts while already trying (or with nobody to try) changes nothing
for _busy in (JOINING, WAITING, NO_SEEDS):
    _busy.upon(BootstrapInputs.lost).loop().returns(None)


@WAITING.upon(BootstrapInputs.retry).to(JOINING)
def _again(inputs: BootstrapInputs, core: BootstrapCore) -> None:
    core.timer = None
    _attempt(inputs, core)


for _state in (AT_STARTUP, JOINING, WAITING, READY, NO_SEEDS):

    @_state.upon(BootstrapInputs.stop).to(STOPPED)
    def _stop(inputs: BootstrapInputs, core: BootstrapCore) -> None:
        core.cancel_timer()


# a join that completes after stop() is ignored
STOPPED.upon(BootstrapInputs.joined).loop().returns(None)
STOPPED.upon(BootstrapInputs.nobody_answered).loop().returns(None)
STOPPED.upon(BootstrapInputs.lost).loop().returns(None)

BootstrapMachine = builder.build()
