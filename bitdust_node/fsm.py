"""The registry of live state machines: index, name, state and history, for `bitdust states`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

# how many past states each machine remembers
HISTORY = 20


@attrs.define(eq=False)
class MachineEntry:
    """One registered machine. The machine (or `trace`) reports every state change here."""

    index: int
    id: str
    state: str
    label: str
    past: list[str] = attrs.field(factory=list)
    _registry: Registry | None = None
    # a one-line summary of what the machine holds (routes, counters), for `bitdust states -v`
    details: Callable[[], str] | None = None

    def set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.past.append(self.state)
        del self.past[:-HISTORY]
        self.state = state

    def unregister(self) -> None:
        if self._registry is not None:
            self._registry.remove(self)
            self._registry = None

    def describe(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "id": self.id,
            "name": self.label,
            "state": self.state,
            "repr": f"{self.id}({self.state})",
            "past": list(self.past),
            "events": False,
            "timers": "",
            "info": self.details() if self.details is not None else "",
        }


@attrs.define
class Registry:
    """All machines of one node; indexes grow and are never reused while the node runs."""

    _entries: dict[int, MachineEntry] = attrs.field(factory=dict)
    _next: int = 1

    def register(self, name: str, state: str, label: str | None = None) -> MachineEntry:
        entry = MachineEntry(self._next, name, state, label or name, registry=self)
        self._entries[entry.index] = entry
        self._next += 1
        return entry

    def remove(self, entry: MachineEntry) -> None:
        self._entries.pop(entry.index, None)

    def entries(self) -> list[MachineEntry]:
        return [self._entries[i] for i in sorted(self._entries)]

    def find(self, name: str) -> MachineEntry | None:
        return next((e for e in self._entries.values() if e.id == name), None)


def trace(machine: Any, entry: MachineEntry) -> None:
    """Keep `entry` in step with an Automat TypeMachine instance.

    Automat offers no public way to read a typed machine's state; its transitioner's tracer
    is told every (old, input, new) before the outputs run, which is what we need.
    """

    def tracer(old: Any, symbol: str, new: Any) -> None:
        entry.set_state(new.name)

    machine.__automat_transitioner__.setTrace(tracer)
