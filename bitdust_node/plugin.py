"""The twistd ServiceMaker of the node, shared by the twistd dropin and `bitdust-node`."""

from __future__ import annotations

from twisted.application.service import ServiceMaker

SERVICE_MAKER = ServiceMaker(
    "bitdust", "bitdust_node.tap", "A BitDust node: DHT, identity server, proxy, storage", "bitdust",
)
