"""The catalog's copy on the suppliers in pages, once it is large.

A catalog up to PAGED_FROM bytes goes whole into the index piece, as it always has (an older node reads it). A
larger one is cut into pages by a stable hash of each entry's path, so that a change touches one page: each page is
a catalog text of its own (of revision 0, so that a page no save changed keeps its text), stored sealed as the piece
`<key id>:0/C<revision>-<digest>/<page>-0-Data` (no file has the path id `0`: theirs are six digits), named by the
revision that last changed it and the start of its text's SHA-256. The index piece then holds the root: the
revision and, for each page, its piece and the SHA-256 of its text. A save sends the pages that changed and the
root; recovery reads the root, then its pages.
An older node does not know the root's format and leaves it alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import attrs

from bitdust_node.storage.catalog import Catalog, CatalogError, Entry, size_of_text, text_of

# a catalog text up to this goes whole into the index piece
PAGED_FROM = 1024 * 1024
# what a page's text aims at (an entry is never split: the entry of a very large file may make a page alone)
PAGE_TEXT = 512 * 1024
# the root's format: not a catalog's, so a node that does not page refuses it
ROOT_FORMAT = "bitdust-node/pages-1"
# the path id the pages are stored under
PAGES_PATH = "0"
# a root of more pages than this is refused unread (a page of 512 KiB each is 32 GiB of catalog)
MAX_PAGES = 65536


@attrs.frozen
class PageRef:
    """A page as the root names it: its piece (without the key id), the SHA-256 of its text and its size."""

    piece: str
    digest: str
    size: int


def page_count(text_size: int) -> int:
    """How many pages a catalog text of `text_size` bytes is cut into: a power of two, so that a path keeps its page
    while the count stays."""
    count = 1
    while count * PAGE_TEXT < text_size and count < MAX_PAGES:
        count *= 2
    return count


def page_of(path: str, count: int) -> int:
    """The page of an entry's path: stable across runs and machines (Python's own hash of a str is not)."""
    return int.from_bytes(hashlib.blake2b(path.encode("utf-8"), digest_size=8).digest(), "big") % count


def page_texts(entry_texts: Mapping[str, bytes], count: int) -> Iterator[bytes]:
    """A catalog's entries (Catalog.entry_texts) cut into `count` pages, each a catalog text of revision 0 (the root
    says the revision) with its entries by path: the order a catalog taken back has (joined), so that a fresh home's
    pages keep their texts and names, and the old ones are not left on the suppliers unnamed. Made one at a time,
    each page's entries read as it is made (a save keeps only the pages it sends)."""
    for paths in _paths_by_page(entry_texts, count):
        yield text_of(0, [entry_texts[path] for path in paths])


def _paths_by_page(paths: Iterable[str], count: int) -> list[list[str]]:
    groups: list[list[str]] = [[] for _ in range(count)]
    for path in sorted(paths):
        groups[page_of(path, count)].append(path)
    return groups


def piece_of(revision: int, number: int, digest: str) -> str:
    """The piece (without the key id) of page `number` written by the save of `revision`, of the text whose SHA-256 is
    `digest`. A save sends a holder only the names it lacks, so a name must never stand for two texts, even when a
    revision is saved twice (my copy of its first save lost, the suppliers' not seen at the restart)."""
    return f"{PAGES_PATH}/C{revision}-{digest[:16]}/{number}-0-Data"


def digest_of(text: bytes) -> str:
    return hashlib.sha256(text).hexdigest()


@attrs.frozen
class Cut:
    """A catalog cut into pages: the size of its whole text, each page as the root names it, the texts of the pages
    asked for (by number), and for each page a hash of its entries' values (Catalog.values_of), with which the next
    cut knows the pages it need not make again."""

    size: int
    pages: list[PageRef]
    texts: dict[int, bytes]
    values: list[int]


# a page's text without its entries
_BARE_PAGE = len(text_of(0, []))


def _entry_bytes(page_size: int, entries: int) -> int:
    """What the JSON of a page's `entries` entries takes, told by the size of its text (not made again)."""
    return page_size - _BARE_PAGE - max(entries - 1, 0)


def paged(
    revision: int, entry_texts: Mapping[str, bytes], count: int, before: Sequence[PageRef],
    wanted: Callable[[PageRef], bool], values_of: Callable[[str], int], last: Cut | None = None,
) -> Cut:
    """A catalog (its entries' JSON, Catalog.entry_texts or entry_texts_when_read, and Catalog.values_of) cut into
    `count` pages: the size of its whole text (so the caller knows whether `count` was the right one, page_count),
    each page as the root names it (a page whose text did not change keeps its name from `before`, the last root's
    pages), and the texts of the pages `wanted` asks for by number (those some copy lacks: all the others are let go
    as they are made). A page whose entries' values are those it had in `last` (a cut in as many pages) and that no
    copy lacks is not made again: it keeps its name from `last`."""
    before = before if len(before) == count else []
    last = last if last is not None and len(last.pages) == count else None
    refs: list[PageRef] = []
    texts: dict[int, bytes] = {}
    values: list[int] = []
    entry_bytes = 0
    for number, paths in enumerate(_paths_by_page(entry_texts, count)):
        page_values = hash(tuple(map(values_of, paths)))
        values.append(page_values)
        if last is not None and last.values[number] == page_values and not wanted(last.pages[number]):
            refs.append(last.pages[number])
            entry_bytes += _entry_bytes(last.pages[number].size, len(paths))
            continue
        entries = [entry_texts[path] for path in paths]
        entry_bytes += sum(map(len, entries))
        page = text_of(0, entries)
        del entries
        digest = digest_of(page)
        same = before and before[number].digest == digest and before[number].size == len(page)
        ref = before[number] if same else PageRef(piece_of(revision, number, digest), digest, len(page))
        refs.append(ref)
        if wanted(ref):
            texts[number] = page
    return Cut(size_of_text(revision, len(entry_texts), entry_bytes), refs, texts, values)


_ROOT_OPENING = b'{"format":' + json.dumps(ROOT_FORMAT).encode() + b","


def root_text(revision: int, pages: Sequence[PageRef]) -> bytes:
    doc = {"format": ROOT_FORMAT, "pages": [[p.piece, p.digest, p.size] for p in pages]}
    return f"{revision}\n".encode() + json.dumps(doc, separators=(",", ":")).encode()


def parse_root(text: bytes) -> tuple[int, list[PageRef]] | None:
    """The revision and pages of a root; CatalogError for a root that cannot be read. None for any text that does not
    open as a root does (root_text writes the format first): a whole catalog's, which Catalog.parse reads or
    refuses, and which is not read whole here only to say so."""
    line_end = text.find(b"\n")
    if line_end < 0 or not text.startswith(_ROOT_OPENING, line_end + 1):
        return None
    head, body = text[:line_end], text[line_end + 1 :]
    try:
        revision = int(head)
        doc = json.loads(body)
    except (ValueError, RecursionError) as err:  # RecursionError: nesting deeper than the decoder goes
        raise CatalogError(f"catalog cannot be read: {err}") from None
    if not isinstance(doc, dict) or doc.get("format") != ROOT_FORMAT:
        return None
    raw = doc.get("pages")
    if not isinstance(raw, list) or not raw or len(raw) > MAX_PAGES:
        raise CatalogError("a catalog root without pages, or with too many")
    pages = []
    for item in raw:
        if (not isinstance(item, list) or len(item) != 3 or not isinstance(item[0], str)
                or not isinstance(item[1], str) or not isinstance(item[2], int) or isinstance(item[2], bool)):
            raise CatalogError("a catalog root's page is not [piece, digest, size]")
        if not item[0].startswith(PAGES_PATH + "/") or len(item[0]) > 100:
            raise CatalogError(f"a catalog root names a piece outside its pages: {item[0][:100]!r}")
        pages.append(PageRef(item[0], item[1], item[2]))
    return revision, pages


def joined(revision: int, pages: Iterable[bytes], read: list[tuple[int, list[str]]] | None = None) -> Catalog:
    """The catalog of a root's revision from its pages' texts (each checked against its digest by the caller; they
    may be read one at a time as this goes); into `read`, each page's size and the paths it held."""
    found: dict[str, Entry] = {}
    for text in pages:
        held = Catalog.parse(text).entries
        if read is not None:
            read.append((len(text), list(held)))
        found.update(held)
    # by path: a folder before what is in it, as the catalog made them
    return Catalog(revision, dict(sorted(found.items())))


def cut_as_read(catalog: Catalog, pages: Sequence[PageRef], read: Sequence[tuple[int, list[str]]]) -> Cut | None:
    """The cut a catalog joined from `pages` (`read` as joined gave it) is, as paged would have made it: so that the
    first save after a start makes again only the pages that changed. None when a page held a path of another page
    (a copy cut otherwise) or a page's size is not the one its root says: then every page is made."""
    count = len(pages)
    if len(read) != count:
        return None
    values: list[int] = []
    entry_bytes = 0
    for number, (size, paths) in enumerate(read):
        if size != pages[number].size or any(page_of(path, count) != number for path in paths):
            return None  # a root that lies about a page's size, or a copy cut otherwise
        values.append(hash(tuple(map(catalog.values_of, sorted(paths)))))
        entry_bytes += _entry_bytes(size, len(paths))
    return Cut(size_of_text(catalog.revision, len(catalog.entries), entry_bytes), list(pages), {}, values)
