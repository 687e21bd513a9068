"""Waits on work that goes on by itself: a caller's wait that a cancel (its REST client gone) ends without stopping the
work, and a wait bounded in time that leaves the work running."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from twisted.internet import defer
from twisted.python.failure import Failure

from bitdust_node.storage.interfaces import Clock

T = TypeVar("T")


def shielded(work: defer.Deferred[T], failed_late: Callable[[Failure], object]) -> defer.Deferred[T]:
    """The outcome of `work` for one caller: cancelling it ends the caller's wait, never the work; a failure that
    comes once nobody waits goes to `failed_late`."""
    waiting: defer.Deferred[T] = defer.Deferred()

    def ended(result: T | Failure) -> None:
        if not waiting.called:
            waiting.callback(result)  # a Failure goes on as one
        elif isinstance(result, Failure):
            failed_late(result)

    work.addBoth(ended)
    return waiting


async def at_most(work: defer.Deferred[None], seconds: float, clock: Clock) -> None:
    """Wait for `work`, `seconds` at most, leaving it to go on (never cancelled) once the wait is over."""
    over: defer.Deferred[None] = defer.Deferred()

    def end() -> None:
        if not over.called:
            over.callback(None)

    def ended(result: object) -> object:
        end()
        return result

    timer = clock.callLater(seconds, end)
    work.addBoth(ended)
    try:
        await over
    finally:
        if timer.active():
            timer.cancel()
