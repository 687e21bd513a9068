"""`GET /metrics`: the node's figures in the Prometheus text format (prometheus-client), read from the live
services at each scrape, so nothing is counted twice: packets in and out and dropped by reason, TCP
connections, DHT contacts and values, routes and bytes relayed, hosted identities, stored bytes per
customer, bytes moved by transfers, and the process basics (CPU, memory, open files)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bitdust_node.services.graph import ServiceGraph

PREFIX = "bitdust_"


def _counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, doc, labels=list(labels))


def _gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, labels=list(labels))


class NodeCollector(Collector):
    def __init__(self, graph: ServiceGraph) -> None:
        self.graph = graph

    def _running(self, name: str) -> Any:
        return self.graph.service(name)

    def collect(self) -> Iterator[Metric]:
        yield from self._services()
        yield from self._receive_budget()
        yield from self._gateway()
        yield from self._tcp()
        yield from self._dht()
        yield from self._router()
        yield from self._identity_server()
        yield from self._storage()

    def _services(self) -> Iterator[Metric]:
        up = _gauge("service_up", "1 while the service is ON", ("service",))
        for name in self.graph.order:
            up.add_metric([name], 1.0 if self.graph.state(name) == "ON" else 0.0)
        yield up

    def _receive_budget(self) -> Iterator[Metric]:
        budget = getattr(self._running("network"), "budget", None)
        if budget is None:
            return
        total = _gauge("receive_budget_bytes", "what peers' unfinished and unverified packets may hold together")
        total.add_metric([], budget.total)
        yield total
        status = budget.status()
        held = _gauge("receive_budget_held_bytes", "what they hold now", ("kind",))
        for kind in ("unfinished_file", "verifying", "relayed"):
            held.add_metric([kind], status["held_by_kind"].get(kind, 0))
        yield held
        for name, doc, counts in (
            ("receive_budget_refused", "claims refused for want of room (the newest)", budget.refused),
            ("receive_budget_evicted", "unfinished claims whose room went to a smaller holder", budget.evicted),
        ):
            metric = _counter(name, doc, ("kind",))
            for kind, count in sorted(counts.items()):
                metric.add_metric([kind], count)
            yield metric

    def _gateway(self) -> Iterator[Metric]:
        service = self._running("gateway")
        gateway = getattr(service, "gateway", None)
        if gateway is None:
            return
        for name, doc in (("packets_in", "signed packets received"), ("packets_out", "signed packets sent"),
                          ("answers_matched", "answers matched to requests"),
                          ("requests_timed_out", "requests that got no answer in time")):
            metric = _counter(name, doc)
            metric.add_metric([], gateway.counters[name])
            yield metric
        dropped = _counter("packets_dropped", "packets refused before any service saw them", ("reason",))
        for reason, count in sorted(gateway.dropped.items()):
            dropped.add_metric([reason], count)
        yield dropped

    def _tcp(self) -> Iterator[Metric]:
        tcp = getattr(self._running("tcp_connections"), "tcp", None)
        if tcp is None:
            return
        connections = _gauge("tcp_connections", "open peer-to-peer TCP connections")
        connections.add_metric([], len(tcp.connections))
        yield connections
        events = _counter("tcp_events", "TCP transport events (dials, files, refusals by kind)", ("event",))
        for event, count in sorted(tcp.counters.items()):
            events.add_metric([event], count)
        yield events

    def _dht(self) -> Iterator[Metric]:
        dht = getattr(self._running("entangled_dht"), "dht", None)
        if dht is None:
            return
        contacts = _gauge("dht_contacts", "contacts in the routing table", ("layer",))
        values = _gauge("dht_values", "values this node keeps for others", ("layer",))
        for layer in dht.layer_set.by_id.values():
            contacts.add_metric([str(layer.layer_id)], len(layer.table))
            values.add_metric([str(layer.layer_id)], len(layer.store))
        yield contacts
        yield values
        for name, value in (("dht_bytes_received", dht.protocol.bytes_received),
                            ("dht_bytes_sent", dht.protocol.bytes_sent)):
            metric = _counter(name, "DHT datagram bytes")
            metric.add_metric([], value)
            yield metric
        dropped = _counter("dht_dropped", "DHT datagrams refused", ("reason",))
        for reason, count in sorted(dht.protocol.dropped.items()):
            dropped.add_metric([reason], count)
        yield dropped

    def _router(self) -> Iterator[Metric]:
        router = getattr(self._running("proxy_server"), "router", None)
        if router is None:
            return
        routes = _gauge("proxy_routes", "users routed through this node")
        routes.add_metric([], len(router.routes))
        yield routes
        relayed = _counter("proxy_bytes_relayed", "bytes relayed for routed users")
        relayed.add_metric([], router.counters["bytes_relayed"])
        yield relayed
        packets = _counter("proxy_packets_relayed", "packets relayed", ("direction",))
        packets.add_metric(["in"], router.counters["relayed_in"])
        packets.add_metric(["out"], router.counters["relayed_out"])
        yield packets
        refused = _counter("proxy_refused", "relays and route requests refused", ("reason",))
        for reason, count in sorted(router.refusals.items()):
            refused.add_metric([reason], count)
        yield refused

    def _identity_server(self) -> Iterator[Metric]:
        server = getattr(self._running("identity_server"), "idserver", None)
        if server is None:
            return
        hosted = _gauge("identities_hosted", "identities this identity server holds")
        hosted.add_metric([], len(server.store))
        yield hosted
        uploads = _counter("identity_uploads", "identity files posted to this server", ("result",))
        uploads.add_metric(["accepted"], server.uploads_accepted)
        uploads.add_metric(["refused"], server.uploads_refused)
        yield uploads

    def _storage(self) -> Iterator[Metric]:
        supplier = getattr(self._running("supplier"), "supplier", None)
        if supplier is not None:
            donated = _gauge("supplier_donated_bytes", "space donated to customers")
            donated.add_metric([], supplier.donated())
            yield donated
            stored = _gauge("supplier_stored_bytes", "bytes stored for each customer", ("customer",))
            for customer in supplier.customers.by_idurl.values():
                stored.add_metric([customer.global_id], supplier.store.used[customer.global_id])
            yield stored
            pieces = _counter("supplier_pieces_stored", "pieces stored")
            pieces.add_metric([], supplier.counters["pieces_stored"])
            yield pieces
            refused = _counter("supplier_refused", "storage requests and pieces refused", ("reason",))
            for reason, count in sorted(supplier.refusals.items()):
                refused.add_metric([reason], count)
            yield refused
        customer = getattr(self._running("customer"), "customer", None)
        if customer is not None:
            suppliers = _gauge("customer_suppliers", "suppliers connected")
            suppliers.add_metric([], len(customer.suppliers.connected()))
            yield suppliers
            moved = _counter("transfer_bytes", "file bytes moved by uploads and downloads", ("kind",))
            for kind in ("upload", "download"):
                moved.add_metric([kind], customer.counters[f"bytes_{kind}ed"])
            yield moved
            bad = _counter("customer_bad_shares", "shares set aside: changed, or not what was stored")
            bad.add_metric([], customer.counters["bad_shares"])
            yield bad
            yield from _customer_health(customer)


def _customer_health(customer: Any) -> Iterator[Metric]:
    """Blocks by their healthy shares at the last check, the repairs and the checks."""
    blocks = _gauge("customer_blocks", "stored blocks by healthy shares at the last check", ("healthy_shares",))
    unreachable = customer.health.unreachable()
    by_health: dict[int, int] = {}
    for block in customer.health.blocks():
        n = len(block.version.blocks[block.number].shares)
        ok = customer.health.healthy(block.key, n, unreachable)
        by_health[ok] = by_health.get(ok, 0) + 1
    for ok, count in sorted(by_health.items()):
        blocks.add_metric([str(ok)], count)
    yield blocks
    degraded = _gauge("customer_blocks_degraded", "blocks with a share missing or altered, waiting for repair")
    degraded.add_metric([], len(customer.health.bad))
    yield degraded
    saved = customer.keeper.last_save
    copies = _gauge("customer_catalog_copies", "catalog copies the last save stored on suppliers (0: on this "
                    "machine only)")
    copies.add_metric([], saved.stored)
    yield copies
    size = _gauge("customer_catalog_bytes", "the catalog's size at the last save: each save sends it whole to "
                  "every supplier")
    size.add_metric([], saved.size)
    yield size
    repaired = _counter("customer_repair_bytes", "share bytes rebuilt and stored again")
    repaired.add_metric([], customer.counters["bytes_repaired"])
    yield repaired
    checks = _counter("customer_checks", "health checks made", ("kind",))
    checks.add_metric(["listing"], customer.counters["listings_asked"])
    checks.add_metric(["piece"], customer.counters["pieces_checked"])
    yield checks
    read = _counter("customer_check_bytes", "share bytes read to verify pieces")
    read.add_metric([], customer.counters["check_bytes"])
    yield read


def metrics_text(graph: ServiceGraph, registry: CollectorRegistry | None = None) -> bytes:
    return generate_latest(registry or node_registry(graph))


def node_registry(graph: ServiceGraph) -> CollectorRegistry:
    """A registry of this node only (the process-wide default would mix nodes run in one process, as tests do)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(graph))
    registry.register(ProcessCollector(registry=None))
    return registry
