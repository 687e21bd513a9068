"""Create a new identity: pick free servers from known-servers, sign, register, confirm, keep."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, threads
from twisted.logger import Logger

from bitdust_node.crypto import keys
from bitdust_node.errors import BitDustError, Conflict, InvalidInput
from bitdust_node.identity import my_identity
from bitdust_node.identity.cache import identity_http
from bitdust_node.identity.contacts import my_contacts
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.identity.known_servers import KnownServer, parse_known_servers
from bitdust_node.identity.propagate import Propagator
from bitdust_node.identity.signing import sign_identity
from bitdust_node.net.clock import INodeReactor
from bitdust_node.net.http import CappedHttp, Unreachable
from bitdust_node.settings import Settings
from bitdust_node.wire.identity_xml import Identity, is_valid_name

log = Logger()
PREFIX = "services/identity-propagate/"


class NameTaken(Conflict):
    """The wanted name is already registered on a known identity server."""


class NoIdentityServers(BitDustError):
    """Too few known identity servers answered."""

    http_status = 503
    exit_code = 1


async def server_says_free(http: CappedHttp, server: KnownServer, name: str) -> bool | None:
    """As official clients check: `GET /` (alive?) then `GET /<name>.xml` (404 = free).

    None when the server cannot be asked.
    """
    try:
        alive = await http.get(server.base_url)
        if alive.status != 200:
            return None
        reply = await http.get(server.idurl(name).url)
    except Unreachable as err:
        log.info("identity server {host} unreachable: {err}", host=server.host, err=str(err))
        return None
    if reply.status == 404:
        return True
    if reply.status == 200:
        return False
    return None


async def choose_servers(settings: Settings, http: CappedHttp, name: str) -> list[KnownServer]:
    known = parse_known_servers(str(settings.get(PREFIX + "known-servers")))
    if not known:
        raise InvalidInput(f"no identity servers in {PREFIX}known-servers")
    wanted_max = int(settings.get(PREFIX + "max-servers"))
    needed = min(int(settings.get(PREFIX + "min-servers")), len(known), wanted_max)
    answers = await defer.gatherResults([defer.ensureDeferred(server_says_free(http, s, name)) for s in known])
    taken = [s.host for s, free in zip(known, answers, strict=True) if free is False]
    if taken:
        raise NameTaken(f"name {name!r} is already taken on {', '.join(taken)}")
    free = [s for s, ok in zip(known, answers, strict=True) if ok][:wanted_max]
    if len(free) < needed:
        raise NoIdentityServers(f"only {len(free)} of {len(known)} known identity servers answered, {needed} needed")
    return free


async def _generate_key(reactor: INodeReactor, bits: int) -> Any:
    """A 4096-bit key takes seconds: make it in a thread when the reactor has a pool."""
    pool = getattr(reactor, "getThreadPool", None)
    if pool is None:
        return keys.generate_key(bits)
    return await threads.deferToThreadPool(reactor, pool(), keys.generate_key, bits)


async def create(
    settings: Settings, reactor: INodeReactor, holder: MyIdentityHolder, username: Any, http: CappedHttp | None = None,
    host: str | None = None,
) -> my_identity.MyIdentity:
    """A new identity registered on free known servers, its contact at `host` (my outside address)
    when known; the caller adopts it."""
    holder.refuse_if_exists()
    if not isinstance(username, str) or not is_valid_name(username):
        raise InvalidInput("username must be 3 to 20 characters of a-z, 0-9, - and _")
    http = http or identity_http(reactor)
    servers = await choose_servers(settings, http, username)
    key = await _generate_key(reactor, int(settings.get("personal/private-key-size")))
    identity = Identity(
        sources=tuple(s.idurl(username).url for s in servers),
        contacts=my_contacts(settings, host),
        date=my_identity.identity_date(reactor.seconds()),
    )
    me = my_identity.MyIdentity(sign_identity(identity, key), key)
    confirmed = await Propagator(http).publish([s.idurl(username) for s in servers], me.xml)
    needed = min(int(settings.get(PREFIX + "min-servers")), len(servers))
    if len(confirmed) < needed:
        raise NoIdentityServers(f"identity confirmed by {len(confirmed)} identity servers, {needed} needed")
    holder.refuse_if_exists()  # another create may have won meanwhile
    log.info("created identity {gid}", gid=me.global_id)
    return me
