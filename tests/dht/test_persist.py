"""A node restarted on the same home keeps its ids, contacts, held and published values."""

from __future__ import annotations

from pathlib import Path

from twisted.trial import unittest

from bitdust_node.dht.layers import DhtConfig, LayerSet
from bitdust_node.dht.message import Response
from bitdust_node.dht.node import DhtNode
from bitdust_node.dht.persist import DhtDatabase
from bitdust_node.dht.protocol import DhtProtocol
from bitdust_node.dht.routing import Contact
from bitdust_node.dht.store import StoredValue, dump_value
from tests.dht.grid import Grid

KEY = "1" * 40


class PersistTests(unittest.TestCase):
    def test_restart_keeps_state(self) -> None:
        grid = Grid()
        path = Path(self.mktemp()) / "dht.db"
        genesis = grid.add()
        protocol = DhtProtocol(grid.clock)
        node = DhtNode(protocol, grid.clock, grid.config, DhtDatabase(path))
        grid.net.listen(("10.0.0.50", 14441), protocol)
        node.start()
        grid.join(node, genesis)
        # written within a second of the change, without waiting for stop or upkeep
        assert node.db is not None
        self.assertEqual(len(node.db.contacts(0)), 1)
        grid.resolve(node.set_value(KEY, dump_value({"type": "t"})))
        ids = {layer_id: layer.node_id for layer_id, layer in node.layers.items()}
        node.stop()
        assert node.db is not None
        node.db.close()
        grid.kill(node)

        again = DhtNode(DhtProtocol(grid.clock), grid.clock, grid.config, DhtDatabase(path))
        again.start()
        self.assertEqual(again.node_id, ids[0])
        self.assertEqual([c.node_id for c in again.layers[0].table.contacts()], [genesis.node_id])
        self.assertEqual(again.saved_addresses(), [grid.address(genesis)])
        self.assertIsNotNone(again.layers[0].store.get(KEY, grid.clock.seconds()))
        self.assertIn(KEY, again.layers[0].published)
        # expired values are not brought back
        again.stop()
        again.db.close()  # type: ignore[union-attr]
        grid.clock.advance(50000)
        third = DhtNode(DhtProtocol(grid.clock), grid.clock, grid.config, DhtDatabase(path))
        third.load()
        self.assertEqual(len(third.layers[0].store), 0)
        # nor kept in the home: what expired while the node was off is deleted there too
        self.assertEqual(third.db.values(0, mine=False), [])  # type: ignore[union-attr]
        third.db.close()  # type: ignore[union-attr]


class ExpiredValueTests(unittest.TestCase):
    """A value held for others leaves the home when it expires, whether a read or the sweep notices it first."""

    def setUp(self) -> None:
        self.db = DhtDatabase(Path(self.mktemp()) / "dht.db")
        self.addCleanup(self.db.close)

    def test_expired_values_leave_the_home_by_either_path(self) -> None:
        layers = LayerSet(DhtConfig(), self.db)
        for layer_id in (0, 3):
            for key in ("1" * 40, "2" * 40):
                layers.keep(layers.get(layer_id), StoredValue(key, dump_value({"type": "t"}), "b" * 40, 1000.0, 600))
        self.assertIsNone(layers.get(0).store.get("1" * 40, now=1600))  # a read
        self.assertEqual([v.key for v in self.db.values(0, mine=False)], ["2" * 40])
        self.assertEqual(layers.get(3).store.expire(now=1600), ["1" * 40, "2" * 40])  # the sweep
        self.assertEqual(self.db.values(3, mine=False), [])
        self.assertEqual(len(self.db.values(0, mine=False)), 1)

    def test_a_value_read_after_it_expired_does_not_stay_on_disk(self) -> None:
        grid = Grid()
        protocol = DhtProtocol(grid.clock)
        node = DhtNode(protocol, grid.clock, grid.config, self.db)
        grid.net.listen(("10.0.0.50", 14441), protocol)
        node.load()  # no upkeep: what a read notices is all there is until the sweep
        peer = grid.add()
        holder = Contact(node.node_id, "10.0.0.50", 14441)
        item = StoredValue(KEY, dump_value({"type": "t"}), peer.node_id, grid.clock.seconds(), 120)
        grid.resolve(peer.store_at(peer.layers[0], holder, item))
        self.assertEqual(len(self.db.values(0, mine=False)), 1)
        grid.net.run(121)
        reply = grid.resolve(peer.call(peer.layers[0], holder, "findValue", [KEY]))
        assert isinstance(reply, Response)
        self.assertIsInstance(reply.payload, list)  # no value: contacts instead
        self.assertEqual(self.db.values(0, mine=False), [])
        # the sweep that follows has nothing left to delete, and the home holds nothing either
        node.upkeep.tick()
        self.assertEqual(self.db.values(0, mine=False), [])
