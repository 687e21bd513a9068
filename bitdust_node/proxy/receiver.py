"""The machine `proxy_receiver` (PROTOCOL-P2P.md 4.2): finding a router, renting a route, keeping it.

AT_STARTUP -> FIND_NODE? (a router to ask) -> ACK? (my identity to it, Ack awaited) -> SERVICE? (RequestService
`service_proxy_server`) -> LISTEN (my identity republished with the router's contacts; a keep-alive every 10 s,
the router checked when my connection to it closes). A router that refuses, times out or dies is set aside and
the machine goes back to FIND_NODE?; with no router to be had it waits in OFFLINE (2 s, 4 s, ... up to 60 s,
from 2 s again after a route) with my own contacts published. Any -> CLOSED on stop.

Each waiting state holds what it waits for (the search, the request, the retry timer, the keep-alive and the
check), as Twisted's `application/_client_service.py` does, so leaving the state cancels it and no late result
reaches a state that no longer waits for it. Each also holds where my packets go meanwhile: they wait in
FIND_NODE?, ACK? and SERVICE? (those to the router being asked go directly), go through the router in LISTEN,
and go directly in OFFLINE and CLOSED. The core knows its collaborators only by the small interfaces below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import attrs
from automat import TypeMachineBuilder
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from bitdust_node.net.clock import DelayedCall, TimeSource
from bitdust_node.wire.identity_xml import Identity

log = Logger()
T = TypeVar("T")


class RouterFinder(Protocol):
    def find(self) -> defer.Deferred[Identity]:
        """The next router to ask; fails when none can be had now."""

    def set_aside(self, router: Identity, why: str) -> None:
        """Do not ask this router again for a while."""


class RouterAsker(Protocol):
    def introduce(self, router: Identity) -> defer.Deferred[None]:
        """My identity to the router; fires on its Ack, fails otherwise."""

    def request_route(self, router: Identity) -> defer.Deferred[None]:
        """Ask it to route me; fires when it accepted, fails otherwise."""

    def check(self, router: Identity) -> defer.Deferred[None]:
        """Fires when the router still answers, fails when it does not."""

    def cancel_route(self, router: Identity) -> defer.Deferred[None]:
        """Tell it I leave; fires when answered or not."""


class RouterLine(Protocol):
    """My connection to the router."""

    def keep_alive(self, router: Identity) -> bool:
        """Send a keep-alive on it; False when none is open."""

    def watch_closed(self, router: Identity, closed: Callable[[], None]) -> Callable[[], None]:
        """Call `closed` when my last open connection to it closes; the call returned stops watching."""


class PacketCarrier(Protocol):
    """Where my outgoing packets go while a state lasts; each call returned ends that."""

    def hold(self, router: Identity | None) -> Callable[[], None]:
        """They wait for a route (those to `router`, the one being asked, go directly)."""

    def relay(self, router: Identity, lost: Callable[[str], None]) -> Callable[[], None]:
        """They, and those waiting, go through the router; `lost` when it says it forgot my route."""


class ContactsPublisher(Protocol):
    def use_contacts(self, contacts: tuple[str, ...] | None) -> defer.Deferred[Any]:
        """Publish these contacts in place of mine (None: mine again)."""


class ReceiverInputs(Protocol):
    def start(self) -> None:
        "The proxy transport starts."

    def found(self, router: Identity) -> None:
        "A router to ask was chosen."

    def none_found(self, why: str) -> None:
        "No router can be had now."

    def retry(self) -> None:
        "The offline wait is over."

    def acked(self, router: Identity) -> None:
        "The router acknowledged my identity."

    def accepted(self, router: Identity) -> None:
        "The router accepted to route me."

    def refused(self) -> None:
        "The router did not answer, refused, or could not be reached (it was set aside)."

    def lost(self) -> None:
        "The router of my route is gone (it was set aside)."

    def stop(self) -> defer.Deferred[None]:
        "The proxy transport stops; fires when the router was told I leave."


@attrs.define
class ReceiverTimings:
    keep_alive_interval: float = 10.0
    offline_first: float = 2.0
    offline_max: float = 60.0


@attrs.define(eq=False)
class ReceiverCore:
    finder: RouterFinder
    asker: RouterAsker
    line: RouterLine
    carrier: PacketCarrier
    publisher: ContactsPublisher
    clock: TimeSource
    timings: ReceiverTimings = attrs.field(factory=ReceiverTimings)
    # the next OFFLINE wait
    offline_delay: float = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.offline_delay = self.timings.offline_first

    def give_up_on(self, router: Identity, then: Callable[[], None]) -> Callable[[str], None]:
        """What to do when `router` fails: set it aside (before the next search starts), then move on."""

        def failed(why: str) -> None:
            self.finder.set_aside(router, why)
            then()

        return failed


class StateLeft(defer.CancelledError):
    """What a state waited for was cancelled because the machine left the state."""


def _owned(waited: defer.Deferred[T]) -> defer.Deferred[T]:
    """`waited` as a state waits for it: cancelling fails it at once and whatever `waited` does afterwards is
    dropped, since an operation may swallow its cancellation (an HTTP fetch that falls back to a cached copy) and
    still fire with a result that must not reach a state that was left."""

    def cancel(owned: defer.Deferred[T]) -> None:
        owned.errback(StateLeft())
        waited.cancel()

    owned: defer.Deferred[T] = defer.Deferred(cancel)

    def fired(result: T) -> None:
        if not owned.called:
            owned.callback(result)

    def failed(failure: Failure) -> None:
        if not owned.called:
            owned.errback(failure)

    waited.addCallbacks(fired, failed)
    return owned


def _unless_left(react: Callable[[str], None]) -> Callable[[Failure], None]:
    """An errback for what a state waits for: when the state was left nobody is told (any other failure, a
    cancellation from elsewhere included, is one the machine must hear of, or it would wait for ever)."""

    def failed(failure: Failure) -> None:
        if failure.check(StateLeft) is None:
            react(failure.getErrorMessage())

    return failed


# -- what the waiting states hold


class Waiting:
    """What a state waits for; leaving the state cancels it."""

    def cancel(self) -> None:
        raise NotImplementedError


@attrs.define(eq=False)
class Finding(Waiting):
    search: defer.Deferred[Identity]
    # ends the hold of my packets
    release: Callable[[], None]

    def cancel(self) -> None:
        self.search.cancel()
        self.release()


@attrs.define(eq=False)
class Offline(Waiting):
    retry: DelayedCall

    def cancel(self) -> None:
        if self.retry.active():
            self.retry.cancel()


@attrs.define(eq=False)
class Asking(Waiting):
    router: Identity
    answer: defer.Deferred[None]
    release: Callable[[], None]

    def cancel(self) -> None:
        self.answer.cancel()
        self.release()


@attrs.define(eq=False)
class Listening(Waiting):
    """LISTEN: a keep-alive every interval, and a check of the router when my connection to it is gone."""

    core: ReceiverCore
    router: Identity
    lost: Callable[[str], None]
    keeper: DelayedCall | None = None
    checking: defer.Deferred[None] | None = None
    release: Callable[[], None] = lambda: None
    unwatch: Callable[[], None] = lambda: None

    def start(self) -> None:
        self.release = self.core.carrier.relay(self.router, self.lost)
        closed = "the connection to the router closed"
        self.unwatch = self.core.line.watch_closed(self.router, lambda: self.check(closed))
        self._keep_alive_later()

    def _keep_alive_later(self) -> None:
        self.keeper = self.core.clock.callLater(self.core.timings.keep_alive_interval, self._keep_alive)

    def _keep_alive(self) -> None:
        if not self.core.line.keep_alive(self.router):
            self.check("no connection to the router")
        self._keep_alive_later()

    def check(self, why: str) -> None:
        """Dial the router again with my identity: an answer keeps the route, none means it is lost."""
        if self.checking is not None:
            return
        checking = self.checking = _owned(self.core.asker.check(self.router))

        def done(_: object) -> None:
            if self.checking is checking:
                self.checking = None

        checking.addErrback(_unless_left(lambda error: self.lost(f"{why}; {error}")))
        checking.addBoth(done)

    def cancel(self) -> None:
        if self.keeper is not None and self.keeper.active():
            self.keeper.cancel()
        if self.checking is not None:
            self.checking.cancel()
        self.unwatch()
        self.release()


# -- the machine


builder = TypeMachineBuilder(ReceiverInputs, ReceiverCore)


def _find(inputs: ReceiverInputs, core: ReceiverCore) -> Finding:
    release = core.carrier.hold(None)
    search = _owned(core.finder.find())
    search.addCallbacks(inputs.found, _unless_left(inputs.none_found))
    return Finding(search, release)


def _wait_offline(inputs: ReceiverInputs, core: ReceiverCore, why: str) -> Offline:
    log.info("no proxy router now ({why}); looking again in {delay:g} s", why=why, delay=core.offline_delay)
    # nobody routes me: peers should find me at my own address, if it is reachable at all
    core.publisher.use_contacts(None).addErrback(lambda _f: None)
    retry = core.clock.callLater(core.offline_delay, inputs.retry)
    core.offline_delay = min(core.offline_delay * 2, core.timings.offline_max)
    return Offline(retry)


def _introduce(inputs: ReceiverInputs, core: ReceiverCore, router: Identity) -> Asking:
    release = core.carrier.hold(router)
    answer = _owned(core.asker.introduce(router))
    answer.addCallbacks(lambda _: inputs.acked(router), _unless_left(core.give_up_on(router, inputs.refused)))
    return Asking(router, answer, release)


def _request_route(inputs: ReceiverInputs, core: ReceiverCore, router: Identity) -> Asking:
    release = core.carrier.hold(router)
    answer = _owned(core.asker.request_route(router))
    answer.addCallbacks(lambda _: inputs.accepted(router), _unless_left(core.give_up_on(router, inputs.refused)))
    return Asking(router, answer, release)


def _listen(inputs: ReceiverInputs, core: ReceiverCore, router: Identity) -> Listening:
    core.offline_delay = core.timings.offline_first
    log.info("routed through {router}", router=router.sources[0])
    core.publisher.use_contacts(router.contacts).addErrback(
        lambda f: log.info("routed identity not published: {why}", why=f.getErrorMessage()))
    listening = Listening(core, router, core.give_up_on(router, inputs.lost))
    listening.start()
    return listening


AT_STARTUP = builder.state("AT_STARTUP")
FIND_NODE = builder.state("FIND_NODE?", _find)
ACK = builder.state("ACK?", _introduce)
SERVICE = builder.state("SERVICE?", _request_route)
LISTEN = builder.state("LISTEN", _listen)
OFFLINE = builder.state("OFFLINE", _wait_offline)
CLOSED = builder.state("CLOSED")


def _leave(inputs: ReceiverInputs, core: ReceiverCore, waiting: Waiting, *args: Any, **kwargs: Any) -> None:
    """Out of a waiting state: what it waited for is cancelled (a no-op when that is what came)."""
    waiting.cancel()


AT_STARTUP.upon(ReceiverInputs.start).to(FIND_NODE).returns(None)
FIND_NODE.upon(ReceiverInputs.found).to(ACK)(_leave)
FIND_NODE.upon(ReceiverInputs.none_found).to(OFFLINE)(_leave)
OFFLINE.upon(ReceiverInputs.retry).to(FIND_NODE)(_leave)
ACK.upon(ReceiverInputs.acked).to(SERVICE)(_leave)
ACK.upon(ReceiverInputs.refused).to(FIND_NODE)(_leave)
SERVICE.upon(ReceiverInputs.accepted).to(LISTEN)(_leave)
SERVICE.upon(ReceiverInputs.refused).to(FIND_NODE)(_leave)
LISTEN.upon(ReceiverInputs.lost).to(FIND_NODE)(_leave)


@AT_STARTUP.upon(ReceiverInputs.stop).to(CLOSED)
@CLOSED.upon(ReceiverInputs.stop).loop()
def _stop_idle(inputs: ReceiverInputs, core: ReceiverCore) -> defer.Deferred[None]:
    return defer.succeed(None)


def _stop_waiting(inputs: ReceiverInputs, core: ReceiverCore, waiting: Waiting) -> defer.Deferred[None]:
    waiting.cancel()
    return defer.succeed(None)


for _waiting in (FIND_NODE, ACK, SERVICE, OFFLINE):
    _waiting.upon(ReceiverInputs.stop).to(CLOSED)(_stop_waiting)


@LISTEN.upon(ReceiverInputs.stop).to(CLOSED)
def _stop_listening(inputs: ReceiverInputs, core: ReceiverCore, listening: Listening) -> defer.Deferred[None]:
    listening.cancel()
    return core.asker.cancel_route(listening.router)


ReceiverMachine = builder.build()
