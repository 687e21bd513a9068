"""My own copy of the catalog, in the home: `HOME/customer/catalog` holds a small catalog's whole text, or a large
one's root (catalog_pages.py) whose pages lie in `HOME/customer/catalog.d`, each file named by its text's SHA-256.
A save of a large catalog writes only the pages that changed and the root: one file added to 10,000 wrote the whole
31 MiB text again, and synced it, on every upload."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.failure import Failure

from bitdust_node.crypto.keys import write_secret_file
from bitdust_node.storage import catalog_pages as paging
from bitdust_node.storage.catalog import Catalog, CatalogError
from bitdust_node.storage.catalog_pages import PageRef
from bitdust_node.storage.interfaces import Worker

log = Logger()
CATALOG_FILE = "catalog"
PAGES_FOLDER = "catalog.d"
# a page file's name: what a root names it by (a root read from disk names no other path)
_DIGEST = re.compile(r"[0-9a-f]{64}")


class CatalogDisk:
    """My copy of the catalog: read at start, written (and fsynced) by `worker` one write at a time in the order
    asked, so the newest revision is the one left on disk."""

    def __init__(self, folder: Path, worker: Worker = threads.deferToThread) -> None:
        self.path = folder / CATALOG_FILE
        self.pages_path = folder / PAGES_FOLDER
        self._worker = worker
        self._lock = defer.DeferredLock()
        # the pages on disk, by digest, as the last write (or the start) left them
        self._pages_here: set[str] = set()
        # the size of the catalog's text, as last read or asked to be written (its pages' texts for a paged one)
        self.size = 0
        # how many pages it is in (0: one text), as last read or asked to be written
        self.page_count = 0
        # the cut my copy's pages are, as the start read them (catalog_pages.cut_as_read)
        self.as_read: paging.Cut | None = None
        # my copy was there and could not be read (it was set aside): the suppliers' is to be taken before any save
        self.unread = False

    def load(self) -> Catalog:
        """My copy; an empty catalog when there is none or it cannot be read (the suppliers' copy is fetched)."""
        self._pages_here = _listed(self.pages_path)
        self.as_read = None
        if not self.path.exists():
            # a copy set aside at an earlier start, and none taken since: still damage, not a fresh home
            self.unread = any(self.path.parent.glob(CATALOG_FILE + ".unreadable-*"))
            return Catalog()
        try:
            text = self.path.read_bytes()
            root = paging.parse_root(text)
            if root is None:
                self.size = len(text)
                return Catalog.parse(text)
            del text
            revision, pages = root
            self.size, self.page_count = sum(page.size for page in pages), len(pages)
            read: list[tuple[int, list[str]]] = []
            catalog = paging.joined(revision, self._read_pages(pages), read)  # one page read at a time
            self.as_read = paging.cut_as_read(catalog, pages, read)
            return catalog
        except OSError as err:
            # a page the root names gone, or a file where a folder belongs: damage; anything else may pass
            if not isinstance(err, (FileNotFoundError, IsADirectoryError, NotADirectoryError)):
                log.error("catalog {path} could not be read ({why}): the customer is not started, nothing is changed",
                          path=str(self.path), why=str(err))
                raise
            return self._unreadable(err)
        except CatalogError as err:
            return self._unreadable(err)

    def _unreadable(self, err: Exception) -> Catalog:
        """My copy damaged: set aside, and the empty catalog that stands for it until the suppliers' is taken."""
        self.unread = True
        aside = self._set_aside()
        log.error("catalog {path} unreadable ({why}); kept as {aside}; the suppliers' copy will be fetched",
                  path=str(self.path), why=str(err), aside=aside)
        # a page's name no longer vouches for its text: the next write writes every page again, not the damage
        self._pages_here = set()
        self.size = self.page_count = 0
        return Catalog()

    def _set_aside(self) -> str:
        """An unreadable copy (and its pages) moved aside, never written over: the next save would replace it, and
        should no supplier's copy be readable either, it may be the only record of my files' keys."""
        stamp = 0
        while True:
            stamp += 1
            suffix = f".unreadable-{stamp}"
            root, pages = self.path.with_name(self.path.name + suffix), self.pages_path.with_name(
                self.pages_path.name + suffix)
            if not root.exists() and not pages.exists():
                break
        moved_pages = False
        try:
            if self.pages_path.exists():
                os.rename(self.pages_path, pages)
                moved_pages = True
            os.rename(self.path, root)
        except OSError as err:
            if moved_pages:  # the root stays: its pages with it, not split from it
                try:
                    os.rename(pages, self.pages_path)
                except OSError:
                    pass
            return f"nothing: it could not be moved ({err})"
        return str(root)

    def _read_pages(self, pages: Sequence[PageRef]) -> Iterator[bytes]:
        for page in pages:
            if not _DIGEST.fullmatch(page.digest):
                raise CatalogError(f"a page named {page.digest[:70]!r}, not by a SHA-256")
            text = (self.pages_path / page.digest).read_bytes()
            if paging.digest_of(text) != page.digest:
                raise CatalogError(f"page {page.digest[:16]} damaged")
            yield text

    def lacks(self, page: PageRef) -> bool:
        """Whether a paged write would have to write `page`'s text (as far as the writes before it left the disk)."""
        return page.digest not in self._pages_here

    def write(self, text: bytes) -> defer.Deferred[None]:
        """A whole catalog's text in place of the last; the pages of a paged one before it go."""
        self.size, self.page_count = len(text), 0

        def job() -> defer.Deferred[None]:
            return self._worker(_write_whole_now, self.path, self.pages_path, text).addBoth(self._written)

        return self._lock.run(job)

    def write_paged(self, revision: int, pages: list[PageRef], texts: dict[int, bytes]) -> defer.Deferred[None]:
        """A paged catalog of `revision` (catalog_pages.paged): the pages not on disk yet (`texts` holds, by number,
        at least every page `lacks` said), then its root in place of the last, then the pages it does not name go.
        A page the disk lacks whose text is not in `texts` fails the write, and the last copy stays."""
        root = paging.root_text(revision, pages)
        named = {page.digest for page in pages}
        self.size, self.page_count = sum(page.size for page in pages), len(pages)

        def job() -> defer.Deferred[None]:
            # on the reactor, once the writes asked before it are done: what they left is known
            new: dict[str, bytes] = {}
            for number, page in enumerate(pages):
                if page.digest not in self._pages_here and page.digest not in new:
                    if number not in texts:
                        raise CatalogError(f"page {number} is not on disk and its text was not kept")
                    new[page.digest] = texts[number]
            return self._worker(_write_pages_now, self.path, self.pages_path, new, root, named).addBoth(
                self._written)

        return self._lock.run(job)

    def _written(self, outcome: set[str] | Failure) -> Failure | None:
        """The pages on disk after a write: what it says, or (it failed midway) what is there."""
        if isinstance(outcome, Failure):
            self._pages_here = _listed(self.pages_path)
            return outcome
        self._pages_here = outcome
        return None


def _write_whole_now(path: Path, pages_path: Path, text: bytes) -> set[str]:
    """(In the worker.) The whole text, then the pages of a paged copy before it removed. The pages on disk after."""
    write_secret_file(path, text)
    if _names(pages_path):
        _sync_folder(path.parent)  # the text's name lasts before the pages the root before it named go
    return _remove_pages_but(pages_path, set())


def _write_pages_now(path: Path, pages_path: Path, new: dict[str, bytes], root: bytes, named: set[str]) -> set[str]:
    """(In the worker.) The new pages, then the root that names them, then the pages it does not name removed: a
    crash at any point leaves a root whose pages are all there. The pages on disk after."""
    made = not pages_path.exists()
    pages_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for digest, text in new.items():
        write_secret_file(pages_path / digest, text)
    # the pages' names last before the root that names them (a power cut may keep a rename and lose an older one)
    if new:
        _sync_folder(pages_path)
    if made:
        _sync_folder(path.parent)
    write_secret_file(path, root)
    _sync_folder(path.parent)  # and the root before the pages the last one named go
    return _remove_pages_but(pages_path, named)


def _remove_pages_but(pages_path: Path, named: set[str]) -> set[str]:
    """(In the worker.) Every file of the pages' folder but the pages `named` (a page no root names, a temp file a
    crash left) removed; the pages left."""
    left = set()
    for name in _names(pages_path):
        if name in named:
            left.add(name)
            continue
        try:
            os.unlink(pages_path / name)
        except FileNotFoundError:
            pass
        except OSError:  # not ours to remove (a folder someone made): left, and the write it ends is done
            if _DIGEST.fullmatch(name):
                left.add(name)
    return left


def _sync_folder(folder: Path) -> None:
    """(In the worker.) The names in `folder` made or replaced so far, on the disk."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _listed(pages_path: Path) -> set[str]:
    return {name for name in _names(pages_path) if _DIGEST.fullmatch(name)}


def _names(pages_path: Path) -> list[str]:
    try:
        return os.listdir(pages_path)
    except FileNotFoundError:
        return []
