"""The life cycle of one service as an Automat machine: OFF, STARTING, ON, STOPPING, DEPENDS_OFF, NOT_INSTALLED."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import attrs
from automat import TypeMachineBuilder
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from bitdust_node.services.base import Service

log = Logger()

IDLE = frozenset({"OFF", "DEPENDS_OFF", "NOT_INSTALLED"})
BUSY = frozenset({"STARTING", "STOPPING"})


class ServiceInputs(Protocol):
    def start(self) -> None:
        "All dependencies are ON and the service is wanted: run its start()."

    def started(self) -> None:
        "start() fired."

    def start_failed(self, reason: str) -> None:
        "start() failed; the service rests OFF with the reason."

    def stop(self) -> None:
        "The service is no longer wanted: run its stop()."

    def stopped(self) -> None:
        "stop() fired (or failed: either way it is closed)."

    def switch_off(self, reason: str) -> None:
        "Rest OFF: disabled, conflicting or failed."

    def depends_off(self, reason: str) -> None:
        "Rest DEPENDS_OFF: wanted, but a dependency is not ON."

    def not_installed(self, reason: str) -> None:
        "Rest NOT_INSTALLED: not built yet, or needs a local identity."


@attrs.define
class ServiceCore:
    """What the machine acts on: the service itself and the graph's callbacks."""

    service: Service
    # the machine came to rest in ON or OFF
    settled: Callable[[], None]
    # start() failed, with the reason the service rests OFF for
    failed: Callable[[str], None]
    reason: str = ""


def _run(
    inputs: ServiceInputs, work: Callable[[], defer.Deferred[None]], done: Callable[[], None],
    failed: Callable[[str], None],
) -> None:
    d = defer.maybeDeferred(work)

    def on_error(failure: Failure) -> None:
        log.failure("service work failed", failure)
        failed(failure.getErrorMessage() or repr(failure.value))

    d.addCallbacks(lambda _: done(), on_error)


builder = TypeMachineBuilder(ServiceInputs, ServiceCore)
OFF = builder.state("OFF")
STARTING = builder.state("STARTING")
ON = builder.state("ON")
STOPPING = builder.state("STOPPING")
DEPENDS_OFF = builder.state("DEPENDS_OFF")
NOT_INSTALLED = builder.state("NOT_INSTALLED")

for _idle in (OFF, DEPENDS_OFF, NOT_INSTALLED):

    @_idle.upon(ServiceInputs.start).to(STARTING)
    def _begin_start(inputs: ServiceInputs, core: ServiceCore) -> None:
        core.reason = ""
        _run(inputs, core.service.start, inputs.started, inputs.start_failed)

    for _input, _target in (
        (ServiceInputs.switch_off, OFF),
        (ServiceInputs.depends_off, DEPENDS_OFF),
        (ServiceInputs.not_installed, NOT_INSTALLED),
    ):

        @_idle.upon(_input).to(_target)
        def _rest(inputs: ServiceInputs, core: ServiceCore, reason: str) -> None:
            core.reason = reason


# a restart can ask twice in one reconcile (the first ask waits while the machine settles): the second is moot
STARTING.upon(ServiceInputs.start).loop().returns(None)
ON.upon(ServiceInputs.start).loop().returns(None)


@STARTING.upon(ServiceInputs.started).to(ON)
def _on(inputs: ServiceInputs, core: ServiceCore) -> None:
    core.settled()


@STARTING.upon(ServiceInputs.start_failed).to(OFF)
def _start_failed(inputs: ServiceInputs, core: ServiceCore, reason: str) -> None:
    core.reason = f"start failed: {reason}"
    core.failed(core.reason)
    core.settled()


@ON.upon(ServiceInputs.stop).to(STOPPING)
def _begin_stop(inputs: ServiceInputs, core: ServiceCore) -> None:
    _run(inputs, core.service.stop, inputs.stopped, lambda reason: inputs.stopped())


@STOPPING.upon(ServiceInputs.stopped).to(OFF)
def _off(inputs: ServiceInputs, core: ServiceCore) -> None:
    core.settled()


ServiceMachine = builder.build()
