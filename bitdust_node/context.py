"""What every service and REST endpoint is handed: the node's shared objects, typed, and nothing else.

`Node` builds one NodeContext; nobody imports node.py to reach these.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from bitdust_node.fsm import Registry
from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.net.clock import INodeReactor
from bitdust_node.settings import Settings


@attrs.frozen
class NodeContext:
    home: Path
    reactor: INodeReactor
    settings: Settings
    registry: Registry
    identity: MyIdentityHolder
    identity_cache: IdentityCache

    @property
    def bind_address(self) -> str:
        return str(self.settings.get("services/network/bind-address"))
