"""A node restarted on the same home keeps its ids, contacts, held and published values."""

from __future__ import annotations

from pathlib import Path

from twisted.trial import unittest

from bitdust_node.dht.node import DhtNode
from bitdust_node.dht.persist import DhtDatabase
from bitdust_node.dht.protocol import DhtProtocol
from bitdust_node.dht.store import dump_value
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
