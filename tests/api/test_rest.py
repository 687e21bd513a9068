"""The REST API through StubTreq: envelope, secret, errors, settings, services, OpenAPI."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import attrs
from treq.testing import StubTreq
from twisted.internet import defer
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from bitdust_node.api.rest import MAX_BODY, RestAPI
from bitdust_node.api.routes import ApiContext
from bitdust_node.node import Node

BASE = "http://127.0.0.1:8180"


class RestTests(TestCase):
    def setUp(self) -> None:
        self.node = Node(Path(self.mktemp()))
        # a unit test opens no sockets: only service_network (which listens nowhere) runs
        for definition in list(self.node.settings.definitions.values()):
            if definition.key.endswith("/enabled") and definition.key != "services/network/enabled":
                self.node.settings.set(definition.key, False)
        self.node.prepare()
        assert self.node.graph is not None
        self.node.graph.reconcile()
        assert self.node.ctx is not None
        api = ApiContext(self.node.ctx, self.node.graph, self.node.rest_url, self.node.request_stop)
        self.treq = StubTreq(RestAPI(api, self.node.api_secret).site().resource)
        self.addCleanup(self.node.graph.shutdown)

    async def call(self, method: str, path: str, body: Any = None, secret: str | None = None,
                   raw: bytes | None = None) -> tuple[int, Any]:
        headers = {"api_secret": [secret if secret is not None else self.node.api_secret]}
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        response = await self.treq.request(method, BASE + path, data=data, headers=headers)
        return response.code, json.loads(await response.content())

    async def test_health(self) -> None:
        code, reply = await self.call("GET", "/process/health/v1")
        self.assertEqual(code, 200)
        self.assertEqual(reply["status"], "OK")

    async def test_secret_is_required(self) -> None:
        for secret in ("", "wrong"):
            code, reply = await self.call("GET", "/process/health/v1", secret=secret)
            self.assertEqual(code, 401)
            self.assertEqual(reply["status"], "ERROR")
            self.assertTrue(reply["errors"])

    async def test_secret_can_be_switched_off(self) -> None:
        self.node.settings.set("interface/api/auth-secret-enabled", False)
        code, _ = await self.call("GET", "/process/health/v1", secret="")
        self.assertEqual(code, 200)

    def test_secret_file_is_private(self) -> None:
        mode = (self.node.home / "apisecret").stat().st_mode & 0o777
        self.assertEqual(mode, 0o600)

    async def test_unknown_endpoint_is_404_envelope(self) -> None:
        code, reply = await self.call("GET", "/no/such/endpoint/v1")
        self.assertEqual(code, 404)
        self.assertEqual(reply["status"], "ERROR")
        self.assertIn("/no/such/endpoint/v1", reply["errors"][0])

    async def test_config_get_set_list(self) -> None:
        code, reply = await self.call("GET", "/config/get/v1?key=services/entangled-dht/udp-port")
        self.assertEqual(code, 200)
        entry = reply["result"][0]
        self.assertEqual(
            (entry["key"], entry["value"], entry["type"]), ("services/entangled-dht/udp-port", 14441, "port number"),
        )
        donated = {"key": "services/supplier/donated-space", "value": "50 GB"}
        code, reply = await self.call("POST", "/config/set/v1", donated)
        self.assertEqual((code, reply["result"][0]["value"]), (200, "50 GB"))
        code, reply = await self.call("GET", "/config/list/v1")
        self.assertIn("services/supplier/donated-space", [e["key"] for e in reply["result"]])

    async def test_bad_settings_are_400_and_change_nothing(self) -> None:
        before = (self.node.home / "config.json").read_bytes()
        for body in ({"key": "services/entangled-dht/udp-port", "value": "banana"},
                     {"key": "no/such/key", "value": "1"},
                     {"key": "services/entangled-dht/udp-port"}):
            code, reply = await self.call("POST", "/config/set/v1", body)
            self.assertEqual(code, 400, body)
            self.assertEqual(reply["status"], "ERROR")
        self.assertEqual(self.node.settings.get("services/entangled-dht/udp-port"), 14441)
        self.assertEqual((self.node.home / "config.json").read_bytes(), before)

    async def test_malformed_json_is_400(self) -> None:
        for raw in (b"{nope", b"[1, 2]", b"\xff\xfe"):
            code, reply = await self.call("POST", "/config/set/v1", raw=raw)
            self.assertEqual(code, 400)
            self.assertEqual(reply["status"], "ERROR")

    async def test_oversize_body_is_413(self) -> None:
        code, reply = await self.call("POST", "/config/set/v1", raw=b" " * (MAX_BODY + 10))
        self.assertEqual(code, 413)
        self.assertEqual(reply["status"], "ERROR")

    async def test_service_list_and_live_switch(self) -> None:
        code, reply = await self.call("GET", "/service/list/v1")
        services = {s["name"]: s for s in reply["result"]}
        self.assertEqual(services["service_network"]["state"], "ON")
        self.assertEqual(services["service_supplier"]["state"], "OFF")
        self.assertEqual(services["service_supplier"]["reason"], "disabled")
        code, reply = await self.call("POST", "/config/set/v1", {"key": "services/network/enabled", "value": "false"})
        self.assertEqual(code, 200)
        code, reply = await self.call("GET", "/service/info/v1?name=service_network")
        self.assertEqual((reply["result"]["state"], reply["result"]["enabled"]), ("OFF", False))
        code, reply = await self.call("POST", "/service/start/v1", {"name": "service_network"})
        self.assertEqual(reply["result"]["state"], "ON")
        code, _ = await self.call("GET", "/service/info/v1?name=service_nothing")
        self.assertEqual(code, 404)

    async def test_automat_list(self) -> None:
        _code, reply = await self.call("GET", "/automat/list/v1")
        machines = {m["id"]: m for m in reply["result"]}
        self.assertEqual(machines["service_network"]["state"], "ON")
        self.assertEqual(machines["service_network"]["repr"], "service_network(ON)")

    async def test_network_status(self) -> None:
        code, reply = await self.call("GET", "/network/status/v1")
        self.assertEqual(code, 200)
        self.assertEqual(reply["result"]["network_state"], "ON")
        self.assertIn("127.0.0.1", reply["result"]["local_addresses"])

    async def test_openapi_lists_every_endpoint(self) -> None:
        response = await self.treq.get(BASE + "/openapi.json", headers={"api_secret": [self.node.api_secret]})
        document = json.loads(await response.content())
        self.assertEqual(document["openapi"][:2], "3.")
        for path in ("/process/health/v1", "/config/set/v1", "/service/list/v1", "/automat/list/v1",
                     "/network/status/v1"):
            self.assertIn(path, document["paths"])
        self.assertIn("post", document["paths"]["/config/set/v1"])


class ClientGoneTests(TestCase):
    """A client that goes away before its answer cancels the handler; nothing is logged as a crash."""

    def test_a_client_that_goes_away_cancels_its_handler_quietly(self) -> None:
        node = Node(Path(self.mktemp()))
        for definition in list(node.settings.definitions.values()):
            if definition.key.endswith("/enabled") and definition.key != "services/network/enabled":
                node.settings.set(definition.key, False)
        node.prepare()
        assert node.graph is not None and node.ctx is not None
        node.graph.reconcile()
        self.addCleanup(node.graph.shutdown)
        rest = RestAPI(ApiContext(node.ctx, node.graph, node.rest_url, node.request_stop), node.api_secret)
        cancelled: list[bool] = []
        waiting: defer.Deferred[object] = defer.Deferred(lambda _d: cancelled.append(True))
        key = ("GET", "/process/health/v1")
        rest.routes[key] = attrs.evolve(rest.routes[key], handler=lambda _api, _request: waiting)
        request = DummyRequest([b"process", b"health", b"v1"])
        request.method, request.path = b"GET", b"/process/health/v1"
        request.content = io.BytesIO(b"")
        request.requestHeaders.setRawHeaders(b"api_secret", [node.api_secret.encode()])
        self.assertEqual(rest.site().resource.render(request), NOT_DONE_YET)
        request.processingFailed(Failure(ConnectionDone("the client went away")))
        self.assertEqual(cancelled, [True])
        self.assertEqual(request.written, [])
        self.assertEqual(self.flushLoggedErrors(), [])
