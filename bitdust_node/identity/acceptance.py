"""The identity server's refusal rules, in the order PROTOCOL.md lists them."""

from __future__ import annotations

from collections.abc import Callable

from bitdust_node.errors import InvalidInput
from bitdust_node.identity.server_store import StoredIdentity
from bitdust_node.identity.signing import verify_identity
from bitdust_node.wire import identity_xml
from bitdust_node.wire.identity_xml import Identity


class IdentityRefused(InvalidInput):
    """An uploaded identity this server will not host."""


def check_upload(data: bytes, host: str, lookup: Callable[[str], StoredIdentity | None]) -> Identity:
    """The parsed identity if this server (answering for `host`) may store it, else IdentityRefused.

    `lookup(name)` gives what the server holds under that name, if anything.
    """
    try:
        identity = identity_xml.parse(data)
    except identity_xml.IdentityFormatError as err:
        raise IdentityRefused(str(err)) from None
    if not verify_identity(identity):
        raise IdentityRefused("identity signature is not valid")
    hosts = {identity_xml.parse_idurl(source).host for source in identity.sources}
    if host.lower() not in hosts:
        raise IdentityRefused(f"no source of this identity is on {host}")
    stored = lookup(identity.name)
    if stored is not None:
        if stored.identity.publickey != identity.publickey:
            raise IdentityRefused(f"name {identity.name!r} is taken by another key")
        if identity.revision < stored.identity.revision:
            raise IdentityRefused(f"revision {identity.revision} is older than the stored {stored.identity.revision}")
    return identity
