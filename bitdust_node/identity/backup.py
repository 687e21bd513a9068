"""Backup file of my identity (IDURL sources, one a line, then the PEM key) and recovery from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.logger import Logger

from bitdust_node.crypto import keys
from bitdust_node.errors import InvalidInput, NotFound
from bitdust_node.identity import my_identity
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.net.http import CappedHttp, Unreachable
from bitdust_node.wire import identity_xml

log = Logger()
PEM_START = b"-----BEGIN"
MAX_BACKUP_BYTES = 32_768


def backup_bytes(me: my_identity.MyIdentity) -> bytes:
    sources = "".join(s + "\n" for s in me.identity.sources).encode("ascii")
    return sources + keys.private_key_to_pem(me.key)


def write_backup(me: my_identity.MyIdentity, path: Path) -> Path:
    path = path.expanduser()
    if path.is_dir():
        path = path / f"{me.name}.key"
    keys.write_secret_file(path, backup_bytes(me))
    return path


def parse_backup(data: bytes) -> tuple[list[str], Any]:
    if len(data) > MAX_BACKUP_BYTES:
        raise InvalidInput("backup file is too large")
    head, marker, pem = data.partition(PEM_START)
    if not marker:
        raise InvalidInput("backup file holds no PEM private key")
    sources = [line.strip().decode("ascii", "replace") for line in head.splitlines() if line.strip()]
    try:
        for source in sources:
            identity_xml.parse_idurl(source)
        key = keys.private_key_from_pem(marker + pem)
    except (identity_xml.IdentityFormatError, keys.InvalidKey) as err:
        raise InvalidInput(f"backup file is not valid: {err}") from None
    if not sources:
        raise InvalidInput("backup file holds no IDURL")
    return sources, key


async def fetch_mine(http: CappedHttp, sources: list[str], key: Any) -> identity_xml.Identity:
    """The newest revision any source serves that this key signed."""
    found: list[identity_xml.Identity] = []
    for source in sources:
        try:
            reply = await http.get(source)
            if reply.status != 200:
                continue
            identity = identity_xml.parse(reply.body)
            my_identity.check_pair(identity, key)
        except (
            Unreachable,
            identity_xml.IdentityFormatError,
            my_identity.InvalidIdentity,
        ) as err:
            log.info("cannot recover from {url}: {err}", url=source, err=str(err))
            continue
        if source in identity.sources:
            found.append(identity)
    if not found:
        raise NotFound("no identity server serves an identity signed by this key")
    return max(found, key=lambda i: i.revision)


async def recover(holder: MyIdentityHolder, http: CappedHttp, data: bytes) -> my_identity.MyIdentity:
    """My identity as its servers serve it, checked against the backup's key; the caller adopts it."""
    holder.refuse_if_exists()
    sources, key = parse_backup(data)
    identity = await fetch_mine(http, sources, key)
    me = my_identity.MyIdentity(identity, key)
    holder.refuse_if_exists()
    log.info("recovered identity {gid}", gid=me.global_id)
    return me
