"""The identity file: hardened parsing (the standard library's expat behind checks of the raw bytes), byte-exact
serialization, the signed text, IDURLs and names.

Pure functions over bytes; signing lives in `identity/signing.py`.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit
from xml.etree import ElementTree as etree

import attrs

PROLOG = b'<?xml version="1.0" encoding="utf-8"?>'
MAX_IDENTITY_BYTES = 50_000
MIN_IDENTITY_BYTES = 500
MAX_SOURCES = 6
MAX_LIST_ITEMS = 32
MAX_FIELD_CHARS = 4096
NAME_RE = re.compile(r"[a-z0-9_-]{3,20}")
# the children of <identity>, in the one order BitDust writes them
FIELDS = (
    "sources",
    "contacts",
    "certificates",
    "scrubbers",
    "postage",
    "date",
    "version",
    "revision",
    "publickey",
    "signature",
)
LIST_ITEM = {
    "sources": "source",
    "contacts": "contact",
    "certificates": "certificate",
    "scrubbers": "scrubber",
}
# only the four escapes the writer makes; no character or entity references
_FOREIGN_REFERENCE = re.compile(rb"&(?!amp;|lt;|gt;|quot;)")
_SPACE = re.compile(r"\s")
_HOST_RE = re.compile(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")


class IdentityFormatError(ValueError):
    """Bytes that are not a well-formed identity file."""


@attrs.frozen
class IdUrl:
    """`http://host[:port]/name.xml`: where an identity is served."""

    host: str
    port: int
    name: str

    @property
    def url(self) -> str:
        netloc = self.host if self.port == 80 else f"{self.host}:{self.port}"
        return f"http://{netloc}/{self.name}.xml"

    @property
    def global_id(self) -> str:
        host = self.host if self.port == 80 else f"{self.host}_{self.port}"
        return f"{self.name}@{host}"


@attrs.frozen
class Identity:
    sources: tuple[str, ...]
    contacts: tuple[str, ...]
    certificates: tuple[str, ...] = ()
    scrubbers: tuple[str, ...] = ()
    postage: str = "1"
    date: str = ""
    version: str = ""
    revision: int = 0
    publickey: str = ""
    signature: str = ""

    @property
    def idurl(self) -> IdUrl:
        return parse_idurl(self.sources[0])

    @property
    def name(self) -> str:
        return self.idurl.name

    @property
    def global_id(self) -> str:
        return self.idurl.global_id


def is_valid_name(name: str) -> bool:
    return NAME_RE.fullmatch(name) is not None


@functools.lru_cache(maxsize=4096)  # pure, and asked several times per identity
def parse_idurl(url: str) -> IdUrl:
    """Read an IDURL, refusing anything but `http://host[:port]/<valid name>.xml`."""
    if len(url) > 300 or not url.isascii() or _SPACE.search(url):
        raise IdentityFormatError(f"invalid IDURL {url[:80]!r}")
    try:
        parts = urlsplit(url)
        port = parts.port or 80
    except ValueError:
        raise IdentityFormatError(f"invalid IDURL {url!r}") from None
    host = parts.hostname or ""
    if parts.scheme != "http" or parts.query or parts.fragment or parts.username or parts.password:
        raise IdentityFormatError(f"invalid IDURL {url!r}")
    if not _HOST_RE.fullmatch(host) or not 0 < port < 65536:
        raise IdentityFormatError(f"invalid host in IDURL {url!r}")
    path = parts.path
    if not path.startswith("/") or not path.endswith(".xml") or not is_valid_name(path[1:-4]):
        raise IdentityFormatError(f"invalid name in IDURL {url!r}")
    return IdUrl(host.lower(), port, path[1:-4])


def signed_text(identity: Identity) -> bytes:
    """The bytes the signature covers (certificates, public key and signature are not covered)."""
    parts = [
        "",
        "-".join(identity.sources),
        "-".join(identity.contacts),
        "-".join(identity.scrubbers),
        identity.postage,
        identity.date.replace(" ", "_"),
        identity.version,
        str(identity.revision),
    ]
    return "-".join(parts).encode("utf-8")


def _escape(text: str) -> str:
    # the same four replacements the reference writer makes
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;").replace(">", "&gt;")


def serialize(identity: Identity) -> bytes:
    lines = [PROLOG.decode("ascii"), "<identity>"]
    for field in FIELDS:
        value = getattr(identity, field)
        if field in LIST_ITEM:
            if not value:
                lines.append(f"  <{field}/>")
                continue
            lines.append(f"  <{field}>")
            item = LIST_ITEM[field]
            lines.extend(f"    <{item}>{_escape(v)}</{item}>" for v in value)
            lines.append(f"  </{field}>")
        else:
            lines.append(f"  <{field}>{_escape(str(value))}</{field}>")
    lines.append("</identity>")
    return "\n".join(lines).encode("utf-8")


def parse(data: bytes) -> Identity:
    """Parse and check the structure of an identity file; never resolves anything external."""
    if len(data) > MAX_IDENTITY_BYTES:
        raise IdentityFormatError(f"identity is larger than {MAX_IDENTITY_BYTES} bytes")
    if len(data) < MIN_IDENTITY_BYTES:
        raise IdentityFormatError(f"identity is smaller than {MIN_IDENTITY_BYTES} bytes")
    if not data.startswith(PROLOG):
        raise IdentityFormatError("identity does not start with the expected XML prolog")
    # identities never carry DTDs, entities, comments, CDATA or processing instructions: refused before the parser
    # sees them, so the standard library's expat parser (which would otherwise pass instructions and comments over
    # silently) has nothing to expand or resolve; it costs a node 4.6 MB less than lxml, which it replaces
    if b"<!" in data or _FOREIGN_REFERENCE.search(data) or data.find(b"<?", len(PROLOG)) >= 0:
        raise IdentityFormatError("identity contains a DTD, entity, comment, CDATA section or instruction")
    try:
        root = etree.fromstring(data, etree.XMLParser())
    except etree.ParseError as err:
        raise IdentityFormatError(f"identity is not well-formed XML: {err}") from None
    return _read_root(root)


def _read_root(root: etree.Element) -> Identity:
    if root.tag != "identity" or root.attrib or (root.text or "").strip():
        raise IdentityFormatError("root element must be a bare <identity>")
    children = list(root)
    if [c.tag for c in children] != list(FIELDS):
        raise IdentityFormatError("identity children are missing, unknown or out of order")
    values: dict[str, object] = {}
    for child in children:
        _check_plain(child)
        if child.tag in LIST_ITEM:
            values[child.tag] = _read_list(child, LIST_ITEM[child.tag])
        else:
            if len(child):
                raise IdentityFormatError(f"<{child.tag}> must hold text only")
            values[child.tag] = _read_text(child)
    revision = str(values["revision"])
    if (
        not revision.isascii()
        or not revision.isdigit()
        or len(revision) > 12
        or (len(revision) > 1 and revision.startswith("0"))
    ):
        raise IdentityFormatError("revision must be a non-negative integer")
    values["revision"] = int(revision)
    identity = Identity(**values)  # type: ignore[arg-type]
    _check_lists(identity)
    return identity


def _check_plain(el: etree.Element) -> None:
    if not isinstance(el.tag, str) or el.attrib or (el.tail or "").strip():
        raise IdentityFormatError("identity holds attributes, stray text or non-element nodes")


def _read_text(el: etree.Element) -> str:
    text = el.text or ""
    if len(text) > MAX_FIELD_CHARS:
        raise IdentityFormatError(f"<{el.tag}> is too long")
    return text


def _read_list(el: etree.Element, item: str) -> tuple[str, ...]:
    if (el.text or "").strip():
        raise IdentityFormatError(f"<{el.tag}> holds stray text")
    items = list(el)
    if len(items) > MAX_LIST_ITEMS:
        raise IdentityFormatError(f"<{el.tag}> has too many entries")
    out = []
    for child in items:
        _check_plain(child)
        if child.tag != item or len(child):
            raise IdentityFormatError(f"<{el.tag}> may only hold <{item}> text elements")
        out.append(_read_text(child))
    return tuple(out)


def _check_lists(identity: Identity) -> None:
    sources = identity.sources
    if not 1 <= len(sources) <= MAX_SOURCES or len(set(sources)) != len(sources):
        raise IdentityFormatError(f"identity needs 1 to {MAX_SOURCES} unique sources")
    names = {parse_idurl(s).name for s in sources}
    if len(names) != 1:
        raise IdentityFormatError("all sources must carry the same name")
    if not identity.contacts:
        raise IdentityFormatError("identity needs at least one contact")
    for contact in identity.contacts:
        if not contact.isascii() or "://" not in contact or _SPACE.search(contact):
            raise IdentityFormatError(f"invalid contact {contact[:80]!r}")
    if not identity.publickey.startswith("ssh-rsa "):
        raise IdentityFormatError("public key must be an OpenSSH ssh-rsa key")
