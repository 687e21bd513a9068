"""What a DHT node reports about itself: traffic and, per layer, ids, contacts and counters."""

from __future__ import annotations

from typing import Any

from bitdust_node.dht.host import DhtHost
from bitdust_node.dht.protocol import LayerStats


def node_status(node: DhtHost) -> dict[str, Any]:
    """The `dht` part of /network/status/v1?dht=1, shaped as BitDust reports it."""
    return {
        "bootstrap": node.join_state() if node.join_state is not None else None,
        "udp_port": node.udp_port,
        "bytes_received": node.protocol.bytes_received,
        "bytes_sent": node.protocol.bytes_sent,
        "layers": [_layer_status(node, layer_id) for layer_id in node.layer_set.known()],
    }


def _node_items(node: DhtHost) -> int:
    return sum(1 for v in node.advertised.values() if (v() if callable(v) else v) is not None)


def _layer_status(node: DhtHost, layer_id: int) -> dict[str, Any]:
    stats = node.protocol.stats.get(layer_id) or LayerStats()
    layer = node.layer_set.by_id.get(layer_id)
    attached = layer is not None and layer.attached
    return {
        "layer_id": layer_id,
        "node_id": node.layer_set.node_id(layer_id),
        "contacts": len(layer.table) if layer else 0,
        "buckets": len(layer.table.buckets) if layer else 1,
        "data_store_items": len(layer.store) if layer else 0,
        "node_items": _node_items(node) if layer_id == 0 else 0,
        "packets_received": stats.packets_received,
        "packets_sent": stats.packets_sent,
        "rpc_calls": dict(stats.rpc_calls),
        "rpc_responses": dict(stats.rpc_responses),
        "active": attached,
        "attached": attached,
    }
