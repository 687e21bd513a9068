"""The catalog's copies on the suppliers (PROTOCOL-P2P.md 5.5): put there after each save, the newest taken back
on a fresh home. Each copy is sealed to my own key and signed. A small catalog is one index piece, as it always
was; a large one is pages and a root (catalog_pages.py), and a save sends a holder only the pages it lacks, then
the root, then removes the pages no root of its names any more."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.failure import Failure

from bitdust_node.crypto import block as blocks
from bitdust_node.crypto.keys import write_secret_file
from bitdust_node.crypto.packet_signing import packet_signature_valid
from bitdust_node.errors import BitDustError
from bitdust_node.storage import catalog_pages as paging
from bitdust_node.storage.catalog import Catalog, CatalogError
from bitdust_node.storage.catalog_pages import PageRef
from bitdust_node.storage.interfaces import IdentityLookup, Me, Worker
from bitdust_node.storage.piece_deletes import delete_at
from bitdust_node.storage.supplier_link import ask
from bitdust_node.transport.interfaces import PacketNetwork
from bitdust_node.wire import packet as wire
from bitdust_node.wire import packet_fast

log = Logger()
# the catalog's path among my pieces (section 5.5)
INDEX_PATH = ".index"
PAGES_FILE = "catalog.pages"
CATALOG_TIMEOUT = 30.0
# pages sealed and on their way at once: a save holds this many sealed copies, whatever the catalog's size (and the
# plain texts of the pages some holder lacks: one or two after a change, all of them on a first save)
PAGES_AT_ONCE = 8

# the official supplier's answer to a Retrieve of a piece it does not hold (ours gives the same)
NOT_HELD = b"did not found requested file locally"


class NoAnswer(Exception):
    """A holder that did not answer a Retrieve of my catalog's copy (offline, or too slow)."""


class NotHeld(Exception):
    """A holder that said it holds no such piece of mine."""


class CatalogCopies:
    """My catalog's copies on the suppliers `holders()` names as (position, IDURL), and which pages each holds
    (kept in `HOME/customer/catalog.pages`, so that a restart neither sends them all again nor loses track of what
    to remove)."""

    def __init__(
        self, network: PacketNetwork, me: Me, identities: IdentityLookup, folder: Path,
        holders: Callable[[], Sequence[tuple[int, str]]], worker: Worker = threads.deferToThread,
    ) -> None:
        self.network = network
        self.me = me
        self.identities = identities
        self.holders = holders
        self._worker = worker
        self._state_path = folder / PAGES_FILE
        # the state's writes in the order asked: a save's and a holder's forgetting would share one temp file
        self._state_lock = defer.DeferredLock()
        # the pages of the last root a save put anywhere, and the pieces each holder took
        self.pages: list[PageRef] = []
        self.held: dict[str, set[str]] = {}
        # how many holders answered the last `newest`, and how many of them said they hold no copy at all (a copy
        # given but unreadable, or whose pages did not come, is no "none": it may be all that is left of my catalog)
        self.answered = 0
        self.without_copy = 0
        self.asked = 0
        self._load_state()

    @property
    def index_backup_id(self) -> str:
        return f"{self.me.require().key_id}:{INDEX_PATH}"

    def _index_packet_id(self, position: int) -> str:
        return f"{self.me.require().key_id}:.index.{position}.{self.network.new_packet_id()}"

    def _piece_id(self, piece: str) -> str:
        return f"{self.me.require().key_id}:{piece}"

    # -- putting

    def lacks(self, page: PageRef, holders: Sequence[tuple[int, str]]) -> bool:
        """Whether some holder of `holders` lacks `page` (a save sends its text)."""
        return any(page.piece not in self.held.get(idurl, set()) for _position, idurl in holders)

    async def put_whole(self, holders: Sequence[tuple[int, str]], text: bytes) -> list[tuple[bool, Any]]:
        """A catalog small enough to be one index piece (up to catalog_pages.PAGED_FROM) on every holder of `holders`
        (`holders()` when the save started): for each, whether its copy is stored, or why not."""
        return await self._after(list(holders), await self._put_index(list(holders), text), [])

    async def put_pages(
        self, holders: Sequence[tuple[int, str]], revision: int, pages: list[PageRef], texts: dict[int, bytes],
    ) -> list[tuple[bool, Any]]:
        """A paged catalog (catalog_pages.paged) on every holder of `holders`: each holder's missing pages (`texts`
        holds, by number, every page some holder lacks: `lacks`), then the root: for each, whether its copy is stored,
        or why not."""
        holders = list(holders)
        return await self._after(holders, await self._put_paged(holders, texts, pages, revision), pages)

    async def _after(
        self, holders: list[tuple[int, str]], outcomes: list[tuple[bool, Any]], roots: list[PageRef],
    ) -> list[tuple[bool, Any]]:
        """The pages of the root a holder took are mine now; those no root of it names go."""
        pages_before = self.pages
        if any(ok and stored for ok, stored in outcomes):
            self.pages = roots
        # written only when it changed: a small catalog's saves (one each upload) write nothing here
        if await self._remove_unnamed(holders, outcomes, roots) or self.pages != pages_before:
            await self._save_state()
        return outcomes

    async def _put_index(self, holders: list[tuple[int, str]], text: bytes) -> list[tuple[bool, Any]]:
        me = self.me.require()
        packet_ids = [self._index_packet_id(position) for position, _idurl in holders]

        def seal_and_sign() -> list[wire.Packet]:
            payload = blocks.seal(text, self.index_backup_id, me.idurl, me.key.public_key(), me.key)
            return [self.network.outbox("Data", idurl, payload, packet_id=packet_id)
                    for (_position, idurl), packet_id in zip(holders, packet_ids, strict=True)]

        packets = await self._worker(seal_and_sign)
        sends = [defer.ensureDeferred(self._send_copy(packet)) for packet in packets]
        return list(await defer.DeferredList(sends, consumeErrors=True))

    async def _put_paged(
        self, holders: list[tuple[int, str]], texts: dict[int, bytes], pages: list[PageRef], revision: int,
    ) -> list[tuple[bool, Any]]:
        """Each holder's missing pages (`texts`: the text of every page some holder lacks, by number), PAGES_AT_ONCE
        at a time, then to each holder that took all of them the root."""
        me = self.me.require()
        lacking = {idurl: [n for n in texts if pages[n].piece not in self.held.get(idurl, set())]
                   for _position, idurl in holders}
        wanted = sorted({number for numbers in lacking.values() for number in numbers})  # texts may hold more
        failed: dict[str, str] = {}
        for at in range(0, len(wanted), PAGES_AT_ONCE):
            group = wanted[at : at + PAGES_AT_ONCE]

            def seal(numbers: list[int] = group) -> list[bytes]:
                return [blocks.seal(texts[n], self._piece_id(pages[n].piece), me.idurl, me.key.public_key(), me.key)
                        for n in numbers]

            sealed = dict(zip(group, await self._worker(seal), strict=True))
            sends, asked = [], []
            for _position, idurl in holders:
                for number in lacking[idurl]:
                    if number in sealed and idurl not in failed:
                        sends.append(defer.ensureDeferred(self._send_page(idurl, pages[number], sealed[number])))
                        asked.append((idurl, pages[number].piece))
            for (idurl, piece), (ok, took) in zip(asked, await defer.DeferredList(sends, consumeErrors=True),
                                                  strict=True):
                if ok and took:
                    self.held.setdefault(idurl, set()).add(piece)
                elif idurl not in failed:
                    failed[idurl] = "refused a page" if ok else _why(took)
            del sealed
        root = paging.root_text(revision, pages)
        ready = [(position, idurl) for position, idurl in holders if idurl not in failed]
        stored = dict(zip([idurl for _p, idurl in ready], await self._put_index(ready, root), strict=True))
        await self._save_state()
        return [stored[idurl] if idurl in stored else (False, CatalogError(failed[idurl]))
                for _position, idurl in holders]

    async def _send_copy(self, packet: wire.Packet) -> bool:
        supplier = await self.identities.known(packet.remote_id)
        answer = await self.network.request(packet, supplier, timeout=CATALOG_TIMEOUT)
        return answer.command == "Ack"

    async def _send_page(self, idurl: str, page: PageRef, sealed: bytes) -> bool:
        packet = self.network.outbox("Data", idurl, sealed, packet_id=self._piece_id(page.piece))
        return await self._send_copy(packet)

    async def _remove_unnamed(
        self, holders: list[tuple[int, str]], outcomes: Sequence[tuple[bool, Any]], pages: list[PageRef],
    ) -> bool:
        """At each holder whose root is now this save's, the pages it took that no root of it names any more, in one
        DeleteFile (best effort: what stays is only space, and the next save asks again); whether any went."""
        named = {page.piece for page in pages}
        changed = False
        for (_position, idurl), (ok, stored) in zip(holders, outcomes, strict=True):
            gone = self.held.get(idurl, set()) - named
            if not (ok and stored) or not gone:
                continue
            ids = [self._piece_id(piece) for piece in sorted(gone)]
            # what stays is only space, and the next save asks again
            if await delete_at(self.network, self.identities, idurl, "DeleteFile", ids, CATALOG_TIMEOUT) < len(ids):
                continue
            if idurl in self.held:  # else forgotten meanwhile (it freed my space): it holds none
                self.held[idurl] &= named
                changed = True
        return changed

    # -- taking back

    async def newest(self, newer_than: int = -1) -> tuple[Catalog, list[PageRef]] | None:
        """The newest catalog of a revision over `newer_than` whose copy some holder has whole (a root with every page
        found at some holder), and its pages (none for one index piece). The pages of a root no newer are not asked
        for: they are the whole catalog, and the customer asks every 10 s while a position has no supplier."""
        holders = list(self.holders())
        asks = [defer.ensureDeferred(self._fetch_sealed(idurl, self._index_packet_id(position), INDEX_PATH))
                for position, idurl in holders]
        found: list[tuple[int, Catalog | list[PageRef]]] = []
        answered: list[str] = []
        self.answered = self.without_copy = 0
        self.asked = len(holders)
        for (_position, idurl), (ok, text) in zip(holders, await defer.DeferredList(asks, consumeErrors=True),
                                                  strict=True):
            if not ok and isinstance(text, Failure) and text.check(NotHeld):
                self.answered += 1
                self.without_copy += 1
                continue
            if not ok:
                continue
            self.answered += 1  # a copy, or an answer that is neither a copy nor "none"
            if text is None:
                continue
            answered.append(idurl)
            try:
                root = paging.parse_root(text)
                found.append(root if root is not None else (0, Catalog.parse(text)))
            except CatalogError as err:
                log.info("a catalog copy unreadable: {why}", why=str(err))
        # pages asked first of those that gave a copy: one that gave none may not answer, and each page would wait
        asked = answered + [idurl for _position, idurl in holders if idurl not in answered]
        tried: set[tuple[int, tuple[PageRef, ...]]] = set()
        for revision, copy in sorted(found, key=_revision_of, reverse=True):
            if _revision_of((revision, copy)) <= newer_than:
                break
            if isinstance(copy, Catalog):
                return copy, []
            if (revision, tuple(copy)) in tried:
                continue  # the same root from another holder: its pages were asked of every holder already
            tried.add((revision, tuple(copy)))
            pages = await self._fetch_pages(copy, asked)
            if pages is not None:
                try:
                    taken = paging.joined(revision, pages)
                except CatalogError as err:
                    log.warn("catalog revision {rev} unreadable: {why}", rev=revision, why=str(err))
                    continue
                return taken, copy
            log.warn("catalog revision {rev} left aside: a page of it is on no supplier", rev=revision)
        return None

    async def _fetch_pages(self, pages: list[PageRef], holders: list[str]) -> list[bytes] | None:
        """Every page's text, PAGES_AT_ONCE at a time, each from the first holder that has it as the root says;
        None when one is on no holder."""
        texts: list[bytes] = []
        for at in range(0, len(pages), PAGES_AT_ONCE):
            asks = [defer.ensureDeferred(self._fetch_page(page, holders)) for page in pages[at : at + PAGES_AT_ONCE]]
            got = [text for ok, text in await defer.DeferredList(asks, consumeErrors=True) if ok]
            if len(got) < len(asks) or any(text is None for text in got):
                return None
            texts += [text for text in got if text is not None]
        return texts

    async def _fetch_page(self, page: PageRef, holders: list[str]) -> bytes | None:
        for idurl in holders:
            try:
                text = await self._fetch_sealed(idurl, self._piece_id(page.piece), page.piece)
            except (NoAnswer, NotHeld):
                continue
            if text is not None and paging.digest_of(text) == page.digest:
                return text
        return None

    async def _fetch_sealed(self, idurl: str, packet_id: str, path: str) -> bytes | None:
        """The text of a copy of mine a holder has (`path`: what its block must say it is); None when it answered
        with anything else; NoAnswer when it did not answer."""
        me = self.me.require()
        try:
            answer = await ask(self.network, self.identities, idurl, "Retrieve", packet_id, CATALOG_TIMEOUT)
        except BitDustError as err:
            log.info("catalog copy {pid} from {idurl} not had: {why}", pid=packet_id, idurl=idurl, why=str(err))
            raise NoAnswer(str(err)) from None
        if answer.command != "Data":
            if answer.command == "Fail" and answer.payload == NOT_HELD:
                raise NotHeld(idurl)
            return None
        try:
            stored = packet_fast.parse(answer.payload)
            # signed by my key: mine, under whichever IDURL I had when I stored it (my identity may have moved)
            if not packet_signature_valid(stored, me.key.public_key()):
                log.warn("supplier {idurl} gave a catalog copy I did not sign", idurl=idurl)
                return None
            block = blocks.parse_block(stored.payload)
            if block.backup_id.rpartition(":")[2] != path:
                return None
            return blocks.open_block(block, me.key)
        except (wire.PacketFormatError, blocks.BlockError) as err:
            log.info("catalog copy from {idurl} unreadable: {why}", idurl=idurl, why=str(err))
            return None

    # -- checking

    async def page_intact(self, idurl: str, page: PageRef) -> bool | None:
        """Whether a holder gives back a page of mine as I stored it (the text whose SHA-256 the root names). One
        that does not is marked as lacking it, for the next save to send it again: the listings cannot tell, since
        pages are no versions (`F...`) a supplier lists. None (no verdict) when it did not answer, or the page is no
        longer one it should hold (a save replaced it meanwhile, the holder was replaced or forgotten)."""
        try:
            text: bytes | None = await self._fetch_sealed(idurl, self._piece_id(page.piece), page.piece)
        except NoAnswer:
            return None
        except NotHeld:
            text = None
        if text is not None and paging.digest_of(text) == page.digest:
            return True
        held = self.held.get(idurl)
        if held is None or page.piece not in held or page not in self.pages:
            return None
        held.discard(page.piece)
        await self._save_state()
        return False

    async def forget(self, *idurls: str) -> None:
        """Each of `idurls` holds none of my pages now, as far as I keep track (it freed my space, is hired again
        after it was replaced, or was replaced): the next save that has it as a holder sends it every page."""
        if [idurl for idurl in idurls if self.held.pop(idurl, None) is not None]:
            await self._save_state()

    async def taken(self, pages: list[PageRef]) -> None:
        """A catalog taken from the suppliers is mine now: its pages are the ones a save keeps where they did not
        change; which holder has them is not known, so the next save sends each holder all of them. Written down
        at once: a restart before that save would otherwise name every page anew, and the taken ones, held by no
        record, would stay on the suppliers for good."""
        self.pages, self.held = list(pages), {}
        await self._save_state()

    # -- what the pages are, kept here

    def _load_state(self) -> None:
        try:
            doc = json.loads(self._state_path.read_bytes())
            self.pages = [PageRef(str(p), str(d), int(s)) for p, d, s in doc["pages"]]
            self.held = {str(idurl): {str(p) for p in pieces} for idurl, pieces in doc["held"].items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            log.warn("{path} unreadable ({why}): the next save sends every page", path=str(self._state_path),
                     why=str(err))
            self.pages, self.held = [], {}

    async def _save_state(self) -> None:
        doc = {"pages": [[p.piece, p.digest, p.size] for p in self.pages],
               "held": {idurl: sorted(pieces) for idurl, pieces in self.held.items()}}
        try:
            await self._state_lock.run(self._worker, write_secret_file, self._state_path,
                                       json.dumps(doc, separators=(",", ":")).encode())
        except OSError as err:
            log.warn("{path} not written ({why}): the next save may send pages again", path=str(self._state_path),
                     why=str(err))


def _why(failure: Any) -> str:
    return str(failure.getErrorMessage()) if hasattr(failure, "getErrorMessage") else str(failure)


def _revision_of(found: tuple[int, Catalog | list[PageRef]]) -> int:
    revision, copy = found
    return copy.revision if isinstance(copy, Catalog) else revision
