"""The customer's own copy of its catalog, written in worker threads: saves asked together land in order, a large
one from the pieces its text is made of."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from bitdust_node.storage.catalog import Catalog, text_pieces
from bitdust_node.storage.catalog_keeper import CATALOG_FILE, CatalogDisk


class CatalogFileTests(TestCase):
    @defer.inlineCallbacks
    def test_the_newest_of_many_saves_asked_at_once_is_what_stays(self) -> Any:
        folder = Path(self.mktemp())
        disk = CatalogDisk(folder)  # real worker threads: the writes race unless kept in order
        texts = [f"revision {n} ".encode() * (1 + 5000 * (n % 3)) for n in range(30)]
        yield defer.gatherResults([disk.write(text) for text in texts], consumeErrors=True)
        self.assertEqual((folder / CATALOG_FILE).read_bytes(), texts[-1])
        self.assertEqual(sorted(p.name for p in folder.iterdir()), [CATALOG_FILE])  # no temp file left
        self.assertEqual((folder / CATALOG_FILE).stat().st_mode & 0o777, 0o600)

    @defer.inlineCallbacks
    def test_a_text_written_from_its_pieces_reads_back_whole_and_as_a_catalog(self) -> Any:
        folder = Path(self.mktemp())
        disk = CatalogDisk(folder)
        catalog = Catalog(5)
        for name in ("a", "b/c", "b/d"):
            catalog.ensure(name, "file", 1.0)
        pieces = text_pieces(catalog.revision, catalog.entry_texts().values())
        yield disk.write(pieces)
        self.assertEqual((folder / CATALOG_FILE).read_bytes(), catalog.serialize())
        self.assertEqual(disk.load(), catalog)
        self.assertEqual((folder / CATALOG_FILE).stat().st_mode & 0o777, 0o600)
        self.assertEqual(b"".join(text_pieces(0, [])), Catalog(0).serialize())
