"""The message history's bound: past its size the oldest messages of the conversation holding most go first, so a
flood from one peer does not push out anyone else's history, and the figures survive a restart."""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import TestCase

from bitdust_node.messages.history import MessageHistory, StoredMessage, stored_bytes


def message(peer: str, n: int, size: int = 900) -> StoredMessage:
    return StoredMessage(f"{peer}-{n}", "incoming", peer, "me", peer, float(n), {"text": "x" * size})


class HistoryBoundTests(TestCase):
    def setUp(self) -> None:
        self.path = Path(self.mktemp()) / "history.db"

    def test_a_flood_from_one_peer_lets_go_of_its_own_oldest(self) -> None:
        history = MessageHistory(self.path, max_bytes=100_000)
        self.addCleanup(history.close)
        for n in range(10):
            history.add(message("friend", n))
        for n in range(1000):
            self.assertTrue(history.add(message("spammer", 1000 + n)))
        self.assertLessEqual(history.held_bytes(), 100_000)
        self.assertEqual(len(history.list("friend", limit=100)), 10)
        kept = history.list("spammer", limit=1000)
        self.assertLess(len(kept), 100)
        self.assertEqual(kept[-1].message_id, "spammer-1999")  # the newest are the ones kept
        self.assertGreater(history.dropped, 900)

    def test_the_sizes_are_read_again_at_start(self) -> None:
        history = MessageHistory(self.path, max_bytes=100_000)
        for n in range(50):
            history.add(message("a", n))
        held = history.held_bytes()
        history.close()
        again = MessageHistory(self.path, max_bytes=30_000)
        self.addCleanup(again.close)
        self.assertEqual(again.held_bytes(), held)
        again.add(message("b", 100))
        self.assertLessEqual(again.held_bytes(), 30_000)
        self.assertEqual(len(again.list("b")), 1)

    def test_a_replay_adds_nothing(self) -> None:
        history = MessageHistory(self.path)
        self.addCleanup(history.close)
        self.assertTrue(history.add(message("a", 1)))
        held = history.held_bytes()
        self.assertFalse(history.add(message("a", 1)))
        self.assertEqual(history.held_bytes(), held)

    def test_every_byte_of_a_row_counts_not_only_its_data(self) -> None:
        """The audit's flood: long ids and senders with tiny data grew the file to 88 MB under a 1 MiB bound."""
        history = MessageHistory(self.path, max_bytes=1024 * 1024)
        for n in range(200):
            long = StoredMessage(f"private_{n}" + "i" * 50_000, "incoming", "s" * 50_000, "me", "spammer", float(n),
                                 {})
            self.assertGreater(stored_bytes(long), 150_000)  # the id twice (row and key), the sender once
            history.add(long)
            self.assertLessEqual(history.held_bytes(), 1024 * 1024)
        self.assertGreater(history.dropped, 180)
        history.close()
        on_disk = sum(p.stat().st_size for p in self.path.parent.iterdir())
        self.assertLess(on_disk, 4 * 1024 * 1024)

    def test_the_count_read_at_start_is_the_count_kept_for_any_text(self) -> None:
        history = MessageHistory(self.path)
        history.add(StoredMessage("private_1", "incoming", "master$\u00e9l\u00e8ve@h_1", "master$\u4e2d@h", "p\u00e9er",
                                  1.0, {"text": "\u00e9t\u00e9"}))
        held = history.held_bytes()
        history.close()
        again = MessageHistory(self.path)
        self.addCleanup(again.close)
        self.assertEqual(again.held_bytes(), held)
