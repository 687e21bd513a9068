"""Others' identities: fetched over HTTP, verified, kept on disk, refreshed on demand."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import attrs
from twisted.logger import Logger

from bitdust_node.crypto.keys import write_secret_file
from bitdust_node.errors import InvalidInput, NotFound
from bitdust_node.identity.signing import verify_identity
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
    _items: dict[str, Identity] = attrs.field(factory=dict)

    def load(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for path in self.root.glob("*.xml"):
            try:
                identity = identity_xml.parse(path.read_bytes())
            except (OSError, identity_xml.IdentityFormatError):
                continue
            if verify_identity(identity):
                for source in identity.sources:
                    if _file_name(source) == path.name:
                        self._items[source] = identity

    def get(self, idurl: str) -> Identity | None:
        return self._items.get(idurl)

    def items(self) -> list[Identity]:
        seen: dict[str, Identity] = {}
        for identity in self._items.values():
            seen[identity.sources[0]] = identity
        return [seen[k] for k in sorted(seen)]

    async def known(self, idurl: str) -> Identity:
        """The cached identity, else fetched from its server (NotFound when it cannot be)."""
        return self._items.get(idurl) or await self.fetch(idurl)

    async def fetch(self, idurl: str) -> Identity:
        """Download, verify and keep the identity at `idurl`, refreshing the cached copy."""
        identity_xml.parse_idurl(idurl)
        try:
            reply = await self.http.get(idurl)
        except Unreachable as err:
            raise NotFound(f"identity {idurl} could not be fetched: {err}") from None
        if reply.status != 200:
            raise NotFound(f"identity {idurl} is not served (HTTP {reply.status})")
        return self.accept(idurl, reply.body)

    def accept(self, idurl: str, xml: bytes) -> Identity:
        """Parse, check and keep the identity served at `idurl`; the one now cached."""
        try:
            identity = identity_xml.parse(xml)
        except identity_xml.IdentityFormatError as err:
            raise IdentityMismatch(f"identity at {idurl} is malformed: {err}") from None
        self.check(idurl, identity)
        return self.keep(idurl, identity, xml)

    def check(self, idurl: str, identity: Identity) -> None:
        """IdentityMismatch unless `identity` may stand for `idurl`: listed there, self-signed, same key as before."""
        if idurl not in identity.sources:
            raise IdentityMismatch(f"identity at {idurl} does not list that source")
        if not verify_identity(identity):
            raise IdentityMismatch(f"identity at {idurl} has a bad signature")
        known = self._items.get(idurl)
        if known is not None and known.publickey != identity.publickey:
            raise IdentityMismatch(f"identity at {idurl} changed its public key")

    def keep(self, idurl: str, identity: Identity, xml: bytes) -> Identity:
        """Cache a checked identity unless an older revision than the cached one; the one now cached."""
        known = self._items.get(idurl)
        if known is not None and identity.revision < known.revision:
            return known  # an older copy from a lagging server
        for source in identity.sources:
            self._items[source] = identity
        write_secret_file(self.root / _file_name(idurl), xml)
        return identity


def identity_http(reactor: Any) -> CappedHttp:
    """The HTTP client for identity files: replies capped at the largest identity a server may hold."""
    return CappedHttp(reactor, max_body=MAX_IDENTITY_BYTES)


def open_cache(home: Path, reactor: Any) -> IdentityCache:
    """The node's cache of others' identities, loaded from the home."""
    cache = IdentityCache(home / CACHE_DIR, identity_http(reactor))
    cache.load()
    return cache
