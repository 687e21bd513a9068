"""Orders the services, decides which should run, and drives their machines there.

Every change (a switch, a service settling, a new identity) calls `reconcile`: it computes each
service's target from the switches and the targets of its dependencies, stops what must stop in
reverse dependency order (a service stops only after its dependents are down), then starts what
may start in dependency order (a service starts only once its dependencies are ON).

A service whose start failed rests OFF with the reason, and is tried again RETRY_FIRST later, twice as long after
each failure in a row up to RETRY_MAX (an address not up yet at boot, a disk briefly unreadable); any change of a
service's setting tries it again at once.
"""

from __future__ import annotations

import functools
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from bitdust_node.context import NodeContext
from bitdust_node.errors import NotFound
from bitdust_node.fsm import MachineEntry, trace
from bitdust_node.services.base import Service
from bitdust_node.services.catalog import CONFLICTS, DEPENDS
from bitdust_node.services.machine import BUSY, IDLE, ServiceCore, ServiceInputs, ServiceMachine

log = Logger()

NEEDS_IDENTITY = "needs a local identity: create one with `bitdust identity create NAME`"
# a failed start is tried again after this, doubled after each failure in a row up to RETRY_MAX
RETRY_FIRST = 10.0
RETRY_MAX = 600.0


class GraphError(Exception):
    """The service table itself is wrong (a cycle or an unknown dependency): a programming error."""


def dependency_order(depends: dict[str, tuple[str, ...]]) -> list[str]:
    """Services with every dependency before its dependents; ties broken by name for stable output."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise GraphError("dependency cycle: " + " -> ".join((*path, name)))
        if name not in depends:
            raise GraphError(f"{path[-1] if path else '?'} depends on unknown service {name}")
        state[name] = "visiting"
        for dep in sorted(depends[name]):
            visit(dep, (*path, name))
        state[name] = "done"
        order.append(name)

    for name in sorted(depends):
        visit(name, ())
    return order


@attrs.define
class Managed:
    service: Service
    machine: ServiceInputs
    core: ServiceCore
    entry: MachineEntry


@attrs.frozen
class Target:
    state: str
    reason: str = ""


class ServiceGraph:
    """Every service of the node and its machine; the ServiceDirectory the services ask for each other."""

    def __init__(
        self,
        ctx: NodeContext,
        classes: dict[str, type[Service]],
        depends: dict[str, tuple[str, ...]] = DEPENDS,
        conflicts: dict[str, tuple[str, ...]] = CONFLICTS,
    ) -> None:
        self.ctx = ctx
        self.depends = {name: tuple(depends.get(name, ())) for name in classes}
        self.conflicts = conflicts
        self.order = dependency_order(self.depends)
        self._closure = {name: self._all_dependencies(name) for name in self.order}
        self.dependents: dict[str, list[str]] = {name: [] for name in self.order}
        for name, deps in self.depends.items():
            for dep in deps:
                self.dependents[dep].append(name)
        self.managed: dict[str, Managed] = {}
        for name in self.order:
            service = classes[name](ctx, self)
            core = ServiceCore(service, self.reconcile, functools.partial(self._start_failed, name))
            machine = ServiceMachine(core)
            entry = ctx.registry.register(service.machine_name(), "OFF")
            trace(machine, entry)
            self.managed[name] = Managed(service, machine, core, entry)
        self.failed: dict[str, str] = {}
        # failures in a row of each service that has not started since, and its next try
        self._failures: dict[str, int] = {}
        # settings changed so far, and how many had when each service's start began: a start that fails after a
        # change may have failed on what the change fixed, and is tried again at once
        self._setting_changes = 0
        self._start_began: dict[str, int] = {}
        self._retries: dict[str, IDelayedCall] = {}
        # services whose own settings changed while ON: taken down with their dependents, then up again
        self.restarting: set[str] = set()
        self.shutting_down = False
        self._reconciling = False
        self._again = False
        self._waiters: list[defer.Deferred[None]] = []
        ctx.settings.subscribe("services/", self._on_setting)
        # a new identity may let NOT_INSTALLED services start
        ctx.identity.subscribe(lambda _new: self.reconcile())

    def _all_dependencies(self, name: str) -> frozenset[str]:
        found: set[str] = set()
        todo = list(self.depends[name])
        while todo:
            dep = todo.pop()
            if dep not in found:
                found.add(dep)
                todo.extend(self.depends[dep])
        return frozenset(found)

    # -- queries

    def state(self, name: str) -> str:
        return self.managed[name].entry.state

    def service(self, name: str) -> Service | None:
        """The running service object, or None unless it is ON."""
        managed = self.managed.get(name)
        return managed.service if managed and managed.entry.state == "ON" else None

    def state_of(self, name: str) -> str | None:
        managed = self.managed.get(name)
        return managed.entry.state if managed is not None else None

    def depends_on(self, name: str, other: str) -> bool:
        return other in self._closure.get(name, frozenset())

    def enabled(self, name: str) -> bool:
        return bool(self.ctx.settings.get(self.managed[name].service.config_prefix() + "/enabled"))

    def find(self, name: str) -> Managed:
        short = name.removeprefix("service_")
        if short not in self.managed:
            raise NotFound(f"service {name} was not found")
        return self.managed[short]

    def describe(self, name: str) -> dict[str, Any]:
        managed = self.managed[name]
        service = managed.service
        out: dict[str, Any] = {
            "id": service.machine_name(),
            "name": service.machine_name(),
            "index": managed.entry.index,
            "state": managed.entry.state,
            "enabled": self.enabled(name),
            "installed": managed.entry.state != "NOT_INSTALLED",
            "config_path": service.config_prefix() + "/enabled",
            "depends": ["service_" + d for d in self.depends[name]],
            "reason": managed.core.reason,
        }
        if managed.entry.state == "ON":
            out.update(service.status())
        return out

    # -- driving

    def _start_failed(self, name: str, reason: str) -> None:
        if self._start_began.get(name, self._setting_changes) != self._setting_changes and not self.shutting_down:
            log.info("service_{name} is tried again at once: a setting changed while it started", name=name)
            return  # not counted: the machine's settling reconciles, which starts it again
        # kept OFF until its next try, ever later while it keeps failing, so a broken start does not loop
        failures = self._failures[name] = self._failures.get(name, 0) + 1
        # the exponent stops growing long before a float would overflow (a week of failures is over a thousand)
        delay = min(RETRY_MAX, RETRY_FIRST * 2 ** min(failures - 1, 16))
        self.failed[name] = f"{reason} (failed {failures} time{'s' if failures > 1 else ''} in a row; " \
                            f"tried again in {delay:.0f} s)"
        self._cancel_retry(name)
        if not self.shutting_down:
            self._retries[name] = self.ctx.reactor.callLater(delay, self._retry, name)

    def _retry(self, name: str) -> None:
        self._retries.pop(name, None)
        self.failed.pop(name, None)
        self.reconcile()

    def _cancel_retry(self, name: str) -> None:
        pending = self._retries.pop(name, None)
        if pending is not None and pending.active():
            pending.cancel()

    def _cancel_retries(self) -> None:
        for name in list(self._retries):
            self._cancel_retry(name)

    def _on_setting(self, key: str, old: object, new: object) -> None:
        # any change may be the fix for an earlier failure, so failed services get another try now
        self._setting_changes += 1
        self._cancel_retries()
        self.failed.clear()
        self._failures.clear()
        if not key.endswith("/enabled"):
            for name, managed in self.managed.items():
                prefix = managed.service.config_prefix() + "/"
                if key.removeprefix(prefix) in managed.service.live_settings:
                    continue
                if key.startswith(prefix) and managed.entry.state in ("ON", "STARTING"):
                    log.info("restarting service_{name} to apply {key}", name=name, key=key)
                    self.restarting.add(name)
        self.reconcile()

    def _targets(self) -> dict[str, Target]:
        targets: dict[str, Target] = {}
        for name in self.order:
            managed = self.managed[name]
            cls = type(managed.service)
            blocking_dep = next((d for d in self.depends[name] if targets[d].state != "ON"), None)
            conflict = next((c for c in self.conflicts.get(name, ()) if self.enabled(c)), None)
            if self.shutting_down:
                targets[name] = Target("OFF", "node is stopping")
            elif not self.enabled(name):
                targets[name] = Target("OFF", "disabled")
            elif cls.not_built:
                targets[name] = Target("NOT_INSTALLED", cls.not_built)
            elif cls.needs_identity and self.ctx.identity.current is None:
                targets[name] = Target("NOT_INSTALLED", NEEDS_IDENTITY)
            elif conflict:
                targets[name] = Target("OFF", f"service_{conflict} is enabled; they never run together")
            elif name in self.restarting:
                targets[name] = Target("OFF", "restarting to apply changed settings")
            elif name in self.failed:
                targets[name] = Target("OFF", self.failed[name])
            elif blocking_dep:
                targets[name] = Target("DEPENDS_OFF", f"service_{blocking_dep} is not ON")
            else:
                targets[name] = Target("ON")
        return targets

    def reconcile(self) -> None:
        """Move every machine one step toward its target; re-run until nothing more can move now."""
        if self._reconciling:
            self._again = True
            return
        self._reconciling = True
        try:
            self._again = True
            while self._again:
                self._again = False
                self._step(self._targets())
        finally:
            self._reconciling = False
        self._notify_if_settled()

    def _step(self, targets: dict[str, Target]) -> None:
        for name in reversed(self.order):
            managed = self.managed[name]
            if managed.entry.state == "ON" and targets[name].state != "ON":
                if all(self.state(d) in IDLE for d in self.dependents[name]):
                    log.info("stopping service_{name}: {why}", name=name, why=targets[name].reason)
                    managed.machine.stop()
        for name in self.order:
            managed, target = self.managed[name], targets[name]
            state = managed.entry.state
            if state == "ON":
                self._failures.pop(name, None)  # started: its next failure is a first one again
            if state not in IDLE:
                continue
            if target.state == "ON":
                if all(self.state(d) == "ON" for d in self.depends[name]):
                    log.info("starting service_{name}", name=name)
                    self._start_began[name] = self._setting_changes
                    managed.machine.start()
            elif (state, managed.core.reason) != (target.state, target.reason):
                self._rest(managed, target)
        for name in list(self.restarting):
            if self.state(name) in IDLE:
                self.restarting.discard(name)
                self._again = True

    def _rest(self, managed: Managed, target: Target) -> None:
        {
            "OFF": managed.machine.switch_off,
            "DEPENDS_OFF": managed.machine.depends_off,
            "NOT_INSTALLED": managed.machine.not_installed,
        }[target.state](target.reason)

    # -- waiting

    def is_settled(self) -> bool:
        if any(m.entry.state in BUSY for m in self.managed.values()):
            return False
        targets = self._targets()
        return all(
            (m.entry.state == "ON") == (targets[n].state == "ON") for n, m in self.managed.items()
        )

    def settled(self) -> defer.Deferred[None]:
        """Fires once no service is starting or stopping and each is ON exactly when it should be."""
        d: defer.Deferred[None] = defer.Deferred()
        self._waiters.append(d)
        self._notify_if_settled()
        return d

    def _notify_if_settled(self) -> None:
        if self._waiters and not self._reconciling and self.is_settled():
            waiters, self._waiters = self._waiters, []
            for d in waiters:
                d.callback(None)

    def shutdown(self) -> defer.Deferred[None]:
        """Stop every service, dependents first; fires when all are down."""
        self.shutting_down = True
        self._cancel_retries()
        d = self.settled()
        self.reconcile()
        return d
