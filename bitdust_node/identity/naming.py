"""Naming a user as a person would: an IDURL, a global id (`bob@host_8084`, with an optional key alias
`master$`), or a bare nickname looked up among known identities, then on the known identity servers."""

from __future__ import annotations

import re

from bitdust_node.errors import InvalidInput, NotFound
from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.known_servers import KnownServer
from bitdust_node.wire.identity_xml import IdUrl, is_valid_name, parse_idurl

_GLOBAL_ID = re.compile(r"(?:[a-z0-9_-]+\$)?([a-z0-9_-]{3,20})@([A-Za-z0-9.-]+?)(?:_(\d{1,5}))?")


def idurl_of_global_id(text: str) -> str | None:
    match = _GLOBAL_ID.fullmatch(text)
    if match is None:
        return None
    name, host, port = match.groups()
    return IdUrl(host.lower(), int(port) if port else 80, name).url


async def resolve_user(text: str, cache: IdentityCache, servers: list[KnownServer]) -> str:
    """The IDURL of the user named by `text`; NotFound when no one by that name is known."""
    text = text.strip()
    if text.startswith(("http://", "https://")):
        parse_idurl(text)  # IdentityFormatError (a ValueError) for a malformed one
        return text
    by_global_id = idurl_of_global_id(text)
    if by_global_id is not None:
        return by_global_id
    if not is_valid_name(text):
        raise InvalidInput(f"{text[:60]!r} is not a nickname, global id or IDURL")
    for identity in cache.items():
        if identity.name == text:
            return identity.sources[0]
    for server in servers:
        idurl = server.idurl(text).url
        try:
            await cache.fetch(idurl)
        except (NotFound, InvalidInput):
            continue
        return idurl
    raise NotFound(f"no user {text!r} is known here or on the known identity servers")
