"""Encrypted blocks (PROTOCOL-P2P.md 5.3): data under a fresh AES-128-CBC session key, the key wrapped
with RSA-OAEP (SHA-1) for one public key. Relays, file lists, catalogs and messages use them.

EncryptedData is the compact JSON `{"ct": b64, "iv": b64}`. A Block adds who made it and what it is,
and the creator's signature over `c::::b::::n::::t::::<wrapped key bytes>::::l::::True|False::::p`.
"""

from __future__ import annotations

import base64
import binascii
import json
import os

import attrs
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as asym
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bitdust_node.crypto import signature

SESSION_KEY_BYTES = 16
SESSION_KEY_TYPE = "AES"
# the largest block any caller opens: a 64 MiB file piece in base64 inside JSON
MAX_BLOCK_BYTES = 96 * 1024 * 1024
_OAEP = asym.OAEP(mgf=asym.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
_FIELDS = ("b", "c", "e", "k", "l", "n", "p", "s", "t")


class BlockError(ValueError):
    """A block or encrypted data that cannot be read or opened."""


def compact(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def encrypt_data(plaintext: bytes, session_key: bytes, iv: bytes | None = None) -> bytes:
    """EncryptedData: AES-CBC with PKCS#7 padding and a random IV (or the one given, for tests)."""
    iv = iv if iv is not None else os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(session_key), modes.CBC(iv)).encryptor()
    ct = encryptor.update(padded) + encryptor.finalize()
    return compact({"ct": base64.b64encode(ct).decode(), "iv": base64.b64encode(iv).decode()})


def decrypt_data(encrypted: bytes, session_key: bytes) -> bytes:
    try:
        fields = json.loads(encrypted)
        ct = base64.b64decode(fields["ct"], validate=True)
        iv = base64.b64decode(fields["iv"], validate=True)
        decryptor = Cipher(algorithms.AES(session_key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(ct) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise BlockError(f"encrypted data cannot be opened: {err}") from None


def wrap_key(public: rsa.RSAPublicKey, session_key: bytes) -> bytes:
    return public.encrypt(session_key, _OAEP)


def unwrap_key(private: rsa.RSAPrivateKey, wrapped: bytes) -> bytes:
    try:
        key = private.decrypt(wrapped, _OAEP)
    except ValueError:
        raise BlockError("session key is not for this key") from None
    if len(key) not in (16, 24, 32):
        raise BlockError(f"session key of {len(key)} bytes")
    return key


@attrs.frozen
class Block:
    backup_id: str
    creator_id: str
    block_number: int
    last_block: bool
    session_key_type: str
    wrapped_key: bytes
    length: int
    encrypted_data: str
    signature: str = ""

    def signed_text(self) -> bytes:
        return b"::::".join((
            self.creator_id.encode("utf-8"),
            self.backup_id.encode("utf-8"),
            str(self.block_number).encode(),
            self.session_key_type.encode("utf-8"),
            self.wrapped_key,
            str(self.length).encode(),
            b"True" if self.last_block else b"False",
            self.encrypted_data.encode("utf-8"),
        ))


def make_block(
    plaintext: bytes,
    creator_id: str,
    backup_id: str,
    to: rsa.RSAPublicKey,
    signer: rsa.RSAPrivateKey,
    block_number: int = 0,
    last_block: bool = True,
) -> Block:
    session_key = os.urandom(SESSION_KEY_BYTES)
    unsigned = Block(
        backup_id=backup_id,
        creator_id=creator_id,
        block_number=block_number,
        last_block=last_block,
        session_key_type=SESSION_KEY_TYPE,
        wrapped_key=wrap_key(to, session_key),
        length=len(plaintext),
        encrypted_data=encrypt_data(plaintext, session_key).decode("ascii"),
    )
    return attrs.evolve(unsigned, signature=signature.sign(signer, unsigned.signed_text()))


def open_block(block: Block, private: rsa.RSAPrivateKey) -> bytes:
    """The plaintext; BlockError if the key does not open it or the length is not the announced one."""
    if block.session_key_type != SESSION_KEY_TYPE:
        raise BlockError(f"session key type {block.session_key_type[:20]!r} is not supported")
    plaintext = decrypt_data(block.encrypted_data.encode("utf-8"), unwrap_key(private, block.wrapped_key))
    if len(plaintext) != block.length:
        raise BlockError(f"block holds {len(plaintext)} bytes, announced {block.length}")
    return plaintext


def block_signature_valid(block: Block, public: rsa.RSAPublicKey) -> bool:
    return signature.verify(public, block.signed_text(), block.signature)


def serialize_block(block: Block) -> bytes:
    return compact({
        "b": block.backup_id,
        "c": block.creator_id,
        "e": block.last_block,
        "k": base64.b64encode(block.wrapped_key).decode(),
        "l": block.length,
        "n": block.block_number,
        "p": block.encrypted_data,
        "s": block.signature,
        "t": block.session_key_type,
    })


def parse_block(data: bytes, max_bytes: int = MAX_BLOCK_BYTES) -> Block:
    if len(data) > max_bytes:
        raise BlockError(f"block of {len(data)} bytes is over the cap of {max_bytes}")
    try:
        fields = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise BlockError(f"block is not JSON: {err}") from None
    if not isinstance(fields, dict) or tuple(sorted(fields)) != _FIELDS:
        raise BlockError("block must have exactly the fields b c e k l n p s t")
    text = ("b", "c", "k", "p", "s", "t")
    if not all(isinstance(fields[k], str) for k in text) or not isinstance(fields["e"], bool):
        raise BlockError("block fields have the wrong types")
    if not all(isinstance(fields[k], int) and not isinstance(fields[k], bool) and fields[k] >= 0 for k in "ln"):
        raise BlockError("block length and number must be whole numbers")
    try:
        wrapped = base64.b64decode(fields["k"], validate=True)
    except binascii.Error:
        raise BlockError("block session key is not base64") from None
    return Block(
        backup_id=fields["b"],
        creator_id=fields["c"],
        block_number=fields["n"],
        last_block=fields["e"],
        session_key_type=fields["t"],
        wrapped_key=wrapped,
        length=fields["l"],
        encrypted_data=fields["p"],
        signature=fields["s"],
    )
