"""A private storage network on loopback: an identity server and DHT seed, suppliers, customers."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import TestCase

from bitdust_node.dht.layers import new_node_id
from bitdust_node.node import Node
from bitdust_node.services.customer import CustomerService
from bitdust_node.services.supplier import SupplierService
from bitdust_node.storage.customer import Customer
from bitdust_node.storage.supplier import Supplier
from bitdust_node.storage.suppliers import SUPPLIERS_LAYER
from tests.support import network
from tests.support.nodes import eventually, running_dht, start_node

SERVER = "127.0.0.80"
SUPPLIERS = [f"127.0.0.{i}" for i in range(81, 87)]
CUSTOMER = "127.0.0.87"


def settings_for(role: str, **extra: Any) -> dict[str, Any]:
    """`server`, `supplier`, `customer`, or anything else for a node with neither."""
    switches = {"services/supplier/enabled": role == "supplier", "services/customer/enabled": role == "customer"}
    return network.node_settings(SERVER, role, **{**switches, **extra})


async def start_server(test: TestCase) -> Node:
    return await start_node(test, SERVER, settings_for("server"))


async def start_named(test: TestCase, name: str, address: str, role: str, **extra: Any) -> Node:
    return await network.start_named(test, name, address, settings_for(role, **extra))


def supplier_of(node: Node) -> Supplier:
    assert node.graph is not None
    service = node.graph.service("supplier")
    assert isinstance(service, SupplierService) and service.supplier is not None, "service_supplier is not ON"
    return service.supplier


def customer_of(node: Node) -> Customer:
    assert node.graph is not None
    service = node.graph.service("customer")
    assert isinstance(service, CustomerService) and service.customer is not None, "service_customer is not ON"
    return service.customer


async def suppliers_known(server: Node, count: int) -> None:
    """Until lookups in DHT layer 3 from the seed, made as a customer makes them (random ids, entered through
    the base layer's contacts), have heard from `count` suppliers. The seed's own layer-3 table may hold none
    of them: a supplier enters the layer through whichever base contacts it knows first, not always the seed;
    and one lookup hears from the k (4) closest to its id, not from every member."""
    dht = running_dht(server)
    heard: set[str] = set()

    async def found() -> bool:
        result = await dht.find_node(new_node_id(), SUPPLIERS_LAYER)
        heard.update(contact.node_id for contact in result.answered)
        return len(heard) >= count

    await eventually(found, timeout=30, interval=0.5)
