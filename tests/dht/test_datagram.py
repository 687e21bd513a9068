"""Datagram header and bounded multi-datagram reassembly."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial import unittest

from bitdust_node.dht import datagram
from bitdust_node.dht.datagram import DatagramError, Header, Reassembler
from bitdust_node.net.budget import ReceiveBudget

RPC = "0123456789abcdef0123456789abcdef01234567"


class HeaderTests(unittest.TestCase):
    def test_pack_unpack(self) -> None:
        raw = datagram.pack(Header(3, 1, RPC), b"body")
        self.assertEqual(len(raw), datagram.HEADER_SIZE + 4)
        self.assertEqual(raw[:5], b"\x00\x00\x03\x00\x01")
        self.assertEqual(datagram.unpack(raw), (Header(3, 1, RPC), b"body"))

    def test_bad_headers(self) -> None:
        good = datagram.pack(Header(1, 0, RPC), b"x")
        cases = {
            "truncated_header": good[:45],
            "bad_header": b"\x01" + good[1:],
        }
        for kind, raw in cases.items():
            with self.subTest(kind=kind):
                with self.assertRaises(DatagramError) as ctx:
                    datagram.unpack(raw)
                self.assertEqual(ctx.exception.kind, kind)
        for raw in [
            good[:45] + b"\x01",
            good[:5] + b"G" * 40 + good[45:],
            datagram.pack(Header(2, 2, RPC), b""),
            datagram.pack(Header(0, 0, RPC), b""),
        ]:
            self.assertRaises(DatagramError, datagram.unpack, raw)
        with self.assertRaises(DatagramError) as ctx:
            datagram.unpack(datagram.pack(Header(datagram.MAX_PARTS + 1, 0, RPC), b""))
        self.assertEqual(ctx.exception.kind, "too_many_parts")

    def test_split_sizes(self) -> None:
        body = bytes(range(256)) * 70  # 17920 bytes -> 3 parts
        parts = datagram.split(RPC, body)
        self.assertEqual(len(parts), 3)
        self.assertTrue(all(len(p) <= datagram.HEADER_SIZE + datagram.MAX_BODY_PER_DATAGRAM for p in parts))
        self.assertEqual(len(datagram.split(RPC, b"short")), 1)
        self.assertRaises(DatagramError, datagram.split, RPC, b"x" * (datagram.MAX_MESSAGE_BYTES + 1))


class ReassemblyTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.r = Reassembler(self.clock, max_pending=3, timeout=10.0, max_per_sender=3)

    def _feed_all(self, sender: object, parts: list[bytes]) -> list[bytes | None]:
        return [self.r.feed(sender, *datagram.unpack(p)) for p in parts]

    def test_out_of_order_and_duplicates(self) -> None:
        body = b"".join(bytes([i]) * 6000 for i in range(3))
        parts = datagram.split(RPC, body)
        self.assertEqual(len(parts), 3)
        results = self._feed_all("a", [parts[2], parts[0], parts[0], parts[1]])
        self.assertEqual(results[:3], [None, None, None])
        self.assertEqual(results[3], body)
        self.assertEqual(self.r.pending_count(), 0)

    def test_senders_do_not_mix(self) -> None:
        parts = datagram.split(RPC, b"z" * 9000)
        self.assertIsNone(self.r.feed("a", *datagram.unpack(parts[0])))
        self.assertIsNone(self.r.feed("b", *datagram.unpack(parts[1])))
        self.assertEqual(self.r.pending_count(), 2)

    def test_incomplete_expire(self) -> None:
        parts = datagram.split(RPC, b"z" * 9000)
        self.r.feed("a", *datagram.unpack(parts[0]))
        self.clock.advance(11)
        self.assertEqual(self.r.expire(self.clock.seconds()), 1)
        self.assertEqual(self.r.pending_count(), 0)

    def test_flood_of_incomplete_is_capped(self) -> None:
        for i in range(3):
            rpc = f"{i:040x}"
            self.r.feed("a", Header(2, 0, rpc), b"x")
        with self.assertRaises(DatagramError) as ctx:
            self.r.feed("a", Header(2, 0, "f" * 40), b"x")
        self.assertEqual(ctx.exception.kind, "pending_full")
        self.clock.advance(11)
        self.assertIsNone(self.r.feed("a", Header(2, 0, "f" * 40), b"x"))

    def test_one_sender_cannot_fill_the_table(self) -> None:
        r = Reassembler(self.clock, max_pending=10, max_per_sender=2)
        for i in range(2):
            r.feed("noisy", Header(2, 0, f"{i:040x}"), b"x")
        with self.assertRaises(DatagramError) as ctx:
            r.feed("noisy", Header(2, 0, "e" * 40), b"x")
        self.assertEqual(ctx.exception.kind, "sender_pending_full")
        self.assertIsNone(r.feed("quiet", Header(2, 0, "e" * 40), b"x"))

    def test_size_cap(self) -> None:
        r = Reassembler(self.clock, max_bytes=100)
        r.feed("a", Header(3, 0, RPC), b"x" * 60)
        with self.assertRaises(DatagramError) as ctx:
            r.feed("a", Header(3, 1, RPC), b"x" * 60)
        self.assertEqual(ctx.exception.kind, "too_large")
        self.assertEqual(r.pending_count(), 0)

    def test_changed_total(self) -> None:
        self.r.feed("a", Header(3, 0, RPC), b"x")
        self.assertRaises(DatagramError, self.r.feed, "a", Header(2, 1, RPC), b"x")


class HeldBytesTests(unittest.TestCase):
    """Incomplete messages hold their parts' bytes against a total cap and the node's receive budget, under the
    sender's address, until they are whole, refused, too old or taken back."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.budget = ReceiveBudget(total=64 * 1024)

    def test_parts_held_until_the_message_is_whole(self) -> None:
        r = Reassembler(self.clock, budget=self.budget)
        parts = datagram.split(RPC, b"q" * 20000)
        r.feed(("10.0.0.1", 14441), *datagram.unpack(parts[0]))
        r.feed(("10.0.0.1", 14441), *datagram.unpack(parts[1]))
        self.assertEqual(self.budget.held_by("10.0.0.1"), 2 * datagram.MAX_BODY_PER_DATAGRAM)
        self.assertEqual(r.held(), 2 * datagram.MAX_BODY_PER_DATAGRAM)
        self.assertEqual(r.feed(("10.0.0.1", 14441), *datagram.unpack(parts[2])), b"q" * 20000)
        self.assertEqual((self.budget.held, r.held()), (0, 0))

    def test_expired_and_refused_messages_let_go(self) -> None:
        r = Reassembler(self.clock, budget=self.budget, max_bytes=10_000)
        r.feed(("10.0.0.1", 1), Header(3, 0, RPC), b"x" * 6000)
        self.assertRaises(DatagramError, r.feed, ("10.0.0.1", 1), Header(3, 1, RPC), b"x" * 6000)  # over max_bytes
        r.feed(("10.0.0.2", 1), Header(3, 0, RPC), b"x" * 6000)
        self.clock.advance(11)
        r.expire(self.clock.seconds())
        self.assertEqual((self.budget.held, r.held()), (0, 0))

    def test_one_sender_cannot_hold_more_than_its_part(self) -> None:
        r = Reassembler(self.clock, max_sender_bytes=20_000)
        for n in range(2):
            r.feed(("10.0.0.1", 1), Header(64, 0, f"{n:040x}"), b"x" * 8000)
        with self.assertRaises(DatagramError) as ctx:
            r.feed(("10.0.0.1", 1), Header(64, 0, "7" * 40), b"x" * 8000)
        self.assertEqual(ctx.exception.kind, "sender_bytes_full")
        self.assertIsNone(r.feed(("10.0.0.2", 1), Header(64, 0, "7" * 40), b"x" * 8000))
        self.clock.advance(11)
        r.expire(self.clock.seconds())
        self.assertEqual(r.held(), 0)
        self.assertIsNone(r.feed(("10.0.0.1", 1), Header(64, 0, "7" * 40), b"x" * 8000))

    def test_all_incomplete_messages_stop_at_the_total_cap(self) -> None:
        r = Reassembler(self.clock, max_pending=1000, max_per_sender=1000, max_total_bytes=50_000)
        for n in range(6):
            r.feed((f"10.0.1.{n}", 1), Header(64, 0, f"{n:040x}"), b"x" * 8000)
        with self.assertRaises(DatagramError) as ctx:
            r.feed(("10.0.1.9", 1), Header(64, 0, "9" * 40), b"x" * 8000)
        self.assertEqual(ctx.exception.kind, "pending_bytes_full")
        self.assertEqual(r.held(), 48_000)

    def test_no_room_in_the_budget_refuses_and_eviction_drops_the_message(self) -> None:
        r = Reassembler(self.clock, budget=self.budget)
        r.feed(("10.0.0.1", 1), Header(64, 0, RPC), b"x" * 8000)
        for n in range(3):  # what cannot be taken back fills the rest
            self.assertIsNotNone(self.budget.claim(f"10.0.3.{n}", self.budget.total // 4, "relayed"))
        rest = self.budget.total - self.budget.held - 100
        self.assertIsNotNone(self.budget.claim("10.0.3.9", rest, "relayed"))
        with self.assertRaises(DatagramError) as ctx:
            r.feed(("10.0.0.2", 1), Header(64, 0, RPC), b"y" * 8000)
        self.assertEqual(ctx.exception.kind, "over_budget")
        # a smaller holder needs room: the message holding most is taken back, whole
        self.assertIsNotNone(self.budget.claim("10.0.4.1", 4000, "verifying", on_evicted=lambda: None))
        self.assertEqual((r.pending_count(), r.held(), self.budget.held_by("10.0.0.1")), (0, 0, 0))
