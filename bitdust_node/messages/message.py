"""A private message's payload (section 6): `{"k", "p", "r", "s"}` compact JSON, where `p` is the typed
JSON body encrypted with a fresh AES-128 key, `k` that key wrapped (RSA-OAEP) for the recipient, and `r`,
`s` the recipient's and sender's key ids. Pure: no reactor, no sockets."""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any

import attrs
from cryptography.hazmat.primitives.asymmetric import rsa

from bitdust_node.crypto import block
from bitdust_node.wire import peer_json, typed_json

MAX_MESSAGE_PAYLOAD = 256 * 1024
PACKET_ID_PREFIX = "private_"
# official ids are `private_<uid>`, some 25 characters: ten times that is still an honest id
MAX_MESSAGE_ID_CHARS = 256
# `alias$user@host_port`: an IDURL is at most 300 characters, official aliases are short (`master`, `share_<id>`)
MAX_KEY_ID_CHARS = 512


class MessageError(ValueError):
    """A Message payload that cannot be read or opened."""


class MessageTooLong(MessageError):
    """A Message whose id or key ids are longer than any honest one: refused before anything keeps them."""


def check_message_id(packet_id: str) -> None:
    if len(packet_id) > MAX_MESSAGE_ID_CHARS:
        raise MessageTooLong(f"message id of {len(packet_id)} characters is over the cap of {MAX_MESSAGE_ID_CHARS}")


@attrs.frozen
class SealedMessage:
    recipient_key_id: str
    sender_key_id: str
    wrapped_key: bytes
    encrypted: bytes


def seal(data: dict[str, Any], recipient_key_id: str, sender_key_id: str, recipient: rsa.RSAPublicKey) -> bytes:
    session_key = os.urandom(block.SESSION_KEY_BYTES)
    body = typed_json.dumps(data)
    return block.compact({
        "k": base64.b64encode(block.wrap_key(recipient, session_key)).decode(),
        "p": block.encrypt_data(body, session_key).decode("ascii"),
        "r": recipient_key_id,
        "s": sender_key_id,
    })


def parse(payload: bytes) -> SealedMessage:
    if len(payload) > MAX_MESSAGE_PAYLOAD:
        raise MessageError(f"message of {len(payload)} bytes is over the cap of {MAX_MESSAGE_PAYLOAD}")
    try:
        fields = peer_json.loads(payload, MAX_MESSAGE_PAYLOAD, max_depth=1)
    except peer_json.PeerJsonError as err:
        raise MessageError(f"message payload is not readable: {err}") from None
    if not isinstance(fields, dict) or not all(isinstance(fields.get(k), str) for k in "kprs"):
        raise MessageError("message payload must hold the texts k, p, r and s")
    for field, name in (("r", "recipient"), ("s", "sender")):
        if len(fields[field]) > MAX_KEY_ID_CHARS:
            raise MessageTooLong(f"{name} key id of {len(fields[field])} characters is over the cap of "
                                 f"{MAX_KEY_ID_CHARS}")
    try:
        wrapped_key = base64.b64decode(fields["k"], validate=True)
    except (ValueError, binascii.Error) as err:
        raise MessageError(f"message key is not base64: {err}") from None
    # the reader refuses lone surrogates: every text it gives encodes
    return SealedMessage(fields["r"], fields["s"], wrapped_key, fields["p"].encode("utf-8"))


def open_sealed(sealed: SealedMessage, private: rsa.RSAPrivateKey) -> dict[str, Any]:
    try:
        session_key = block.unwrap_key(private, sealed.wrapped_key)
        return typed_json.loads(block.decrypt_data(sealed.encrypted, session_key))
    except (block.BlockError, typed_json.TypedJsonError) as err:
        raise MessageError(str(err)) from None
