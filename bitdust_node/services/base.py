"""What every BitDust service module provides: its place in the graph and its start/stop work."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, TypeVar

from twisted.internet import defer
from twisted.logger import Logger

from bitdust_node.context import NodeContext
from bitdust_node.errors import ServiceOff


class UndeclaredDependency(ServiceOff):
    """A service asked for another service it does not depend on: a programming error, said plainly."""


class ServiceDirectory(Protocol):
    """What a service may ask of the graph about the others."""

    def service(self, name: str) -> Service | None:
        """The service object named, only while it is ON."""

    def depends_on(self, name: str, other: str) -> bool:
        """Whether `name` depends on `other`, directly or through other services."""

    def state_of(self, name: str) -> str | None:
        """The state of any service by name (ON, OFF, ...), None for a name the node does not know."""


S = TypeVar("S", bound="Service")


class Service:
    """One BitDust service. Subclasses set the class attributes and override start/stop.

    `name` is the short name (`entangled_dht`); the state machine is `service_<name>` and the
    switch is `services/<name with - for _>/enabled`. Its dependencies are declared once, in
    `catalog.DEPENDS`.
    A subclass whose real work is not built yet sets `not_built` to the reason: the graph keeps
    it NOT_INSTALLED with that reason and never starts it.
    """

    name: ClassVar[str] = ""
    needs_identity: ClassVar[bool] = False
    # its own settings (keys under its prefix) it applies while running, so a change needs no restart
    live_settings: ClassVar[frozenset[str]] = frozenset()
    not_built: ClassVar[str | None] = None
    log = Logger()

    def __init__(self, ctx: NodeContext, directory: ServiceDirectory) -> None:
        self.ctx = ctx
        self._directory = directory

    @classmethod
    def machine_name(cls) -> str:
        return "service_" + cls.name

    @classmethod
    def config_prefix(cls) -> str:
        return "services/" + cls.name.replace("_", "-")

    def setting(self, key: str) -> Any:
        """This service's own setting `services/<name>/<key>`."""
        return self.ctx.settings.get(f"{self.config_prefix()}/{key}")

    def need(self, other: type[S]) -> S:
        """The running `other` service: only a dependency may be reached, and only while it is ON."""
        if not self._directory.depends_on(self.name, other.name):
            raise UndeclaredDependency(f"{self.machine_name()} does not depend on {other.machine_name()}")
        found = self._directory.service(other.name)
        if not isinstance(found, other):
            raise ServiceOff(f"{other.machine_name()} is not ON")
        return found

    def service_state(self, name: str) -> str | None:
        """Another service's state, for answering peers (`service X is off`); reaches none of its objects."""
        return self._directory.state_of(name)

    def start(self) -> defer.Deferred[None]:
        """Open ports, start timers; fire when the service is usable."""
        return defer.succeed(None)

    def stop(self) -> defer.Deferred[None]:
        """Close what start opened; fire when all is closed."""
        return defer.succeed(None)

    def status(self) -> dict[str, object]:
        """Extra fields for /service/list/v1 and /network/status/v1."""
        return {}
