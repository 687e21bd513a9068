"""Packet-sized buffers reused from the process heap instead of fresh memory maps.

A relayed or stored megabyte goes through a dozen buffers of its size (frames, JSON, base64, ciphertext).
glibc gives each one over its threshold a new mmap and unmaps it when freed, so every buffer costs page
faults again (on a virtual machine they were half the CPU time of a relay). With higher thresholds freed
buffers stay in the heap for the next packet; up to `trim` bytes of free heap are kept, not more.
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorCore
from twisted.logger import Logger

from bitdust_node.net.clock import TimeSource

log = Logger()

# mallopt(3) parameters
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
# glibc's ceiling for the mmap threshold on 64-bit systems (a larger value is refused)
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 64 * 1024 * 1024


# one heap for every thread: see keep_packet_buffers
ARENAS = 1


def keep_packet_buffers(mmap_threshold: int = MMAP_THRESHOLD, trim: int = TRIM_THRESHOLD, arenas: int = ARENAS) -> bool:
    """Tune glibc's allocator for this process; False where there is no glibc (musl, other systems).

    Worker threads (sealing, hashing, checking megabyte packets) would each get a heap of their own, up to 8 a
    core, and each heap keeps what its busiest moment needed: a customer held 7 of 25 MiB, free, after a
    transfer (peak 280 MiB, 13 MiB in use). In one heap, what one thread frees the next reuses. The threads
    allocate a few large buffers a block, and Python objects under the GIL anyway: sharing costs no waiting.
    Must run before the worker threads start."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return (bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim))
            and bool(mallopt(M_ARENA_MAX, arenas)))


# how often free heap goes back to the system (keep_packet_buffers keeps up to `trim` between packets)
RELEASE_INTERVAL = 60.0


def release_free_memory() -> bool:
    """Give the free heap back to the system now (glibc malloc_trim); False where there is no glibc."""
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    malloc_trim.argtypes = (ctypes.c_size_t,)
    malloc_trim(0)  # 1 if it gave memory back, 0 if there was none to give: both are fine
    return True


# a burst of transfers reuses the heap the one before freed (given back after each, a 16 MiB upload paged in
# about 21 MiB again: 9 ms of CPU); it goes back once none has run for this long
RELEASE_WHEN_IDLE_AFTER = 2.0


class ReleaseWhenIdle:
    """The free heap given back to the system (in a worker thread) once no work of a kind, transfers say, has run
    for `delay` seconds: a customer moving 16 MiB files back to back peaks at about the same memory either way
    (108-111 MiB over 12 transfers), and rests at 62 MiB afterwards instead of 110."""

    def __init__(
        self, clock: TimeSource, worker: Callable[..., defer.Deferred[Any]], delay: float = RELEASE_WHEN_IDLE_AFTER,
        release: Callable[[], bool] = release_free_memory,
    ) -> None:
        self._clock, self._worker, self._delay, self._release = clock, worker, delay, release
        self._running = 0
        self._due: IDelayedCall | None = None
        self._stopped = False

    def started(self) -> None:
        self._running += 1
        self._cancel()

    def ended(self) -> None:
        self._running -= 1
        if not self._running and not self._stopped:  # nothing is due: the first start cancelled it
            self._due = self._clock.callLater(self._delay, self._now)

    def stop(self) -> None:
        """Nothing waits from now on, not even for a transfer that ends after."""
        self._stopped = True
        self._cancel()

    def _cancel(self) -> None:
        if self._due is not None and self._due.active():
            self._due.cancel()
        self._due = None

    def _now(self) -> None:
        self._due = None
        self._worker(self._release).addErrback(lambda f: log.warn("heap not given back: {why}",
                                                                  why=f.getErrorMessage()))


def freeze_startup_objects() -> None:
    """Take what is alive at start (modules, classes, the service graph) out of the collector's sight.

    They live as long as the process, yet every full collection walked all of them again: 5 to 10 % of the
    CPU of a node relaying or receiving megabyte packets. New objects are collected as before. What the start
    left as garbage is collected first: frozen, it would be kept for good.
    """
    gc.collect()
    gc.freeze()


def tune_node_process(reactor: IReactorCore) -> None:
    """What every node process does to its heap: packet buffers kept, start-up objects frozen once running."""
    keep_packet_buffers()
    reactor.callWhenRunning(freeze_startup_objects)  # once the services have started
