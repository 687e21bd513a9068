"""The NAT-PMP client against a router played by a function, and the choice between UPnP and NAT-PMP."""

from __future__ import annotations

import struct

from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.net.gateways import FirstAnswering
from bitdust_node.net.natpmp import TRIES, NatPmpClient, default_gateway
from bitdust_node.net.upnp import UpnpError
from bitdust_node.wire import natpmp


class FakeRouter:
    """Answers NAT-PMP as a router would; `offer` forces another outside port, `silent` answers nothing."""

    def __init__(self, offer: int | None = None, silent: bool = False) -> None:
        self.offer = offer
        self.silent = silent
        self.asked: list[bytes] = []
        self.mapped: dict[tuple[int, int], int] = {}

    def __call__(self, request: bytes, wait: float) -> bytes:
        self.asked.append(request)
        if self.silent:
            raise TimeoutError
        if request == natpmp.external_request():
            return struct.pack("!BBHI4s", 0, 128, 0, 5, bytes([11, 0, 0, 22]))
        _version, op, _zero, inside, outside, lifetime = struct.unpack("!BBHHHI", request)
        if lifetime == 0:
            self.mapped.pop((op, inside), None)
            return struct.pack("!BBHIHHI", 0, 128 + op, 0, 5, inside, 0, 0)
        given = self.offer or outside
        self.mapped[(op, inside)] = given
        return struct.pack("!BBHIHHI", 0, 128 + op, 0, 5, inside, given, lifetime)


class Refusing:
    name = "UPnP"

    def discover(self) -> str:
        raise UpnpError("no UPnP router answered")


class NatPmpClientTests(SynchronousTestCase):
    def test_maps_and_removes(self) -> None:
        router = FakeRouter()
        client = NatPmpClient(lambda: "192.168.22.1", router)
        client.discover()
        self.assertEqual(client.external_ip(), "11.0.0.22")
        client.add_mapping((7771, "TCP"), "192.168.22.2", "bitdust-node", 3600)
        client.add_mapping((14441, "UDP"), "192.168.22.2", "bitdust-node", 3600)
        self.assertEqual(router.mapped, {(2, 7771): 7771, (1, 14441): 14441})
        client.remove_mapping((7771, "TCP"))
        self.assertEqual(router.mapped, {(1, 14441): 14441})

    def test_another_outside_port_is_refused_and_given_back(self) -> None:
        router = FakeRouter(offer=40000)
        client = NatPmpClient(lambda: "192.168.22.1", router)
        client.discover()
        with self.assertRaisesRegex(UpnpError, "offered TCP port 40000"):
            client.add_mapping((7771, "TCP"), "192.168.22.2", "bitdust-node", 3600)
        self.assertEqual(router.mapped, {})

    def test_a_silent_router_is_asked_a_bounded_number_of_times(self) -> None:
        router = FakeRouter(silent=True)
        with self.assertRaisesRegex(UpnpError, "no NAT-PMP router answered"):
            NatPmpClient(lambda: "192.168.22.1", router).discover()
        self.assertEqual(len(router.asked), TRIES)

    def test_the_default_gateway_comes_from_the_routing_table(self) -> None:
        table = self.mktemp()
        with open(table, "w") as out:
            out.write("Iface\tDestination\tGateway \tFlags\n"
                      "eth0\t0016A8C0\t00000000\t0001\n"
                      "eth0\t00000000\t0116A8C0\t0003\n")
        self.assertEqual(default_gateway(table), "192.168.22.1")
        with open(table, "w") as out:
            out.write("Iface\tDestination\tGateway \tFlags\n")
        with self.assertRaises(UpnpError):
            default_gateway(table)


class FirstAnsweringTests(SynchronousTestCase):
    def test_nat_pmp_when_no_upnp_router_answers(self) -> None:
        router = FakeRouter()
        chooser = FirstAnswering([Refusing(), NatPmpClient(lambda: "192.168.22.1", router)])  # type: ignore[list-item]
        chooser.discover()
        self.assertEqual(chooser.name, "NAT-PMP")
        chooser.add_mapping((7771, "TCP"), "192.168.22.2", "bitdust-node", 3600)
        self.assertEqual(router.mapped, {(2, 7771): 7771})

    def test_says_why_none_answered(self) -> None:
        chooser = FirstAnswering([Refusing(), NatPmpClient(lambda: "192.168.22.1", FakeRouter(silent=True))])  # type: ignore[list-item]
        with self.assertRaisesRegex(UpnpError, "no UPnP router answered; no NAT-PMP router answered"):
            chooser.discover()
        with self.assertRaises(UpnpError):
            chooser.external_ip()
