"""A RequestService or CancelService whose payload a hostile peer damaged (deep nesting, huge numbers, odd
unicode, truncations): the sender gets its official Fail, the service never sees it, nothing is raised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.net.http import CappedHttp
from bitdust_node.transport.hookups import Hookups, ServiceAnswer
from bitdust_node.transport.interfaces import Inbound
from bitdust_node.wire import packet as wire
from tests.identity.vectors import identity
from tests.support.gateway_replies import Replies
from tests.support.hostile_json import damaged

REQUEST = json.dumps({"name": "service_supplier", "payload": {
    "customer_id": "alice@h_8084", "needed_bytes": 1024, "ecc_map": "ecc/2x2", "position": 0,
    "family_snapshot": ["http://h/a.xml", None],
}}).encode()
OFFICIAL_FAILS = {b"json payload invalid", b"too long payload", b"refused"}


class Supplier:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def request_service(self, inbound: Inbound, payload: dict[str, Any]) -> ServiceAnswer:
        self.seen.append(payload)
        return ServiceAnswer.ack()

    def cancel_service(self, inbound: Inbound, payload: dict[str, Any]) -> ServiceAnswer:
        return self.request_service(inbound, payload)


class HostileRequestTests(SynchronousTestCase):
    def setUp(self) -> None:
        home = Path(self.mktemp())
        self.replies = Replies()
        clock = Clock()
        cache = IdentityCache(home / "cache", CappedHttp(clock))
        hookups = Hookups(self.replies, MyIdentityHolder(home), cache, clock,  # type: ignore[arg-type]
                          lambda name: "ON" if name == "service_supplier" else None)
        self.supplier = Supplier()
        hookups.accept_requests("service_supplier", self.supplier)
        self.hookups = hookups

    def answer(self, payload: bytes, cancel: bool = False) -> tuple[str, bytes]:
        alice = identity("alice")
        packet = wire.Packet("CancelService" if cancel else "RequestService", alice.sources[0], alice.sources[0],
                             "1", "d", payload, "http://h/me.xml", "k", "1")
        inbound = Inbound(packet, alice, True, wire.serialize(packet))
        self.replies.sent.clear()
        handle = self.hookups.cancel_received if cancel else self.hookups.request_received
        handle(inbound)  # raises nothing: anything raised fails the test
        self.assertEqual(len(self.replies.sent), 1)
        return self.replies.sent[0]

    def test_a_good_request_reaches_the_service(self) -> None:
        self.assertEqual(self.answer(REQUEST), ("Ack", b"accepted"))
        self.assertEqual(self.supplier.seen[0]["needed_bytes"], 1024)

    @settings(max_examples=300, deadline=None)
    @given(st.data(), st.booleans())
    def test_a_damaged_request_gets_an_official_fail_or_reaches_the_service_whole(
        self, data: st.DataObject, cancel: bool,
    ) -> None:
        bad = data.draw(damaged(REQUEST))
        before = len(self.supplier.seen)
        command, text = self.answer(bad, cancel)
        if command == "Fail":
            official = text in OFFICIAL_FAILS or (text.startswith(b"service ") and text.endswith(b" not exist"))
            self.assertTrue(official, text)
            self.assertEqual(len(self.supplier.seen), before)
        else:
            self.assertEqual(command, "Ack")
            self.assertIsInstance(self.supplier.seen[-1], dict)

    def test_the_nesting_of_the_issue_gets_the_official_fail(self) -> None:
        for bad in (b"[" * 5000, b'{"name":"service_supplier","payload":' + b"[" * 5000 + b"]" * 5000 + b"}"):
            self.assertEqual(self.answer(bad), ("Fail", b"json payload invalid"))
