"""`GET /metrics` of a real node: the Prometheus text parses with prometheus_client's own parser, its
counters move when the node works (two scrapes around some traffic), and it wants the secret unless
`interface/api/metrics-public` says otherwise."""

from __future__ import annotations

from typing import Any

import treq
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from bitdust_node.node import Node
from tests.support.nodes import api, start_node

ADDRESS = "127.0.0.30"


async def scrape(node: Node, secret: bool = True) -> tuple[int, dict[str, dict[tuple[tuple[str, str], ...], float]]]:
    headers = {b"api_secret": [node.api_secret.encode()]} if secret else {}
    pool = HTTPConnectionPool(reactor, persistent=False)
    response = await treq.get(node.rest_url() + "/metrics", headers=headers, pool=pool)
    text = (await response.content()).decode()
    if response.code != 200:
        return response.code, {}
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return response.code, samples


def value(samples: dict[str, Any], name: str, **labels: str) -> float:
    return samples[name][tuple(sorted(labels.items()))]


class MetricsTests(TestCase):
    timeout = 60

    async def test_scrapes_parse_and_move_with_work(self) -> None:
        node = await start_node(self, ADDRESS, {
            "services/identity-server/enabled": True, "services/identity-server/host": ADDRESS,
            "services/entangled-dht/known-nodes": "genesis",
            "services/identity-propagate/known-servers": f"{ADDRESS}:8084",
            "services/identity-propagate/min-servers": 1, "personal/private-key-size": 1024,
        })
        code, before = await scrape(node)
        self.assertEqual(code, 200)
        self.assertEqual(value(before, "bitdust_service_up", service="identity_server"), 1.0)
        self.assertEqual(value(before, "bitdust_identities_hosted"), 0.0)
        self.assertGreater(value(before, "process_resident_memory_bytes"), 10 * 2**20)
        self.assertEqual(value(before, "bitdust_receive_budget_bytes"), 64 * 2**20)
        self.assertEqual(value(before, "bitdust_receive_budget_held_bytes", kind="unfinished_file"), 0.0)
        # work: an identity registered on this server, a DHT value stored
        status, reply = await api(node, "POST", "/identity/create/v1", {"username": "alice"})
        self.assertEqual(status, 200, reply)
        assert node.graph is not None
        await node.graph.settled()
        status, reply = await api(node, "POST", "/dht/value/set/v1", {"key": "k1", "value": "{\"a\": 1}"})
        self.assertEqual(status, 200, reply)
        code, after = await scrape(node)
        self.assertEqual(value(after, "bitdust_identities_hosted"), 1.0)
        self.assertGreater(value(after, "bitdust_identity_uploads_total", result="accepted"),
                           value(before, "bitdust_identity_uploads_total", result="accepted"))
        self.assertEqual(value(after, "bitdust_service_up", service="gateway"), 1.0)
        self.assertIn("bitdust_packets_in_total", after)

    async def test_the_secret_is_wanted_unless_metrics_are_public(self) -> None:
        node = await start_node(self, ADDRESS)
        code, _ = await scrape(node, secret=False)
        self.assertEqual(code, 401)
        node.settings.set("interface/api/metrics-public", True)
        code, samples = await scrape(node, secret=False)
        self.assertEqual(code, 200)
        self.assertIn("bitdust_service_up", samples)
        # only /metrics: everything else still wants the secret
        status, _reply = await api(node, "GET", "/network/status/v1", secret=False)
        self.assertEqual(status, 401)
