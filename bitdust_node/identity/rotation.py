"""Moving my identity off a dead identity server (the official `id_rotator`), and who hears of the move.

Machine `id_rotator`: AT_STARTUP -> ID_SERVERS? (GET my identity at each of its sources) -> READY (the next
check in `health-check-interval-seconds`) -> ID_SERVERS? ... When the FIRST source (my IDURL) has failed two
checks in a row, or an operator asks, -> MY_ID_ROTATE: the sources that still serve me keep their order, known
servers that answer and hold no identity of my name (or hold mine) are added up to `min-servers` (never past
`max-servers`), so a live server comes first; a new revision (above any served) is signed, POSTed to each new
source and confirmed by a GET, adopted, and sent as an Identity packet to the peers I talk to. -> READY.
Any -> CLOSED on stop; each waiting state holds what it waits for, so leaving it cancels that.

Better than official: two servers are enough (a source already held is kept, not required to be a new one),
known servers are told apart by host and port, a rotation that finds no server waits for the next check
instead of looping, and known-servers is read at every rotation.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, cast

import attrs
from automat import TypeMachineBuilder
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from bitdust_node.errors import BitDustError, InvalidInput
from bitdust_node.fsm import MachineEntry, trace
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.identity.known_servers import KnownServer
from bitdust_node.identity.my_identity import MyIdentity
from bitdust_node.identity.signing import verify_identity
from bitdust_node.net.clock import DelayedCall, TimeSource
from bitdust_node.net.http import CappedHttp, Unreachable
from bitdust_node.wire import identity_xml
from bitdust_node.wire.identity_xml import IdUrl, parse_idurl

log = Logger()
# a first source that failed this many checks in a row is given up (as the issue and official nodes do)
FAILED_CHECKS_TO_ROTATE = 2
# peers told of a move at most; the rest learn it when they next fetch my old IDURL
MAX_PEERS_TOLD = 500


class RotationFailed(BitDustError):
    """My identity could not be moved: no other server took it."""

    http_status = 503
    exit_code = 1


# -- what the checks find


@attrs.frozen
class SourceHealth:
    """One source of my identity at one check: does it serve my identity (my key, valid), which revision."""

    idurl: str
    reachable: bool
    revision: int | None = None
    detail: str = ""
    # the server answers but holds no identity of my name (it lost it): published again before it counts as dead
    missing: bool = False


@attrs.frozen
class CandidateAnswer:
    """A known server asked to take my identity: usable when it holds none of my name, or holds mine."""

    idurl: str
    usable: bool
    revision: int | None = None
    detail: str = ""


@attrs.frozen
class RotationSettings:
    enabled: bool
    interval: float
    min_servers: int
    max_servers: int
    known: tuple[KnownServer, ...]


@attrs.frozen
class Rotation:
    """A move done: from which IDURL to which, at which revision, which servers confirmed it."""

    old_idurl: str
    new_idurl: str
    old_sources: tuple[str, ...]
    sources: tuple[str, ...]
    revision: int
    confirmed: tuple[str, ...]
    reason: str
    at: float


class SourceProbe(Protocol):
    """Asks identity servers over HTTP (a fake in tests)."""

    def check(self, idurl: str, me: MyIdentity) -> defer.Deferred[SourceHealth]:
        """GET my identity at `idurl`."""

    def probe(self, idurl: IdUrl, me: MyIdentity) -> defer.Deferred[CandidateAnswer]:
        """May this server hold my identity at `idurl`?"""


class Publisher(Protocol):
    async def publish(self, idurls: list[IdUrl], xml: bytes) -> list[IdUrl]:
        """POST to each, confirm each by a GET; those that confirmed."""


Announce = Callable[[MyIdentity], "defer.Deferred[Any]"]


# -- the decisions, pure


def candidate_servers(known: Iterable[KnownServer], sources: Sequence[str], name: str) -> list[IdUrl]:
    """Known servers (in the order given) that hold no source of mine, told apart by host and port."""
    taken = {(u.host, u.port) for u in map(parse_idurl, sources)}
    found: list[IdUrl] = []
    for server in known:
        idurl = server.idurl(name)
        if (idurl.host, idurl.port) not in taken and idurl not in found:
            found.append(idurl)
    return found


def new_sources(
    checks: Sequence[SourceHealth], candidates: Sequence[CandidateAnswer], leave: Iterable[str],
    min_servers: int, max_servers: int,
) -> tuple[str, ...]:
    """My sources after a move: those that still serve me, in their order (but those I leave), then usable
    candidates in their order up to `min-servers`; never more than `max-servers`. A live one comes first."""
    leaving = set(leave)
    most = max(1, max_servers)
    wanted = min(max(1, min_servers), most)
    chosen = [c.idurl for c in checks if c.reachable and c.idurl not in leaving][:most]
    for candidate in candidates:
        if len(chosen) >= wanted:
            break
        if candidate.usable and candidate.idurl not in chosen and candidate.idurl not in leaving:
            chosen.append(candidate.idurl)
    return tuple(chosen)


def next_revision(local: int, checks: Iterable[SourceHealth], candidates: Iterable[CandidateAnswer]) -> int:
    """Above my own revision and above any a server serves (a server may hold one I lost)."""
    served = [c.revision for c in checks if c.revision is not None]
    served += [c.revision for c in candidates if c.revision is not None]
    return max([local, *served]) + 1


@attrs.define
class FirstSourceWatch:
    """Counts the checks in a row whose first source failed; says when to give it up."""

    needed: int = FAILED_CHECKS_TO_ROTATE
    failures: int = 0
    first: str = ""

    def observe(self, checks: Sequence[SourceHealth]) -> bool:
        """Take one check's result; True when the first source has failed `needed` checks in a row."""
        if not checks:
            return False
        head = checks[0]
        if head.idurl != self.first:
            self.first, self.failures = head.idurl, 0  # a new IDURL starts a new count
        self.failures = 0 if head.reachable else self.failures + 1
        return self.failures >= self.needed


# -- who hears of a move


class PeerDirectory:
    """The peers I talk to, from each part that has some (suppliers, customers, my router, correspondents);
    those marked first (my router) are told before the others."""

    def __init__(self) -> None:
        self._providers: dict[str, tuple[Callable[[], Iterable[str]], bool]] = {}

    def add(self, name: str, provider: Callable[[], Iterable[str]], first: bool = False) -> Callable[[], None]:
        self._providers[name] = (provider, first)

        def remove() -> None:
            if self._providers.get(name, (None, False))[0] is provider:
                del self._providers[name]

        return remove

    def peers(self) -> tuple[list[str], list[str]]:
        """(first, others), each IDURL once, at most MAX_PEERS_TOLD in all."""
        groups: tuple[list[str], list[str]] = ([], [])
        seen: set[str] = set()
        for first in (True, False):
            for name, (provider, is_first) in list(self._providers.items()):
                if is_first != first:
                    continue
                try:
                    found = list(provider())
                except Exception:
                    log.failure("peers of {name} not listed", name=name)
                    continue
                for idurl in found:
                    if idurl and idurl not in seen and len(seen) < MAX_PEERS_TOLD:
                        seen.add(idurl)
                        groups[0 if first else 1].append(idurl)
        return groups

    def every(self) -> set[str]:
        """Every IDURL any part names, uncapped (the identity cache keeps these users)."""
        found: set[str] = set()
        for name, (provider, _first) in list(self._providers.items()):
            try:
                found.update(idurl for idurl in provider() if idurl)
            except Exception:
                log.failure("peers of {name} not listed", name=name)
        return found


# -- the HTTP shell


@attrs.define
class HttpSourceProbe:
    """Asks identity servers as official clients do: GET the identity; GET `/` then `/<name>.xml` of a
    candidate (404 = free)."""

    http: CappedHttp

    def check(self, idurl: str, me: MyIdentity) -> defer.Deferred[SourceHealth]:
        return defer.ensureDeferred(self._check(idurl, me))

    async def _check(self, idurl: str, me: MyIdentity) -> SourceHealth:
        try:
            reply = await self.http.get(idurl)
        except Unreachable as err:
            return SourceHealth(idurl, False, None, f"unreachable: {err}")
        if reply.status == 404:
            return SourceHealth(idurl, False, None, "HTTP 404: my identity is not there", missing=True)
        if reply.status != 200:
            return SourceHealth(idurl, False, None, f"HTTP {reply.status}")
        return _served(idurl, reply.body, me)

    def probe(self, idurl: IdUrl, me: MyIdentity) -> defer.Deferred[CandidateAnswer]:
        return defer.ensureDeferred(self._probe(idurl, me))

    async def _probe(self, idurl: IdUrl, me: MyIdentity) -> CandidateAnswer:
        root = f"http://{idurl.host}/" if idurl.port == 80 else f"http://{idurl.host}:{idurl.port}/"
        try:
            alive = await self.http.get(root)
            if alive.status != 200:
                return CandidateAnswer(idurl.url, False, None, f"HTTP {alive.status} at {root}")
            reply = await self.http.get(idurl.url)
        except Unreachable as err:
            return CandidateAnswer(idurl.url, False, None, f"unreachable: {err}")
        if reply.status == 404:
            return CandidateAnswer(idurl.url, True, None, "free")
        if reply.status != 200:
            return CandidateAnswer(idurl.url, False, None, f"HTTP {reply.status}")
        served = _served(idurl.url, reply.body, me)
        if served.reachable:
            return CandidateAnswer(idurl.url, True, served.revision, "holds my identity")
        return CandidateAnswer(idurl.url, False, None, "name taken: " + served.detail)


def _served(idurl: str, body: bytes, me: MyIdentity) -> SourceHealth:
    """What a server's copy at `idurl` says: mine (with its revision), or why not."""
    try:
        served = identity_xml.parse(body)
    except identity_xml.IdentityFormatError as err:
        return SourceHealth(idurl, False, None, f"serves no identity: {err}")
    if served.publickey != me.identity.publickey:
        return SourceHealth(idurl, False, None, "serves another key's identity")
    if not verify_identity(served):
        return SourceHealth(idurl, False, None, "serves a copy with a bad signature")
    return SourceHealth(idurl, True, served.revision, "")


# -- the machine


@attrs.frozen
class RotationRequest:
    """Why to rotate and what to leave; `answer` fires with the Rotation (None: nothing to do) or fails."""

    reason: str
    leave: tuple[str, ...] = ()
    manual: bool = False
    # the check that found the first source dead, if it was one
    checks: tuple[SourceHealth, ...] | None = None
    answer: defer.Deferred[Rotation | None] = attrs.field(factory=defer.Deferred, eq=False)


class RotatorInputs(Protocol):
    def start(self) -> None:
        "The service starts: check now."

    def tick(self) -> None:
        "Time for the next check."

    def healthy(self, checks: tuple[SourceHealth, ...]) -> None:
        "A check ended without giving the first source up."

    def lost(self, request: RotationRequest) -> None:
        "A check gave the first source up."

    def rotate(self, request: RotationRequest) -> None:
        "An operator asks for a move."

    def finished(self, outcome: Rotation | Failure | None) -> None:
        "A rotation ended: done, failed, or found nothing to do."

    def stop(self) -> None:
        "The service stops."


@attrs.define(eq=False)
class _Waiting:
    timer: DelayedCall


@attrs.define(eq=False)
class _Work:
    """What a waiting state waits for; `left` once the machine moved on (whatever the work does then is moot)."""

    work: defer.Deferred[Any] = attrs.field(factory=defer.Deferred)
    left: bool = False

    def leave(self) -> None:
        self.left = True
        self.work.cancel()


@attrs.define(eq=False)
class _Checking(_Work):
    pass


@attrs.define(eq=False)
class _Rotating(_Work):
    answers: list[defer.Deferred[Rotation | None]] = attrs.field(factory=list)


@attrs.define(eq=False)
class RotatorCore:
    me: MyIdentityHolder
    probe: SourceProbe
    publisher: Publisher
    clock: TimeSource
    settings: Callable[[], RotationSettings]
    watch: FirstSourceWatch = attrs.field(factory=FirstSourceWatch)
    announcers: list[Announce] = attrs.field(factory=list)
    last_checks: tuple[SourceHealth, ...] = ()
    last_checked_at: float | None = None
    last_error: str = ""
    rotations: collections.deque[Rotation] = attrs.field(factory=lambda: collections.deque(maxlen=10))
    counters: collections.Counter[str] = attrs.field(factory=collections.Counter)

    # -- checks

    async def check_sources(self) -> tuple[SourceHealth, ...]:
        """GET my identity at each of its sources, all at once (each GET has its timeout); a server that lost
        my identity is given it again, and counts as serving it when it takes it."""
        me = self.me.require()
        asked = [self.probe.check(u, me) for u in me.identity.sources]
        checks: list[SourceHealth] = list(await defer.gatherResults(asked, consumeErrors=True))
        missing = [parse_idurl(c.idurl) for c in checks if c.missing]
        if missing:
            taken = {u.url for u in await self.publisher.publish(missing, me.xml)}
            self.counters["published_again"] += len(taken)
            checks = [SourceHealth(c.idurl, True, me.identity.revision, "published again") if c.idurl in taken else c
                      for c in checks]
        return tuple(checks)

    async def check_and_judge(self) -> tuple[tuple[SourceHealth, ...], bool]:
        """One periodic check: the findings, and whether the first source is to be given up now."""
        checks = await self.check_sources()
        self.last_checks, self.last_checked_at = checks, self.clock.seconds()
        self.counters["checks"] += 1
        give_up = self.watch.observe(checks)
        if checks and not checks[0].reachable:
            self.counters["first_source_failed"] += 1
            log.warn("my first identity source {idurl} failed {n} check(s) in a row: {why}", idurl=checks[0].idurl,
                     n=self.watch.failures, why=checks[0].detail)
        if give_up and not self.settings().enabled:
            log.warn("my IDURL {idurl} is dead but automatic-rotate-enabled is off: staying", idurl=checks[0].idurl)
            return checks, False
        return checks, give_up

    # -- rotation

    async def rotate(self, request: RotationRequest) -> Rotation | None:
        """Move my identity as `request` says; None when the first source answers again (nothing to do)."""
        me = self.me.require()
        settings = self.settings()
        checks = request.checks if request.checks is not None else await self.check_sources()
        if not request.manual and checks and checks[0].reachable:
            log.info("my first identity source {idurl} answers again: no rotation", idurl=checks[0].idurl)
            return None
        leave = set(request.leave) | {c.idurl for c in checks if not c.reachable}
        sources = me.identity.sources
        wanted = min(max(1, settings.min_servers), max(1, settings.max_servers))
        alive = [c for c in checks if c.reachable and c.idurl not in leave]
        answers: list[CandidateAnswer] = []
        if len(alive) < wanted:
            candidates = candidate_servers(settings.known, sources, me.name)
            answers = list(await defer.gatherResults([self.probe.probe(c, me) for c in candidates], consumeErrors=True))
        chosen = new_sources(checks, answers, leave, settings.min_servers, settings.max_servers)
        if not chosen:
            tried = ", ".join(f"{a.idurl} ({a.detail})" for a in answers) or "none known"
            raise RotationFailed(f"no identity server takes my identity: sources {', '.join(sorted(leave))} left, "
                                 f"candidates: {tried}")
        if chosen == sources:
            return None
        if len(chosen) < wanted:
            log.warn("only {n} identity server(s) take my identity, {wanted} wanted", n=len(chosen), wanted=wanted)
        revision = next_revision(me.identity.revision, checks, [a for a in answers if a.idurl in chosen])
        moved = me.moved_to(chosen, revision)
        confirmed = await self.publisher.publish([parse_idurl(u) for u in chosen], moved.xml)
        confirmed_urls = tuple(u.url for u in confirmed)
        if chosen[0] not in confirmed_urls:
            raise RotationFailed(f"{chosen[0]} did not take my identity revision {revision}")
        if self.me.current is not me:
            # another revision (new contacts) was adopted meanwhile: this one is stale, the next check retries
            raise RotationFailed("my identity changed while it was being moved; trying again at the next check")
        self.me.adopt(moved)
        done = Rotation(me.idurl, moved.idurl, sources, chosen, revision, confirmed_urls, request.reason,
                        self.clock.seconds())
        self.rotations.append(done)
        self.counters["rotations"] += 1
        self.watch.first, self.watch.failures = moved.idurl, 0
        log.warn("my identity moved from {old} to {new}: revision {rev}, sources {sources}", old=done.old_idurl,
                 new=done.new_idurl, rev=revision, sources=list(chosen))
        self._announce(moved)
        return done

    def _announce(self, moved: MyIdentity) -> None:
        """Tell the peers I talk to; each announcer bounds its own waits, and nothing waits for them."""
        for announce in list(self.announcers):
            told = defer.maybeDeferred(announce, moved)
            told.addErrback(lambda f: log.failure("peers not told of my move", f))


builder = TypeMachineBuilder(RotatorInputs, RotatorCore)
AT_STARTUP = builder.state("AT_STARTUP")
CLOSED = builder.state("CLOSED")


def _wait(inputs: RotatorInputs, core: RotatorCore, *_args: Any) -> _Waiting:
    return _Waiting(core.clock.callLater(core.settings().interval, inputs.tick))


def _check(inputs: RotatorInputs, core: RotatorCore) -> _Checking:
    checking = _Checking(defer.ensureDeferred(core.check_and_judge()))

    def judged(result: tuple[tuple[SourceHealth, ...], bool]) -> None:
        if checking.left:
            return
        checks, give_up = result
        if give_up:
            request = RotationRequest(f"{checks[0].idurl} failed {core.watch.failures} checks in a row", checks=checks)
            request.answer.addErrback(lambda _f: None)  # nobody asked: a failure is logged by the machine
            inputs.lost(request)
        else:
            inputs.healthy(checks)

    def broken(failure: Failure) -> None:
        if checking.left or _cancelled(failure):
            return
        core.last_error = failure.getErrorMessage()
        log.failure("identity sources not checked", failure)
        inputs.healthy(())

    checking.work.addCallbacks(judged, broken)
    return checking


def _cancelled(failure: Failure) -> bool:
    """A wait the machine cancelled on leaving its state (alone, or as the first error of several waits)."""
    if isinstance(failure.value, defer.FirstError):
        failure = failure.value.subFailure
    return failure.check(defer.CancelledError) is not None


def _rotate(inputs: RotatorInputs, core: RotatorCore, request: RotationRequest) -> _Rotating:
    rotating = _Rotating(defer.ensureDeferred(core.rotate(request)), answers=[request.answer])

    def ended(outcome: Rotation | Failure | None) -> None:
        if rotating.left or (isinstance(outcome, Failure) and _cancelled(outcome)):
            return
        inputs.finished(outcome)

    rotating.work.addBoth(ended)
    return rotating


# READY is entered after a check and after a rotation, with what each ended with: its timer ignores that
READY = builder.state("READY", cast("Callable[..., _Waiting]", _wait))
CHECKING = builder.state("ID_SERVERS?", _check)
ROTATING = builder.state("MY_ID_ROTATE", _rotate)


@AT_STARTUP.upon(RotatorInputs.start).to(CHECKING)
def _started(inputs: RotatorInputs, core: RotatorCore) -> None:
    pass


@READY.upon(RotatorInputs.tick).to(CHECKING)
def _ticked(inputs: RotatorInputs, core: RotatorCore, waiting: _Waiting) -> None:
    pass


@CHECKING.upon(RotatorInputs.healthy).to(READY)
def _healthy(inputs: RotatorInputs, core: RotatorCore, checking: _Checking, checks: tuple[SourceHealth, ...]) -> None:
    pass


@CHECKING.upon(RotatorInputs.lost).to(ROTATING)
def _lost(inputs: RotatorInputs, core: RotatorCore, checking: _Checking, request: RotationRequest) -> None:
    pass


@READY.upon(RotatorInputs.rotate).to(ROTATING)
def _asked_while_waiting(inputs: RotatorInputs, core: RotatorCore, waiting: _Waiting, request: RotationRequest) -> None:
    if waiting.timer.active():
        waiting.timer.cancel()


@CHECKING.upon(RotatorInputs.rotate).to(ROTATING)
def _asked_while_checking(
    inputs: RotatorInputs, core: RotatorCore, checking: _Checking, request: RotationRequest,
) -> None:
    checking.leave()


@ROTATING.upon(RotatorInputs.rotate).loop()
def _asked_while_rotating(
    inputs: RotatorInputs, core: RotatorCore, rotating: _Rotating, request: RotationRequest,
) -> None:
    rotating.answers.append(request.answer)  # the move under way answers it too


@ROTATING.upon(RotatorInputs.finished).to(READY)
def _finished(
    inputs: RotatorInputs, core: RotatorCore, rotating: _Rotating, outcome: Rotation | Failure | None,
) -> None:
    if isinstance(outcome, Failure):
        core.last_error = outcome.getErrorMessage()
        core.counters["rotations_failed"] += 1
        log.warn("identity rotation failed: {why}", why=core.last_error)
    for answer in rotating.answers:
        if answer.called:
            continue
        if isinstance(outcome, Failure):
            answer.errback(outcome)
        else:
            answer.callback(outcome)


@READY.upon(RotatorInputs.stop).to(CLOSED)
def _stop_waiting(inputs: RotatorInputs, core: RotatorCore, waiting: _Waiting) -> None:
    if waiting.timer.active():
        waiting.timer.cancel()


@CHECKING.upon(RotatorInputs.stop).to(CLOSED)
def _stop_checking(inputs: RotatorInputs, core: RotatorCore, checking: _Checking) -> None:
    checking.leave()


@ROTATING.upon(RotatorInputs.stop).to(CLOSED)
def _stop_rotating(inputs: RotatorInputs, core: RotatorCore, rotating: _Rotating) -> None:
    rotating.leave()
    for answer in rotating.answers:
        if not answer.called:
            answer.errback(RotationFailed("the identity service stopped"))


@AT_STARTUP.upon(RotatorInputs.stop).to(CLOSED)
def _stop_unstarted(inputs: RotatorInputs, core: RotatorCore) -> None:
    pass


@AT_STARTUP.upon(RotatorInputs.rotate).loop()
@CLOSED.upon(RotatorInputs.rotate).loop()
def _asked_while_off(inputs: RotatorInputs, core: RotatorCore, request: RotationRequest) -> None:
    request.answer.errback(RotationFailed("identity rotation is not running"))


@CLOSED.upon(RotatorInputs.stop).loop()
def _stopped_again(inputs: RotatorInputs, core: RotatorCore) -> None:
    pass


RotatorMachine = builder.build()


class Rotator:
    """The `id_rotator` machine with its core: what the service starts, stops and asks."""

    def __init__(
        self, me: MyIdentityHolder, probe: SourceProbe, publisher: Publisher, clock: TimeSource,
        settings: Callable[[], RotationSettings], entry: MachineEntry,
    ) -> None:
        self.core = RotatorCore(me, probe, publisher, clock, settings)
        self.entry = entry
        self.machine: RotatorInputs = RotatorMachine(self.core)
        trace(self.machine, entry)

    @property
    def state(self) -> str:
        return self.entry.state

    def start(self) -> None:
        self.machine.start()

    def stop(self) -> None:
        self.machine.stop()

    def add_announcer(self, announce: Announce) -> Callable[[], None]:
        """Call `announce(new)` after every move (it tells peers); the call returned removes it."""
        self.core.announcers.append(announce)

        def remove() -> None:
            if announce in self.core.announcers:
                self.core.announcers.remove(announce)

        return remove

    def rotate_now(self, leave: str = "") -> defer.Deferred[Rotation | None]:
        """Move my identity now, off `leave` (`host[:port]` of a source; my first source when empty)."""
        me = self.me_sources()
        if leave:
            gone = tuple(s for s in me if _on_server(s, leave))
            if not gone:
                return defer.fail(InvalidInput(f"no source of my identity is on {leave}"))
        else:
            gone = me[:1]
        request = RotationRequest(f"asked to leave {', '.join(gone)}", gone, manual=True)
        self.machine.rotate(request)
        return request.answer

    def me_sources(self) -> tuple[str, ...]:
        return self.core.me.require().identity.sources

    def check_now(self) -> defer.Deferred[tuple[SourceHealth, ...]]:
        """Ask every source now (for a person): counts toward nothing."""
        return defer.ensureDeferred(self.core.check_sources())


def _on_server(idurl: str, server: str) -> bool:
    host, _, port = server.strip().lower().partition(":")
    parsed = parse_idurl(idurl)
    return parsed.host == host and (not port or (port.isdigit() and int(port) == parsed.port))
