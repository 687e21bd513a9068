"""Hostile identity bodies shared by the parser and server tests."""

from __future__ import annotations

import itertools

from bitdust_node.wire.identity_xml import PROLOG


def billion_laughs(identity_xml: bytes) -> bytes:
    """The classic nested-entity bomb, expanded inside <postage> of an otherwise valid identity."""
    names = "abcdefghij"
    entities = ['<!ENTITY a "lollollollol">']
    for prev, cur in itertools.pairwise(names):
        entities.append(f'<!ENTITY {cur} "{("&" + prev + ";") * 10}">')
    dtd = "<!DOCTYPE identity [\n" + "\n".join(entities) + "\n]>"
    body = identity_xml[len(PROLOG) :].replace(b"<postage>1", b"<postage>&j;", 1)
    return PROLOG + b"\n" + dtd.encode() + body


def external_entity(identity_xml: bytes) -> bytes:
    dtd = b'<!DOCTYPE identity [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    body = identity_xml[len(PROLOG) :].replace(b"<postage>1", b"<postage>&x;", 1)
    return PROLOG + b"\n" + dtd + body
