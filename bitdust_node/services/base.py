"""What every BitDust service module provides: its place in the graph and its start/stop work."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from twisted.internet import defer
from twisted.logger import Logger

if TYPE_CHECKING:
    from bitdust_node.node import Node


class Service:
    """One BitDust service. Subclasses set the class attributes and override start/stop.

    `name` is the short name (`entangled_dht`); the state machine is `service_<name>` and the
    switch is `services/<name with - for _>/enabled`.
    A subclass whose real work is not built yet sets `not_built` to the reason: the graph keeps
    it NOT_INSTALLED with that reason and never starts it.
    """

    name: ClassVar[str] = ""
    depends_on: ClassVar[tuple[str, ...]] = ()
    conflicts: ClassVar[tuple[str, ...]] = ()
    needs_identity: ClassVar[bool] = False
    not_built: ClassVar[str | None] = None
    log = Logger()

    def __init__(self, node: Node) -> None:
        self.node = node

    @classmethod
    def machine_name(cls) -> str:
        return "service_" + cls.name

    @classmethod
    def config_prefix(cls) -> str:
        return "services/" + cls.name.replace("_", "-")

    def start(self) -> defer.Deferred[None]:
        """Open ports, start timers; fire when the service is usable."""
        return defer.succeed(None)

    def stop(self) -> defer.Deferred[None]:
        """Close what start opened; fire when all is closed."""
        return defer.succeed(None)

    def status(self) -> dict[str, object]:
        """Extra fields for /service/list/v1 and /network/status/v1."""
        return {}
