"""The value store rules and the parsing of contact lists from peers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from bitdust_node.dht.errors import DhtError, InvalidValue, RevisionLower, StoreFull, TypeChanged, ValueTooLarge
from bitdust_node.dht.layers import DhtConfig, LayerSet
from bitdust_node.dht.lookup import parse_contacts
from bitdust_node.dht.store import DataStore, StoredValue, ValueRoom, clamp_expire, dump_value, parse_value
from tests.support.hostile_json import assert_only, damaged

KEY = "a" * 40


def item(value: dict[str, object], key: str = KEY, published: float = 1000.0) -> StoredValue:
    return StoredValue(key, dump_value(value), "b" * 40, published, 600)


class StoreTests(unittest.TestCase):
    def test_dump_is_bitdust_compact_form(self) -> None:
        self.assertEqual(dump_value({"type": "t", "a": 1}), '{\n"a":1,\n"type":"t"\n}')

    def test_type_and_revision_rules(self) -> None:
        store = DataStore()
        store.put(item({"type": "t", "revision": 3}))
        self.assertRaises(TypeChanged, store.put, item({"type": "u", "revision": 4}))
        self.assertRaises(RevisionLower, store.put, item({"type": "t", "revision": 2}))
        self.assertRaises(RevisionLower, store.put, item({"type": "t"}))
        store.put(item({"type": "t", "revision": 3, "same": True}))
        store.put(item({"type": "t", "revision": 4}))
        self.assertIn('"revision":4', store.get(KEY, now=1000).value)  # type: ignore[union-attr]

    def test_an_expired_value_sets_no_rule_for_the_next_one(self) -> None:
        """A value past its expiry, not yet swept, is gone: a store of another type or a lower revision then
        takes its place."""
        store = DataStore()
        store.put(item({"type": "t", "revision": 9}, published=1000))
        later = item({"type": "u", "revision": 1}, published=1700)
        later.last_published = 1700  # stored 100 s after the first expired
        store.put(later)
        self.assertIn('"type":"u"', store.get(KEY, now=1700).value)  # type: ignore[union-attr]
        self.assertRaises(RevisionLower, store.check, KEY, dump_value({"type": "u", "revision": 0}), 1700)

    def test_refusals(self) -> None:
        store = DataStore(max_value_bytes=100, max_items=1)
        self.assertRaises(ValueTooLarge, store.put, item({"type": "t", "pad": "x" * 100}))
        self.assertRaises(InvalidValue, store.check, KEY, "[1, 2]")
        self.assertRaises(InvalidValue, store.check, KEY, "{not json")
        store.put(item({"type": "t"}))
        self.assertRaises(StoreFull, store.put, item({"type": "t"}, key="c" * 40))

    def test_expiry(self) -> None:
        store = DataStore()
        store.put(item({"type": "t"}, published=1000))
        self.assertIsNotNone(store.get(KEY, now=1599))
        self.assertIsNone(store.get(KEY, now=1600))
        self.assertEqual(len(store), 0)
        self.assertEqual((clamp_expire(5), clamp_expire(10**9), clamp_expire(600)), (120, 43200, 600))


class ValueRoomTests(unittest.TestCase):
    """What all layers hold for others comes from one room: a flood of stores into ten layers stops at its cap."""

    def test_the_layers_share_one_room_and_expiry_gives_it_back(self) -> None:
        room = ValueRoom(max_bytes=1000)
        first, second = DataStore(room=room), DataStore(room=room)
        for n in range(3):
            first.put(item({"type": "t", "pad": "x" * 200}, key=f"{n}" * 40))
        self.assertEqual(room.used, 3 * (40 + len(dump_value({"type": "t", "pad": "x" * 200}))))
        self.assertRaises(StoreFull, second.put, item({"type": "t", "pad": "y" * 200}, key="9" * 40))
        self.assertEqual(len(second), 0)
        first.expire(now=1000 + 600)
        self.assertEqual(room.used, 0)
        second.put(item({"type": "t", "pad": "y" * 200}, key="9" * 40))

    def test_a_value_replaced_counts_only_what_it_grew(self) -> None:
        room = ValueRoom(max_bytes=400)
        store = DataStore(room=room)
        store.put(item({"type": "t", "revision": 1, "pad": "x" * 250}))
        store.put(item({"type": "t", "revision": 2, "pad": "x" * 260}))  # would not fit twice
        self.assertEqual(room.used, 40 + len(dump_value({"type": "t", "revision": 2, "pad": "x" * 260})))
        self.assertIsNone(store.get(KEY, now=1600))
        self.assertEqual(room.used, 0)

    def test_values_saved_earlier_are_put_back_only_within_the_room(self) -> None:
        room = ValueRoom(max_bytes=300)
        store = DataStore(room=room)
        self.assertTrue(store.restore(item({"type": "t", "pad": "x" * 200})))
        self.assertFalse(store.restore(item({"type": "t", "pad": "x" * 200}, key="c" * 40)))
        self.assertEqual(len(store), 1)

    def test_a_node_s_layers_share_its_room(self) -> None:
        layers = LayerSet(DhtConfig(max_stored_bytes=500), None)
        stores = [layers.get(n).store for n in (0, 3, 7)]
        self.assertTrue(all(store.room is layers.room for store in stores))
        stores[0].put(item({"type": "t", "pad": "x" * 300}))
        self.assertRaises(StoreFull, stores[2].put, item({"type": "t", "pad": "x" * 300}, key="c" * 40))


class ContactListTests(unittest.TestCase):
    def test_only_well_formed_triples(self) -> None:
        payload = [
            ["a" * 40, "127.0.0.1", 14441, 0],
            ["b" * 40, "evil.example", 14441, 0],
            ["c" * 40, "127.0.0.1", 0, 0],
            ["not an id", "127.0.0.1", 1, 0],
            ["d" * 40, "::1", 5, 0],
            "junk",
        ]
        found = parse_contacts(payload)
        assert found is not None
        self.assertEqual([(c.node_id[0], c.host, c.port) for c in found], [("a", "127.0.0.1", 14441), ("d", "::1", 5)])
        self.assertIsNone(parse_contacts({"x": 1}))
        self.assertEqual(len(parse_contacts([["a" * 40, "1.2.3.4", 1]] * 1000) or []), 64)


class HostileValueTests(unittest.TestCase):
    """A value another node stores, as a hostile peer damages it: InvalidValue (or a value) and nothing else."""

    @settings(max_examples=300, deadline=None)
    @given(st.data())
    def test_a_damaged_value_gives_only_invalid_value(self, data: st.DataObject) -> None:
        good = dump_value({"type": "suppliers", "revision": 3, "suppliers": ["http://h/a.xml", ""], "ecc_map": "x"})
        bad = data.draw(damaged(good.encode())).decode("utf-8", "surrogateescape")
        store = DataStore()
        assert_only(self, lambda value: store.put(StoredValue(KEY, value, "b" * 40, 1000.0, 600)), DhtError, bad)
        assert_only(self, parse_value, InvalidValue, bad)

    def test_the_nesting_of_the_issue_is_an_invalid_value(self) -> None:
        self.assertRaises(InvalidValue, parse_value, "[" * 5000)
