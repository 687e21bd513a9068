"""k-buckets: splitting near our own id, full buckets, replacements, distance order."""

from __future__ import annotations

from twisted.trial import unittest

from bitdust_node.dht.routing import Contact, RoutingTable, distance, id_hex

OWN = id_hex(0)


def contact(value: int) -> Contact:
    return Contact(id_hex(value), "127.0.0.1", 1000 + value % 60000)


class RoutingTableTests(unittest.TestCase):
    def test_far_bucket_fills_then_names_oldest(self) -> None:
        table = RoutingTable(OWN, k=2)
        top = 1 << 159
        self.assertIsNone(table.add(contact(top + 1), now=1))
        self.assertIsNone(table.add(contact(top + 2), now=2))
        # our id is in the lower half: the upper half splits away and stays full
        oldest = table.add(contact(top + 3), now=3)
        assert oldest is not None
        self.assertEqual(oldest.node_id, id_hex(top + 1))
        self.assertEqual(len(table), 2)
        self.assertEqual(len(table.buckets), 2)
        # the oldest goes silent: the waiting replacement takes its place
        self.assertTrue(table.remove(id_hex(top + 1)))
        ids = {c.node_id for c in table.contacts()}
        self.assertEqual(ids, {id_hex(top + 2), id_hex(top + 3)})

    def test_near_buckets_keep_splitting(self) -> None:
        table = RoutingTable(OWN, k=2)
        # one contact per power of two: each lands in its own bucket near our id
        for power in range(8):
            table.add(contact(1 << power), now=power)
        self.assertEqual(len(table), 8)
        self.assertGreater(len(table.buckets), 150)
        # a far bucket that is full does not split: 6 and 7 share [4, 8) with 4 and 5
        table.add(contact(5), now=9)
        self.assertIsNotNone(table.add(contact(6), now=10))
        self.assertEqual(len(table), 9)

    def test_seen_again_moves_to_tail_and_updates_address(self) -> None:
        table = RoutingTable(OWN, k=4)
        table.add(contact(5), now=1)
        table.add(contact(6), now=2)
        table.add(Contact(id_hex(5), "10.0.0.9", 99), now=3)
        bucket = table.bucket_for(id_hex(5))
        self.assertEqual([c.node_id for c in bucket.contacts], [id_hex(6), id_hex(5)])
        self.assertEqual(bucket.contacts[-1].address, ("10.0.0.9", 99))

    def test_closest_by_xor(self) -> None:
        table = RoutingTable(OWN, k=20)
        for value in (0b1000, 0b0110, 0b0111, 0b0001):
            table.add(contact(value), now=0)
        key = id_hex(0b0101)
        got = [c.node_id for c in table.closest(key, 3)]
        expected = sorted((id_hex(v) for v in (0b1000, 0b0110, 0b0111, 0b0001)), key=lambda i: distance(i, key))[:3]
        self.assertEqual(got, expected)
        self.assertNotIn(id_hex(0b0110), [c.node_id for c in table.closest(key, 3, exclude=id_hex(0b0110))])

    def test_own_id_never_added_and_learn_needs_room(self) -> None:
        table = RoutingTable(OWN, k=1)
        self.assertIsNone(table.add(Contact(OWN, "h", 1), now=0))
        self.assertEqual(len(table), 0)
        top = 1 << 159
        self.assertTrue(table.learn(contact(top + 1)))
        self.assertFalse(table.learn(contact(top + 2)))  # full, and learning never evicts
        self.assertEqual(table.contacts()[0].last_seen, 0.0)

    def test_stale_buckets(self) -> None:
        table = RoutingTable(OWN, k=4)
        table.add(contact(1 << 159), now=100)
        self.assertEqual(table.stale_buckets(now=200, interval=3600), [])
        self.assertEqual(len(table.stale_buckets(now=3800, interval=3600)), 1)
