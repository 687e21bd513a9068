"""The customer's catalog: every file and folder it stored, each version, and for each block its sealed key,
its nonce and the hash of every share (so a lying supplier's share is known and ignored).

It is kept in the home and, sealed to the customer's own key and signed, on every supplier as the index
piece (`master$<me>:.index.<position>.<uid>`, section 5.5): the first line is the revision, as official
catalogs have it, so the newest copy wins on a fresh machine.
"""

from __future__ import annotations

import itertools
import json
import operator
import random
import sys
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any

import attrs
import pybase64

from bitdust_node.storage.paths import MAX_DEPTH
from bitdust_node.storage.share_hashes import ShareHashes, share_hashes

FORMAT = "bitdust-node/1"
# official path ids are random decimal numbers per path component
_ID_DIGITS = 6


class CatalogError(ValueError):
    """A catalog text that cannot be read."""


@attrs.define
class BlockInfo:
    size: int  # plaintext bytes
    sealed_size: int  # ciphertext bytes (with the tag): what the shares rebuild
    # bytes here, base64 in the text: a catalog holds one of each a block (half the memory of their text)
    wrapped_key: bytes
    nonce: bytes
    # each share's hash by supplier position (erasure.share_hash; SHA-256 in older catalogs), packed
    shares: ShareHashes = attrs.field(converter=share_hashes)


@attrs.define
class Version:
    version: str  # `F20261201075109PM`
    size: int
    created: float
    block_size: int
    suppliers: list[str]  # IDURL by position when the version was stored
    blocks: list[BlockInfo] = attrs.field(factory=list)
    complete: bool = False


@attrs.define
class Entry:
    path: str  # `docs/report.pdf`
    path_id: str  # `483920/190233`
    kind: str  # file or dir
    created: float
    versions: list[Version] = attrs.field(factory=list)

    def latest(self) -> Version | None:
        done = [v for v in self.versions if v.complete]
        return done[-1] if done else None


@attrs.define
class Catalog:
    revision: int = 0
    entries: dict[str, Entry] = attrs.field(factory=dict)
    # bumped by every change of what the catalog names (an entry or a version made or taken out); not in its text
    changes: int = attrs.field(default=0, eq=False, repr=False)

    # -- paths

    def entry(self, path: str) -> Entry | None:
        return self.entries.get(normalize(path))

    def ensure(
        self, path: str, kind: str, now: float, rng: random.Random | None = None, avoid: Collection[str] = (),
    ) -> Entry:
        """The entry of `path` (made, with its folders, at `now` when missing; a path id made is none of `avoid`)."""
        path = normalize(path)
        found = self.entries.get(path)
        if found is not None:
            return found
        parent = str(PurePosixPath(path).parent)
        prefix = ""
        if parent not in (".", ""):
            prefix = self.ensure(parent, "dir", now, rng, avoid).path_id + "/"
        taken = {e.path_id for e in self.entries.values()} | set(avoid)
        pick = rng or random.Random()
        while True:
            path_id = prefix + str(pick.randrange(10 ** (_ID_DIGITS - 1), 10**_ID_DIGITS))
            if path_id not in taken:
                break
        made = self.entries[path] = Entry(path, path_id, kind, now)
        self.changes += 1
        return made

    def remove(self, path: str) -> list[Entry]:
        """The entry and everything under it, taken out of the catalog."""
        path = normalize(path)
        gone = [e for p, e in self.entries.items() if p == path or p.startswith(path + "/")]
        for entry in gone:
            del self.entries[entry.path]
        self.changes += 1
        return gone

    # -- text

    def serialize(self) -> bytes:
        """The revision line, then compact JSON: written on every save, so the C encoder's pace (an indent would
        take the pure-Python one, four times slower and 15 % larger) and the fields listed by hand (attrs.asdict
        walks and checks every value)."""
        return text_of(self.revision, self.entry_texts().values())

    def entry_texts(self) -> dict[str, bytes]:
        """Each entry's JSON by its path, in order: what a catalog text of any set of them is made of (text_of), so
        that a save serializes each entry once for both the whole text and its pages."""
        return {path: entry_text(entry) for path, entry in self.entries.items()}

    def entry_texts_when_read(self) -> Mapping[str, bytes]:
        """The same, each entry's JSON made when it is read: a large catalog's save makes a page's entries at a
        time and lets them go, not every entry's at once. Read it before the catalog changes again."""
        return _EntryTexts(self.entries)

    def values_of(self, path: str) -> int:
        """entry_values of the entry at `path`; a new number each time for an entry with a value that has no hash
        (a list where a text belongs, in a copy someone edited): its page is made again at every save."""
        try:
            return entry_values(self.entries[path])
        except TypeError:
            return next(_UNHASHABLE)

    @classmethod
    def parse(cls, text: bytes) -> Catalog:
        """The catalog a text holds; CatalogError when it is not one. The compact text serialize writes is read an
        entry at a time (the whole document as dicts took twice the memory of the catalog it makes, and left it
        fragmented); any other layout, such as the older indented one, is read whole."""
        line_end = text.find(b"\n")
        head, body_at = (text, len(text)) if line_end < 0 else (text[:line_end], line_end + 1)
        try:
            revision = int(head)
            entries = _streamed_entries(text, body_at)
            if entries is None:
                doc = json.loads(text[body_at:])
                if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                    raise CatalogError("not a catalog of this format")
                entries = {}
                for raw in doc["entries"]:
                    entry = _entry(raw)
                    entries[entry.path] = entry
        # AttributeError: an entry not an object; RecursionError: nesting deeper than the decoder goes (a damaged file)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
            raise CatalogError(f"catalog cannot be read: {err}") from None
        return cls(revision, entries)


class _EntryTexts(Mapping[str, bytes]):
    """Catalog.entry_texts_when_read: the entries' paths, each one's JSON made when it is read."""

    def __init__(self, entries: dict[str, Entry]) -> None:
        self._entries = entries

    def __getitem__(self, path: str) -> bytes:
        return entry_text(self._entries[path])

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def entry_text(entry: Entry) -> bytes:
    """One entry's JSON, as a catalog text holds it."""
    return _ENCODE(_entry_fields(entry)).encode()


def text_of(revision: int, entry_texts: Iterable[bytes]) -> bytes:
    """A catalog text of these entries' JSON (Catalog.entry_texts), as Catalog.serialize makes it."""
    return b"".join((f"{revision}\n".encode(), _OPENING, b",".join(entry_texts), _CLOSING.encode()))


def text_size(revision: int, entry_texts: Collection[bytes]) -> int:
    """len(text_of(revision, entry_texts)), without making the text: a large catalog is paged, never held whole."""
    return size_of_text(revision, len(entry_texts), sum(map(len, entry_texts)))


def size_of_text(revision: int, entries: int, entry_bytes: int) -> int:
    """The size of a catalog text of `entries` entries whose JSON takes `entry_bytes` in all."""
    return len(f"{revision}\n") + len(_OPENING) + entry_bytes + max(entries - 1, 0) + len(_CLOSING)


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
_OPENING = _ENCODE({"format": FORMAT, "entries": []})[:-2].encode()
_CLOSING = "]}"
_read_value = json.JSONDecoder().raw_decode


def _streamed_entries(whole: bytes, body_at: int) -> dict[str, Entry] | None:
    """The entries of a catalog text whose JSON, from `body_at`, is in serialize's compact layout, each made before
    the next is read; None for anything else (the caller reads it whole, and says what is wrong with it)."""
    if not whole.startswith(_OPENING, body_at):
        return None
    try:
        # decoded where it lies, not copied first: what serialize writes is ASCII (ensure_ascii)
        text = str(memoryview(whole)[body_at:], "ascii")
        entries: dict[str, Entry] = {}
        at, end = len(_OPENING), len(text) - len(_CLOSING)
        while at < end:
            raw, at = _read_value(text, at)
            entry = _entry(raw)
            entries[entry.path] = entry
            if at < end and text[at] == ",":
                at += 1
                if at == end:
                    return None  # `,]` is no JSON
            elif at < end:
                return None  # two entries without a comma between them
        return entries if at == end and text.endswith(_CLOSING) else None
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None


def _entry_fields(entry: Entry) -> dict[str, Any]:
    """attrs.asdict(entry), field for field (tests/storage/test_catalog.py holds the two equal)."""
    return {"path": entry.path, "path_id": entry.path_id, "kind": entry.kind, "created": entry.created,
            "versions": [_version_fields(v) for v in entry.versions]}


def _base64(value: bytes) -> str:
    # anything else was read from a copy someone edited (_key_bytes): written back as it was
    return pybase64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value


def _key_bytes(text: str) -> bytes:
    """A key's or nonce's base64 as its bytes; anything that would not be written back the same is kept as read."""
    if isinstance(text, str):
        try:
            value = pybase64.b64decode(text, validate=True)
        except ValueError:  # binascii.Error, and text that is not ASCII
            return text  # type: ignore[return-value]
        if pybase64.b64encode(value) == text.encode("ascii"):  # "a2V=" reads as b"ke", written "a2U="
            return value
    return text  # type: ignore[return-value]


def _version_fields(version: Version) -> dict[str, Any]:
    return {"version": version.version, "size": version.size, "created": version.created,
            "block_size": version.block_size, "suppliers": list(version.suppliers),
            "blocks": [{"size": b.size, "sealed_size": b.sealed_size, "wrapped_key": _base64(b.wrapped_key),
                        "nonce": _base64(b.nonce), "shares": list(b.shares)} for b in version.blocks],
            "complete": version.complete}


# what values_of gives an entry whose values cannot be hashed: never the same twice
_UNHASHABLE = itertools.count(random.getrandbits(60))

# the fields _entry_fields writes but its lists (tests/storage/test_catalog.py holds them to the attrs fields)
_ENTRY_VALUES = operator.attrgetter("path", "path_id", "kind", "created")
_VERSION_VALUES = operator.attrgetter("version", "size", "created", "block_size", "complete")
_BLOCK_VALUES = operator.attrgetter("size", "sealed_size", "wrapped_key", "nonce")


def entry_values(entry: Entry) -> int:
    """A hash of every value the entry's JSON is made of: the same for an entry whose JSON is the same (the hash of
    a str is kept in it, so this takes a tenth of making the JSON). A save makes again only the pages whose entries'
    values changed."""
    values: list[Any] = [_ENTRY_VALUES(entry)]
    for version in entry.versions:
        values.append(_VERSION_VALUES(version))
        values.append(tuple(version.suppliers))
        for block in version.blocks:
            values.append(_BLOCK_VALUES(block))
            values.append(block.shares.key())
    return hash(tuple(values))


def _entry(raw: dict[str, Any]) -> Entry:
    versions = [_version(v) for v in raw.pop("versions")]
    raw["kind"] = sys.intern(raw["kind"])
    return Entry(**raw, versions=versions)


def _version(raw: dict[str, Any]) -> Version:
    blocks = [_block(**b) for b in raw.pop("blocks")]
    # every version names the same few suppliers: one string each, not one each time read
    raw["suppliers"] = [sys.intern(idurl) for idurl in raw["suppliers"]]
    return Version(**raw, blocks=blocks)


def _block(size: int, sealed_size: int, wrapped_key: str, nonce: str, shares: list[str]) -> BlockInfo:
    return BlockInfo(size, sealed_size, _key_bytes(wrapped_key), _key_bytes(nonce), ShareHashes(shares))


# a file's pieces are named by its path id (a part a level), its version and the piece: a supplier takes MAX_DEPTH
# parts, so no deeper path could ever be stored
MAX_PATH_DEPTH = MAX_DEPTH - 2


def normalize(path: str) -> str:
    """`/docs//a.txt` and `docs/a.txt` name the same entry; `..` never names anything."""
    parts = [p for p in path.replace("\\", "/").split("/") if p and p != "."]
    if any(p == ".." for p in parts) or not parts:
        raise CatalogError(f"not a remote path: {path[:100]!r}")
    if len(parts) > MAX_PATH_DEPTH:
        raise CatalogError(f"a remote path is {MAX_PATH_DEPTH} levels deep at most, not {len(parts)}: {path[:100]!r}")
    return "/".join(parts)


def new_version(now: float, taken: set[str]) -> str:
    """`F` + local time `%Y%m%d%I%M%S` + AM/PM (official), a second later while one is taken."""
    while True:
        stamp = time.localtime(now)
        version = "F" + time.strftime("%Y%m%d%I%M%S", stamp) + ("AM" if stamp.tm_hour < 12 else "PM")
        if version not in taken:
            return version
        now += 1
