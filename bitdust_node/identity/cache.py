"""Others' identities: fetched over HTTP, verified, kept on disk, refreshed on demand.

An identity is known by its public key, not only by its URL: every IDURL any revision listed maps to that
key, and the key to its newest revision. So an IDURL that rotated away (its server died, the owner moved
to other servers) still resolves to the newest revision, and a "rotation" signed by another key, or that
claims a source another key holds, is refused.

Anyone can make identities (a key and a self-signed file), and every packet may carry one: what the cache
holds is bounded. Past `max_bytes` of identity files, the users used least lately are forgotten (memory and
disk), except those pinned: the peers this node works with (its suppliers, customers, router, routed users,
correspondents). What counts is the identity files and, for each IDURL known, its length and what indexing it
costs: the memory held is about twice that. One user keeps at most `max_idurls_per_user` IDURLs, its oldest
former ones let go first. An IDURL let go stays bound to its key while its record lasts (former_keys.py).
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path

import attrs
from twisted.logger import Logger

from bitdust_node.crypto.keys import write_secret_file
from bitdust_node.errors import InvalidInput, NotFound
from bitdust_node.identity.former_keys import FormerKeys
from bitdust_node.identity.signing import verify_identity
from bitdust_node.net.clock import INodeReactor
from bitdust_node.net.http import CappedHttp, Unreachable
from bitdust_node.wire import identity_xml
from bitdust_node.wire.identity_xml import MAX_IDENTITY_BYTES, Identity

log = Logger()
CACHE_DIR = "identitycache"
# identity files and IDURLs kept (about 16,000 users of 2 KiB); each file costs about its size again in memory
MAX_CACHE_BYTES = 32 * 1024 * 1024
# IDURLs one user may hold here: its servers now and the ones it rotated away from
MAX_IDURLS_PER_USER = 64
# what an IDURL costs in the cache's indexes beside its characters (measured: about 200 bytes)
IDURL_OVERHEAD = 200
FORGOTTEN_FILE = "forgotten"
# who the node works with now: IDURLs whose users are never forgotten
Pinner = Callable[[], Iterable[str]]


class IdentityMismatch(InvalidInput):
    """A fetched identity that does not fit what we know of it."""


def _file_name(idurl: str) -> str:
    # IDURLs hold characters unfit for file names; a digest is unique and safe
    return hashlib.sha1(idurl.encode("utf-8")).hexdigest() + ".xml"


@attrs.define
class IdentityCache:
    root: Path
    http: CappedHttp
    max_bytes: int = MAX_CACHE_BYTES
    max_idurls_per_user: int = MAX_IDURLS_PER_USER
    # the copy served (or carried) at each IDURL, any revision, and the size of its file; what all cost
    _items: dict[str, Identity] = attrs.field(factory=dict)
    _sizes: dict[str, int] = attrs.field(factory=dict)
    _files: int = 0
    _held: int = 0
    # which public key holds each IDURL, each key's IDURLs (oldest learned first) and its newest revision
    _key_of: dict[str, str] = attrs.field(factory=dict)
    _idurls_of: dict[str, dict[str, None]] = attrs.field(factory=dict)
    _latest: dict[str, Identity] = attrs.field(factory=dict)
    # keys, the least lately used first
    _used: collections.OrderedDict[str, None] = attrs.field(factory=collections.OrderedDict)
    # keys read from the disk at start: forgotten only once the services have pinned their peers (`arm` empties it)
    _loaded: set[str] = attrs.field(factory=set)
    _armed: bool = False
    _pinners: list[Pinner] = attrs.field(factory=list)
    # a trim that freed too little waits until this much is held (0: none waits), not for the next identity
    _trim_above: int = 0
    _former: FormerKeys = attrs.field(init=False)
    forgotten: int = 0

    def __attrs_post_init__(self) -> None:
        self._former = FormerKeys(self.root / FORGOTTEN_FILE)

    def load(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        found: list[tuple[str, Identity, int, float]] = []
        for path in self.root.glob("*.xml"):
            try:
                xml = path.read_bytes()
                identity = identity_xml.parse(xml)
                used = path.stat().st_mtime
            except (OSError, identity_xml.IdentityFormatError):
                continue
            if verify_identity(identity):
                own = next((s for s in identity.sources if _file_name(s) == path.name), None)
                if own is not None:
                    found.append((own, identity, len(xml), used))
        # each file speaks first for its own IDURL: a copy elsewhere cannot take that IDURL to another key
        for own, identity, _size, _used in found:
            self._key_of.setdefault(own, identity.publickey)
        for own, identity, size, _used in sorted(found, key=lambda item: item[1].revision):
            if self._key_of.get(own) == identity.publickey:
                self._remember(own, identity, size, capped=False)
        # capped once every revision is in: against each user's true newest one
        for key in [k for k, idurls in self._idurls_of.items() if len(idurls) > self.max_idurls_per_user]:
            self._let_go_former(key, keep="")
        # when each user's file last changed stands for when it was last used (pings do not rewrite them)
        for _own, identity, _size, _used in sorted(found, key=lambda item: item[3]):
            if identity.publickey in self._latest:
                self._used[identity.publickey] = None
                self._used.move_to_end(identity.publickey)
        self._loaded = set(self._latest)
        self._trim_above = 0
        self._former.load()
        self._former.flush()  # what the load-time cap let go

    def pin(self, pinner: Pinner) -> Callable[[], None]:
        """Never forget the users whose IDURLs `pinner()` names (asked only when the cache is over its bound);
        the call returned stops it."""
        self._pinners.append(pinner)

        def unpin() -> None:
            if pinner in self._pinners:
                self._pinners.remove(pinner)
                self._trim_above = 0  # its users may go at the next trim

        return unpin

    def arm(self) -> None:
        """The services have started and pinned their peers: users read from the disk may be forgotten too."""
        self._armed = True
        self._loaded.clear()
        self._trim_above = 0
        self._trim()
        self._former.flush()

    @property
    def armed(self) -> bool:
        return self._armed

    def pinned(self) -> set[str]:
        """The IDURLs the pinners name now."""
        return {idurl for pinner in list(self._pinners) for idurl in pinner()}

    def held_bytes(self) -> int:
        """What counts against `max_bytes`: the files, and the IDURLs known."""
        return self._held

    def file_bytes(self) -> int:
        return self._files

    def get(self, idurl: str) -> Identity | None:
        """The newest revision known of whoever holds `idurl` (also an IDURL it has rotated away from)."""
        latest = self._latest.get(self._key_of.get(idurl, ""))
        if latest is not None:
            self._used.move_to_end(latest.publickey)
        return latest

    def items(self) -> list[Identity]:
        """One identity per user (the newest revision), by IDURL."""
        return sorted(self._latest.values(), key=lambda i: i.sources[0])

    def newest_idurl(self, idurl: str) -> str:
        """The IDURL the user known at `idurl` goes by now (`idurl` itself when unknown)."""
        latest = self.get(idurl)
        return latest.sources[0] if latest is not None else idurl

    def aliases(self, idurl: str) -> list[str]:
        """Every IDURL known for the user at `idurl`: the newest revision's sources first, then older ones."""
        key = self._key_of.get(idurl)
        if key is None:
            return [idurl]
        latest = self._latest[key]
        older = sorted(u for u in self._idurls_of[key] if u not in latest.sources)
        return [*latest.sources, *older]

    def same_user(self, one: str, other: str) -> bool:
        """Whether two IDURLs name the same user (one key), as far as this node knows."""
        if one == other:
            return True
        key = self._key_of.get(one)
        return key is not None and key == self._key_of.get(other)

    async def known(self, idurl: str) -> Identity:
        """The cached identity, else fetched from its server (NotFound when it cannot be)."""
        return self.get(idurl) or await self.fetch(idurl)

    async def fetch(self, idurl: str) -> Identity:
        """Download, verify and keep the identity at `idurl`, refreshing the cached copy; when that server
        cannot serve it, the other sources of the newest known revision are asked, as official nodes do."""
        identity_xml.parse_idurl(idurl)
        try:
            return await self._fetch_one(idurl)
        except NotFound as err:
            first_error = err
        latest = self.get(idurl)
        for other in latest.sources if latest is not None else ():
            if other == idurl:
                continue
            try:
                return await self._fetch_one(other)
            except (NotFound, IdentityMismatch) as err:
                log.info("identity {idurl} not served at {other} either: {why}", idurl=idurl, other=other,
                         why=str(err))
        raise first_error

    async def _fetch_one(self, idurl: str) -> Identity:
        try:
            reply = await self.http.get(idurl)
        except Unreachable as err:
            raise NotFound(f"identity {idurl} could not be fetched: {err}") from None
        if reply.status != 200:
            raise NotFound(f"identity {idurl} is not served (HTTP {reply.status})")
        return self.accept(idurl, reply.body)

    def accept(self, idurl: str, xml: bytes) -> Identity:
        """Parse, check and keep the identity served at `idurl`; the newest revision now known of its user."""
        try:
            identity = identity_xml.parse(xml)
        except identity_xml.IdentityFormatError as err:
            raise IdentityMismatch(f"identity at {idurl} is malformed: {err}") from None
        self.check(idurl, identity)
        return self.keep(idurl, identity, xml)

    def check(self, idurl: str, identity: Identity) -> None:
        """IdentityMismatch unless `identity` may stand for `idurl`: listed there, self-signed, and no source
        it lists (old or new) held by another key, nor renamed; a rotation must come from the same key."""
        if idurl not in identity.sources:
            raise IdentityMismatch(f"identity at {idurl} does not list that source")
        if not verify_identity(identity):
            raise IdentityMismatch(f"identity at {idurl} has a bad signature")
        for source in identity.sources:
            holder = self._key_of.get(source)
            if holder is None and self._former.claimed_by_another(source, identity.publickey):
                raise IdentityMismatch(f"identity at {idurl} claims {source}, which another key held")
            if holder is not None and holder != identity.publickey:
                if source == idurl:
                    raise IdentityMismatch(f"identity at {idurl} changed its public key")
                raise IdentityMismatch(f"identity at {idurl} claims {source}, which another key holds")
        latest = self._latest.get(identity.publickey)
        if latest is not None and latest.name != identity.name:
            raise IdentityMismatch(f"identity at {idurl} renames {latest.name!r} to {identity.name!r}")

    def keep(self, idurl: str, identity: Identity, xml: bytes) -> Identity:
        """Cache a checked identity; the newest revision of its user, which an older copy never replaces."""
        latest = self._latest.get(identity.publickey)
        if latest is not None and identity.revision < latest.revision and identity.sources != latest.sources:
            # an old copy with other sources (a lagging server, a replay): its IDURLs are the user's, but
            # it moves nothing
            log.info("identity of {name} at {idurl}: revision {rev} is older than {latest}, kept aside",
                     name=identity.name, idurl=idurl, rev=identity.revision, latest=latest.revision)
        known = self._items.get(idurl)
        # a peer's every ping carries its identity: the same one is not written (and fsynced) again
        written = known is None or (identity.revision >= known.revision and identity != known)
        if written:
            write_secret_file(self.root / _file_name(idurl), xml)
            if known is not None:
                # sources only the file replaced listed: after a restart no file would bind them to the key
                for source in known.sources:
                    if source not in identity.sources and source not in self._items:
                        self._former.let_go(source, identity.publickey)
        if latest is not None and identity.sources[0] != latest.sources[0] and identity.revision > latest.revision:
            log.info("identity {old} rotated to {new} (revision {rev})", old=latest.sources[0],
                     new=identity.sources[0], rev=identity.revision)
        self._remember(idurl, identity, len(xml) if written else None)
        key = identity.publickey
        self._used[key] = None
        self._used.move_to_end(key)
        self._trim(spare=key)
        self._former.flush()
        return self._latest[key]

    def _remember(self, idurl: str, identity: Identity, size: int | None, capped: bool = True) -> None:
        """`size`: of the file now at `idurl`, None when it was not written (the one there stays)."""
        key = identity.publickey
        idurls = self._idurls_of.setdefault(key, {})
        for source in identity.sources:
            if self._key_of.setdefault(source, key) == key and source not in idurls:
                idurls[source] = None
                self._held += len(source) + IDURL_OVERHEAD
                self._former.taken_back(source)  # its user is back (or check let a new one have it)
        known = self._items.get(idurl)
        if known is None or identity.revision >= known.revision:
            self._items[idurl] = identity
            if size is not None:
                growth = size - self._sizes.get(idurl, 0)
                self._files += growth
                self._held += growth
                self._sizes[idurl] = size
        latest = self._latest.get(key)
        if latest is None or identity.revision > latest.revision:
            self._latest[key] = identity
        if capped and len(idurls) > self.max_idurls_per_user:
            self._let_go_former(key, keep=idurl)

    def _let_go_former(self, key: str, keep: str) -> None:
        """The user's oldest IDURLs its newest revision no longer lists, forgotten until it holds no more than
        allowed (a key can sign any number of identities, each claiming new sources)."""
        idurls = self._idurls_of[key]
        current = self._latest[key].sources
        for idurl in [u for u in idurls if u not in current and u != keep][: len(idurls) - self.max_idurls_per_user]:
            self._forget_idurl(key, idurl)

    def _forget_idurl(self, key: str, idurl: str) -> None:
        """Let `idurl` go (its file too), its binding to `key` kept in the records (written at the next flush)."""
        del self._idurls_of[key][idurl]
        del self._key_of[idurl]
        self._held -= len(idurl) + IDURL_OVERHEAD
        if self._items.pop(idurl, None) is not None:
            size = self._sizes.pop(idurl)
            self._files -= size
            self._held -= size
            try:
                (self.root / _file_name(idurl)).unlink(missing_ok=True)
            except OSError as err:  # a failing disk: the file stays (read back at start), the memory is freed
                log.warn("identity file of {idurl} not removed: {why}", idurl=idurl, why=str(err))
        self._former.let_go(idurl, key)

    def _trim(self, spare: str | None = None) -> None:
        """Past `max_bytes`, forget the users used least lately until the files kept fill 7/8 of it (a flood
        trims once every so many identities, not on each): never `spare` (just kept), the pinned, nor before
        `arm` those read from the disk."""
        if self._held <= max(self.max_bytes, self._trim_above):
            return
        target = self.max_bytes - self.max_bytes // 8
        pinned = {self._key_of.get(idurl) for idurl in self.pinned()}
        for key in list(self._used):
            if self._held <= target:
                break
            if key == spare or key in pinned or key in self._loaded:
                continue
            log.info("identity of {name} forgotten: the cache holds {held} bytes", name=self._latest[key].name,
                     held=self._held)
            for idurl in list(self._idurls_of[key]):
                self._forget_idurl(key, idurl)
            del self._idurls_of[key], self._latest[key], self._used[key]
            self._loaded.discard(key)
            self.forgotten += 1
        # what is pinned (or read from the disk, before arm) holds more than the target: wait for 1/8 more
        self._trim_above = self._held + self.max_bytes // 8 if self._held > target else 0


def identity_http(reactor: INodeReactor) -> CappedHttp:
    """The HTTP client for identity files: replies capped at the largest identity a server may hold."""
    return CappedHttp(reactor, max_body=MAX_IDENTITY_BYTES)


def open_cache(home: Path, reactor: INodeReactor) -> IdentityCache:
    """The node's cache of others' identities, loaded from the home."""
    cache = IdentityCache(home / CACHE_DIR, identity_http(reactor))
    cache.load()
    return cache
