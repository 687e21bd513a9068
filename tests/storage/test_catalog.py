"""The catalog's text: what serialize writes reads back the same, as the older indented text does."""

from __future__ import annotations

import base64
import json

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from bitdust_node.storage import catalog_pages as paging
from bitdust_node.storage.catalog import (
    _BLOCK_VALUES,
    _ENCODE,
    _ENTRY_VALUES,
    _VERSION_VALUES,
    FORMAT,
    MAX_PATH_DEPTH,
    BlockInfo,
    Catalog,
    CatalogError,
    Entry,
    Version,
    _entry_fields,
    entry_values,
    text_size,
)
from bitdust_node.storage.paths import MAX_DEPTH, parse_piece_id
from bitdust_node.storage.share_hashes import ShareHashes

_text = st.text(max_size=12)
# a share's hash as the node writes it (BLAKE3, or SHA-256 in older catalogs), none yet, or any text (a copy edited)
_hashes = st.one_of(st.binary(min_size=32, max_size=32).map(lambda d: "b3:" + d.hex()),
                    st.binary(min_size=32, max_size=32).map(bytes.hex), st.just(""), _text)
_blocks = st.builds(BlockInfo, st.integers(0, 2**40), st.integers(0, 2**40), st.binary(max_size=300),
                    st.binary(max_size=16), st.lists(_hashes, max_size=5))
_versions = st.builds(Version, _text, st.integers(0, 2**40), st.floats(0, 2e9), st.integers(1, 2**26),
                      st.lists(_text, max_size=5), st.lists(_blocks, max_size=4), st.booleans())
_entries = st.builds(Entry, _text, _text, st.sampled_from(["file", "dir"]), st.floats(0, 2e9),
                     st.lists(_versions, max_size=3))
_catalogs = st.builds(lambda revision, entries: Catalog(revision, {e.path: e for e in entries}),
                      st.integers(0, 2**31), st.lists(_entries, max_size=6))


def _as_text(_instance: object, _field: object, value: object) -> object:
    """A value as the catalog's text holds it: bytes in base64, share hashes a list."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return list(value) if isinstance(value, ShareHashes) else value


def _asdict(entry: Entry) -> dict[str, object]:
    return attrs.asdict(entry, value_serializer=_as_text)


def _indented(catalog: Catalog) -> bytes:
    """The text serialize wrote before it went compact: what older homes and suppliers hold."""
    doc = {"format": FORMAT, "entries": [_asdict(e) for e in catalog.entries.values()]}
    return f"{catalog.revision}\n".encode() + json.dumps(doc, indent=1, separators=(",", ":")).encode()


class CatalogTextTests(unittest.TestCase):
    @settings(max_examples=200, deadline=None)
    @given(_entries)
    def test_the_fields_written_are_every_field_of_the_entry(self, entry: Entry) -> None:
        # a field added to Entry, Version or BlockInfo and not to the hand-made dicts fails here
        self.assertEqual(_entry_fields(entry), _asdict(entry))

    def test_the_values_a_save_compares_are_every_field_of_the_entry(self) -> None:
        # a field added to Entry, Version or BlockInfo and not to entry_values would let its change go unsaved
        for cls, getter, lists in ((Entry, _ENTRY_VALUES, {"versions"}),
                                   (Version, _VERSION_VALUES, {"suppliers", "blocks"}),
                                   (BlockInfo, _BLOCK_VALUES, {"shares"})):
            named = set(getter.__reduce__()[1])
            self.assertEqual(named | lists, {field.name for field in attrs.fields(cls)}, cls)

    @settings(max_examples=200, deadline=None)
    @given(_entries, _entries)
    def test_entries_of_the_same_values_have_the_same_text_and_others_not(self, one: Entry, other: Entry) -> None:
        same_text = _ENCODE(_entry_fields(one)) == _ENCODE(_entry_fields(other))
        self.assertEqual(entry_values(one) == entry_values(other), same_text)

    @settings(max_examples=200, deadline=None)
    @given(_catalogs)
    def test_a_catalog_reads_back_as_it_was_written(self, catalog: Catalog) -> None:
        self.assertEqual(Catalog.parse(catalog.serialize()), catalog)
        self.assertEqual(text_size(catalog.revision, catalog.entry_texts().values()), len(catalog.serialize()))

    @settings(max_examples=100, deadline=None)
    @given(_catalogs)
    def test_the_older_indented_text_still_reads(self, catalog: Catalog) -> None:
        self.assertEqual(Catalog.parse(_indented(catalog)), catalog)

    def test_entries_that_are_not_objects_are_a_catalog_error(self) -> None:
        for body in (b'{"format":"%s","entries":[1]}', b'{"format":"%s","entries":[{"path":"a","path_id":"1",'
                     b'"kind":"file","created":1.0,"versions":[2]}]}'):
            self.assertRaises(CatalogError, Catalog.parse, b"3\n" + body.replace(b"%s", FORMAT.encode()))

    def test_the_text_is_one_revision_line_and_one_line_of_json(self) -> None:
        catalog = Catalog(7)
        catalog.ensure("docs/a.txt", "file", 1.0).versions.append(
            Version("F20261201075109PM", 3, 1.0, 4, ["http://x/s.xml"], [BlockInfo(3, 19, b"k", b"n", ["b3:00"])],
                    True))
        text = catalog.serialize()
        self.assertEqual(text.count(b"\n"), 1)
        self.assertTrue(text.startswith(b"7\n{"))
        self.assertLess(len(text), len(_indented(catalog)))


# a catalog text up to its first entry
_OPENING_TEXT = b"3\n" + Catalog(3).serialize().partition(b"\n")[2][:-2]


class StreamedReadTests(unittest.TestCase):
    """The compact text is read an entry at a time; anything else in it is read whole, which decides."""

    def _catalog(self) -> Catalog:
        catalog = Catalog(9)
        for name in ("a", "b", "c"):
            catalog.ensure(f"docs/{name}.txt", "file", 1.0).versions.append(
                Version("F20261201075109PM", 3, 1.0, 4, ["http://x/s0.xml", "http://x/s1.xml"],
                        [BlockInfo(3, 19, b"k", b"n", ["b3:00", "b3:01"])], True))
        return catalog

    def test_the_compact_text_is_read_without_the_whole_document_decoder(self) -> None:
        catalog = self._catalog()

        def whole(_text: bytes) -> object:
            raise AssertionError("the whole document was decoded")

        self.patch(json, "loads", whole)
        self.assertEqual(Catalog.parse(catalog.serialize()), catalog)
        self.assertEqual(Catalog.parse(Catalog(4).serialize()), Catalog(4))

    def test_each_supplier_is_one_string_however_many_versions_name_it(self) -> None:
        read = Catalog.parse(self._catalog().serialize())
        suppliers = [v.suppliers for e in read.entries.values() for v in e.versions]
        self.assertEqual(len(suppliers), 3)
        self.assertTrue(all(s[0] is suppliers[0][0] and s[1] is suppliers[0][1] for s in suppliers))

    def test_a_compact_text_that_is_no_json_is_a_catalog_error(self) -> None:
        text = self._catalog().serialize()
        broken = [
            text[:-2] + b",]}",  # a comma and no entry after it
            text.replace(b"},{", b"}{", 1),  # two entries without a comma
            text + b"x",  # something after the end
            text[:-1],  # no end
            text[: len(text) // 2],  # cut inside an entry
            text.replace(b'"kind":"file"', b'"kind":7', 1),
        ]
        for one in broken:
            self.assertRaises(CatalogError, Catalog.parse, one)

    def test_a_valid_text_in_another_layout_is_read_whole(self) -> None:
        catalog = self._catalog()
        spaced = catalog.serialize().replace(b'"entries":[{', b'"entries":[ {', 1)
        self.assertEqual(Catalog.parse(spaced), catalog)

    def test_nesting_deeper_than_the_decoder_goes_is_a_catalog_error(self) -> None:
        # a damaged local copy must not stop the node at start (CatalogDisk.load takes CatalogError)
        for text in (b"3\n" + b"[" * 200_000, _OPENING_TEXT + b"[" * 200_000 + b"]}"):
            self.assertRaises(CatalogError, Catalog.parse, text)
        root = paging.root_text(3, [])[:-3] + b"[" * 200_000
        self.assertRaises(CatalogError, paging.parse_root, root)


class HandEditedTextTests(unittest.TestCase):
    """A copy someone edited reads back as it is written (review 37): a save writes the same text again, and one odd
    block does not make the whole catalog unreadable (at home and on every supplier, which hold the same text)."""

    def text(self, **block: object) -> bytes:
        fields = {"size": 3, "sealed_size": 19, "wrapped_key": "a2V5", "nonce": "bm9uY2U=",
                  "shares": ["b3:" + "ab" * 32], **block}
        entry = {"path": "a.txt", "path_id": "123456", "kind": "file", "created": 1.0,
                 "versions": [{"version": "F20261201075109PM", "size": 3, "created": 1.0, "block_size": 4,
                               "suppliers": ["http://x/s.xml"], "blocks": [fields], "complete": True}]}
        return b"7\n" + json.dumps({"format": FORMAT, "entries": [entry]}, separators=(",", ":")).encode()

    def test_base64_with_stray_bits_reads_back_as_written(self) -> None:
        # "a2V=" decodes to b"ke" (its last 2 bits dropped), which is written "a2U="
        text = self.text(wrapped_key="a2V=", nonce="QR==")
        self.assertEqual(Catalog.parse(text).serialize(), text)

    def test_a_list_where_a_key_belongs_reads_back_as_a_list_where_a_number_belongs_does(self) -> None:
        for odd in ({"created": [1, 2]}, {"wrapped_key": [1, 2]}, {"nonce": None}, {"wrapped_key": "k"}):
            with self.subTest(odd=odd):
                text = self.text(**odd) if "created" not in odd else self.text().replace(
                    b'"created":1.0,"versions"', b'"created":[1,2],"versions"')
                self.assertEqual(Catalog.parse(text).serialize(), text)


class PathDepthTests(unittest.TestCase):
    """No path is taken that a supplier could not store: its pieces' ids would be refused as `incorrect path`."""

    def test_the_deepest_path_taken_names_pieces_a_supplier_reads_and_a_level_more_is_refused(self) -> None:
        catalog = Catalog()
        deepest = "/".join(f"d{level}" for level in range(MAX_PATH_DEPTH))
        entry = catalog.ensure(deepest, "file", 0.0)
        piece = parse_piece_id(f"master$dave@127.0.0.1_8084:{entry.path_id}/F20261201075109PM/0-1-Data")
        self.assertEqual(len(piece.parts), MAX_DEPTH)
        folder = parse_piece_id(f"master$dave@127.0.0.1_8084:{entry.path_id}", allow_folder=True)
        self.assertEqual(len(folder.parts), MAX_PATH_DEPTH)
        with self.assertRaises(CatalogError) as raised:
            catalog.ensure(deepest + "/one-more.txt", "file", 0.0)
        self.assertIn(f"{MAX_PATH_DEPTH} levels deep at most", str(raised.exception))
        self.assertEqual(len(catalog.entries), MAX_PATH_DEPTH)  # the refused path made no folder on its way
