"""Waiting on several DHT calls at once (stores at the k closest, requests to many nodes) without waiting
out the ones that stalled: a dead node among them costs the stall time, not the RPC timeout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import attrs
from twisted.internet import defer

from bitdust_node.dht.patience import Patience
from bitdust_node.net.clock import DelayedCall

T = TypeVar("T")

# each call's outcome: (True, result), (False, failure), or None for a call still open (stalled)
Outcome = tuple[bool, Any] | None


def settle(calls: Sequence[defer.Deferred[Any]], patience: Patience | None) -> defer.Deferred[list[Outcome]]:
    """Fires with the calls' outcomes, in order, once every call has finished, or once the stall time has
    passed and at least one call has succeeded. The calls left open go on; their failures are consumed.
    Without a Patience every call is waited for (as DeferredList with consumeErrors)."""
    return _Settling(len(calls)).start(calls, patience)


def answered(asked: Sequence[T], outcomes: list[Outcome]) -> list[tuple[T, Any]]:
    """(what was asked, its result) for each call that succeeded, in order; stalled and failed ones left out."""
    return [(item, outcome[1]) for item, outcome in zip(asked, outcomes, strict=True)
            if outcome is not None and outcome[0]]


@attrs.define(eq=False)
class _Settling:
    unfinished: int
    outcomes: list[Outcome] = attrs.field(init=False)
    done: defer.Deferred[list[Outcome]] = attrs.field(factory=defer.Deferred)
    any_succeeded: bool = False
    stalled: bool = False
    timer: DelayedCall | None = None

    def __attrs_post_init__(self) -> None:
        self.outcomes = [None] * self.unfinished

    def start(self, calls: Sequence[defer.Deferred[Any]], patience: Patience | None) -> defer.Deferred[list[Outcome]]:
        for index, call in enumerate(calls):
            call.addCallbacks(self._finished, self._finished, callbackArgs=(index, True), errbackArgs=(index, False))
        if self.unfinished == 0:
            self._fire()
        elif patience is not None:
            self.timer = patience.clock.callLater(patience.stall_after, self._stall)
        return self.done

    def _finished(self, result: Any, index: int, ok: bool) -> None:
        if not self.done.called:
            self.outcomes[index] = (ok, result)
        self.unfinished -= 1
        self.any_succeeded = self.any_succeeded or ok
        if self.unfinished == 0 or (self.stalled and ok):
            self._fire()

    def _stall(self) -> None:
        self.stalled = True
        if self.any_succeeded:
            self._fire()

    def _fire(self) -> None:
        if self.done.called:
            return
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.done.callback(list(self.outcomes))
