"""The local identity: its signed file and private key in the home, loaded at node start."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import attrs
from cryptography.hazmat.primitives.asymmetric import rsa
from twisted.logger import Logger

from bitdust_node.crypto import keys
from bitdust_node.errors import BitDustError
from bitdust_node.identity.signing import sign_identity, verify_identity
from bitdust_node.wire import identity_xml
from bitdust_node.wire.identity_xml import Identity

log = Logger()
IDENTITY_DIR = "identity"
IDENTITY_FILE = "my_identity.xml"
KEY_FILE = "my_private_key.pem"
_MONTHS = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
NOT_EXIST = "local identity is not valid or not exist"
ALREADY_EXIST = "local identity already exist"


class InvalidIdentity(BitDustError):
    """An identity that does not verify or does not match its key."""


@attrs.define
class MyIdentity:
    identity: Identity
    key: rsa.RSAPrivateKey
    xml: bytes = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.xml = identity_xml.serialize(self.identity)

    @property
    def idurl(self) -> str:
        return self.identity.sources[0]

    @property
    def global_id(self) -> str:
        return self.identity.global_id

    @property
    def name(self) -> str:
        return self.identity.name

    @property
    def key_id(self) -> str:
        """My master key's id, `master$<global id>`: the KeyID of my packets, the key messages are sealed for."""
        return "master$" + self.global_id

    def describe(self, include_xml: bool = False) -> dict[str, Any]:
        result = describe_identity(self.identity)
        if include_xml:
            result["xml"] = self.xml.decode("utf-8")
        return result

    def next_revision(self, contacts: tuple[str, ...], now: float) -> MyIdentity:
        """The same identity with new contacts, one revision later, signed again."""
        changed = attrs.evolve(
            self.identity,
            contacts=contacts,
            date=identity_date(now),
            version="sources",
            revision=self.identity.revision + 1,
        )
        return MyIdentity(sign_identity(changed, self.key), self.key)

    def moved_to(self, sources: tuple[str, ...], revision: int) -> MyIdentity:
        """The same identity served from other sources (the first is my new IDURL), at `revision`, signed
        again; contacts and date stay, as official rotations keep them."""
        if revision <= self.identity.revision:
            raise InvalidIdentity(f"a rotation needs a revision above {self.identity.revision}, not {revision}")
        if not 1 <= len(set(sources)) == len(sources) <= identity_xml.MAX_SOURCES:
            raise InvalidIdentity(f"an identity needs 1 to {identity_xml.MAX_SOURCES} unique sources")
        if any(identity_xml.parse_idurl(s).name != self.name for s in sources):
            raise InvalidIdentity(f"every source must carry the name {self.name!r}")
        changed = attrs.evolve(self.identity, sources=sources, version="sources", revision=revision)
        return MyIdentity(sign_identity(changed, self.key), self.key)


def describe_identity(identity: Identity) -> dict[str, Any]:
    """The REST shape of an identity (identity/get, identity/cache/list)."""
    return {
        "certificates": list(identity.certificates),
        "contacts": list(identity.contacts),
        "date": identity.date,
        "global_id": identity.global_id,
        "idurl": identity.sources[0],
        "name": identity.name,
        "postage": identity.postage,
        "publickey": identity.publickey,
        "revision": str(identity.revision),
        "scrubbers": list(identity.scrubbers),
        "signature": identity.signature,
        "sources": list(identity.sources),
        "version": identity.version,
    }


def identity_date(now: float) -> str:
    """`%b %d, %Y` in UTC with English month names, whatever the locale."""
    t = time.gmtime(now)
    return f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:02d}, {t.tm_year}"


def check_pair(identity: Identity, key: rsa.RSAPrivateKey) -> None:
    if keys.openssh_public_text(key) != identity.publickey:
        raise InvalidIdentity("the private key does not match the identity's public key")
    if not verify_identity(identity):
        raise InvalidIdentity("the identity's signature is not valid")


def identity_paths(home: Path) -> tuple[Path, Path]:
    folder = home / IDENTITY_DIR
    return folder / IDENTITY_FILE, folder / KEY_FILE


def save(home: Path, me: MyIdentity) -> None:
    xml_path, key_path = identity_paths(home)
    keys.write_private_key(key_path, me.key)
    # the identity is public, but written the same atomic way
    keys.write_secret_file(xml_path, me.xml)


def load(home: Path) -> MyIdentity | None:
    xml_path, key_path = identity_paths(home)
    if not xml_path.exists() or not key_path.exists():
        return None
    try:
        identity = identity_xml.parse(xml_path.read_bytes())
        key = keys.read_private_key(key_path)
        check_pair(identity, key)
    except (
        OSError,
        identity_xml.IdentityFormatError,
        keys.InvalidKey,
        InvalidIdentity,
    ) as err:
        log.error(
            "local identity in {home} is not usable: {err}",
            home=str(home),
            err=str(err),
        )
        return None
    return MyIdentity(identity, key)
