"""Others' identities: fetched over HTTP, verified, kept on disk, refreshed on demand.

An identity is known by its public key, not only by its URL: every IDURL any revision listed maps to that
key, and the key to its newest revision. So an IDURL that rotated away (its server died, the owner moved
to other servers) still resolves to the newest revision, and a "rotation" signed by another key, or that
claims a source another key holds, is refused.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import attrs
from twisted.logger import Logger

from bitdust_node.crypto.keys import write_secret_file
from bitdust_node.errors import InvalidInput, NotFound
from bitdust_node.identity.signing import verify_identity
from bitdust_node.net.clock import INodeReactor
from bitdust_node.net.http import CappedHttp, Unreachable
from bitdust_node.wire import identity_xml
from bitdust_node.wire.identity_xml import MAX_IDENTITY_BYTES, Identity

log = Logger()
CACHE_DIR = "identitycache"


class IdentityMismatch(InvalidInput):
    """A fetched identity that does not fit what we know of it."""


def _file_name(idurl: str) -> str:
    # IDURLs hold characters unfit for file names; a digest is unique and safe
    return hashlib.sha1(idurl.encode("utf-8")).hexdigest() + ".xml"


@attrs.define
class IdentityCache:
    root: Path
    http: CappedHttp
    # the copy served (or carried) at each IDURL, any revision
    _items: dict[str, Identity] = attrs.field(factory=dict)
    # which public key holds each IDURL, and each key's newest revision
    _key_of: dict[str, str] = attrs.field(factory=dict)
    _latest: dict[str, Identity] = attrs.field(factory=dict)

    def load(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        found: list[tuple[str, Identity]] = []
        for path in self.root.glob("*.xml"):
            try:
                identity = identity_xml.parse(path.read_bytes())
            except (OSError, identity_xml.IdentityFormatError):
                continue
            if verify_identity(identity):
                own = next((s for s in identity.sources if _file_name(s) == path.name), None)
                if own is not None:
                    found.append((own, identity))
        # each file speaks first for its own IDURL: a copy elsewhere cannot take that IDURL to another key
        for own, identity in found:
            self._key_of.setdefault(own, identity.publickey)
        for own, identity in sorted(found, key=lambda item: item[1].revision):
            if self._key_of[own] == identity.publickey:
                self._remember(own, identity)

    def get(self, idurl: str) -> Identity | None:
        """The newest revision known of whoever holds `idurl` (also an IDURL it has rotated away from)."""
        key = self._key_of.get(idurl)
        return self._latest.get(key) if key is not None else None

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
        older = sorted(u for u, k in self._key_of.items() if k == key and u not in latest.sources)
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
        if known is None or (identity.revision >= known.revision and identity != known):
            write_secret_file(self.root / _file_name(idurl), xml)
        if latest is not None and identity.sources[0] != latest.sources[0] and identity.revision > latest.revision:
            log.info("identity {old} rotated to {new} (revision {rev})", old=latest.sources[0],
                     new=identity.sources[0], rev=identity.revision)
        self._remember(idurl, identity)
        return self._latest[identity.publickey]

    def _remember(self, idurl: str, identity: Identity) -> None:
        key = identity.publickey
        for source in identity.sources:
            self._key_of.setdefault(source, key)
        known = self._items.get(idurl)
        if known is None or identity.revision >= known.revision:
            self._items[idurl] = identity
        latest = self._latest.get(key)
        if latest is None or identity.revision > latest.revision:
            self._latest[key] = identity


def identity_http(reactor: INodeReactor) -> CappedHttp:
    """The HTTP client for identity files: replies capped at the largest identity a server may hold."""
    return CappedHttp(reactor, max_body=MAX_IDENTITY_BYTES)


def open_cache(home: Path, reactor: INodeReactor) -> IdentityCache:
    """The node's cache of others' identities, loaded from the home."""
    cache = IdentityCache(home / CACHE_DIR, identity_http(reactor))
    cache.load()
    return cache
