"""The supplier's disk on its own: where pieces go, and paths that would lead out of the store."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from twisted.trial.unittest import TestCase

from bitdust_node.storage.paths import PiecePath
from bitdust_node.storage.store import PieceStore, StoreError

CUSTOMER = "dave@127.0.0.1_8084"


def piece(*parts: str, customer: str = CUSTOMER) -> PiecePath:
    # built directly, not parsed: the store must hold even where the parser would have refused
    return PiecePath("master", customer, parts)


class StorePathTests(TestCase):
    def setUp(self) -> None:
        self.top = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.top, True)
        self.store = PieceStore(self.top / "customers")
        (self.top / "outside").write_bytes(b"not the store's")

    def test_a_piece_is_written_under_its_customer_and_read_back(self) -> None:
        grown = self.store.write_file(piece("3", "F20261201075109PM", "0-1-Data"), b"piece")
        self.assertEqual(grown, 5)
        where = self.top / "customers" / CUSTOMER / "master" / "3" / "F20261201075109PM" / "0-1-Data"
        self.assertEqual(where.read_bytes(), b"piece")
        self.assertEqual(self.store.read(piece("3", "F20261201075109PM", "0-1-Data")), b"piece")
        self.assertEqual(self.store.size_of(piece("3", "F20261201075109PM", "0-1-Data")), 5)

    def test_paths_leading_out_of_the_store_are_refused(self) -> None:
        for bad in (piece("..", "..", "..", "outside"), piece("/etc", "passwd"),
                    piece("x", customer="../.."), piece("..", "..", customer=".")):
            with self.assertRaises(StoreError, msg=str(bad)):
                self.store.write_file(bad, b"x")
            with self.assertRaises(StoreError):
                self.store.read(bad)
        self.assertEqual((self.top / "outside").read_bytes(), b"not the store's")

    def test_removing_a_customer_never_removes_the_store_or_what_is_beside_it(self) -> None:
        self.store.write_file(piece("1", "F1", "0-0-Data"), b"kept")
        for name in ("", ".", "..", "../outside"):
            self.store.remove_customer(name)
        self.assertEqual(self.store.read(piece("1", "F1", "0-0-Data")), b"kept")
        self.assertTrue((self.top / "outside").exists())
        self.store.remove_customer(CUSTOMER)
        self.assertIsNone(self.store.read(piece("1", "F1", "0-0-Data")))

    def test_a_store_whose_folder_is_a_link(self) -> None:
        real = self.top / "disk"
        real.mkdir()
        (self.top / "link").symlink_to(real)
        store = PieceStore(self.top / "link")
        store.write_file(piece("1", "F1", "0-0-Data"), b"through the link")
        self.assertEqual((real / CUSTOMER / "master" / "1" / "F1" / "0-0-Data").read_bytes(), b"through the link")
        self.assertEqual(PieceStore(self.top / "link").used[CUSTOMER], len(b"through the link"))
