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
from typing import Any

import attrs
import pybase64
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding as asym
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bitdust_node.crypto import signature
from bitdust_node.wire import peer_json
from bitdust_node.wire.buffers import unfilled

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
    pad = 16 - len(plaintext) % 16
    encryptor = Cipher(algorithms.AES(session_key), modes.CBC(iv)).encryptor()
    # the ciphertext written into one buffer, the padded tail after the whole blocks: a megabyte is not copied
    ct = unfilled(len(plaintext) + pad + 15)  # read only up to what update_into wrote
    whole = len(plaintext) - len(plaintext) % 16
    done = encryptor.update_into(memoryview(plaintext)[:whole], ct)
    done += encryptor.update_into(plaintext[whole:] + bytes((pad,)) * pad, memoryview(ct)[done:])
    # compact JSON by hand: base64 never needs escaping, and a megabyte is not walked by the encoder
    ct_text = pybase64.b64encode(memoryview(ct)[:done])
    return b"".join((b'{"ct":"', ct_text, b'","iv":"', pybase64.b64encode(iv), b'"}'))


_ENCRYPTED_HEAD = b'{"ct":"'


def _encrypted_fields(encrypted: bytes) -> tuple[bytes | memoryview, bytes | memoryview]:
    """(ct, iv) in base64 from EncryptedData: the compact layout read directly (views, not copies), anything
    else as JSON."""
    if encrypted.startswith(_ENCRYPTED_HEAD) and encrypted.endswith(b'"}'):
        head, end = len(_ENCRYPTED_HEAD), len(encrypted) - 2
        middle = encrypted.find(b'","iv":"', head)
        plain = middle > 0 and encrypted.find(b"\\", head, end) < 0 and encrypted.find(b'"', head, middle) < 0
        if plain and encrypted.find(b'"', middle + 8, end) < 0:
            view = memoryview(encrypted)
            return view[head:middle], view[middle + 8:end]
    fields = peer_json.loads(encrypted, MAX_BLOCK_BYTES, max_depth=1)
    if not isinstance(fields, dict) or not all(isinstance(fields.get(k), str) for k in ("ct", "iv")):
        raise BlockError("encrypted data must hold the texts ct and iv")
    return fields["ct"].encode("ascii"), fields["iv"].encode("ascii")


def decrypt_data(encrypted: bytes, session_key: bytes) -> bytes:
    try:
        ct_text, iv_text = _encrypted_fields(encrypted)
        ct, iv = _base64(ct_text), _base64(iv_text)
        decryptor = Cipher(algorithms.AES(session_key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(ct) + decryptor.finalize()
    except (ValueError, KeyError, TypeError, UnicodeEncodeError, binascii.Error) as err:
        raise BlockError(f"encrypted data cannot be opened: {err}") from None
    pad = padded[-1] if padded else 0
    if not 1 <= pad <= 16 or padded[-pad:] != bytes((pad,)) * pad:
        raise BlockError("encrypted data cannot be opened: bad padding")
    return padded[:-pad]


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

    def signed_parts(self) -> tuple[bytes, ...]:
        """The signed text in pieces: the large EncryptedData is hashed as it is, not joined to the rest."""
        head = b"::::".join((
            self.creator_id.encode("utf-8"),
            self.backup_id.encode("utf-8"),
            str(self.block_number).encode(),
            self.session_key_type.encode("utf-8"),
            self.wrapped_key,
            str(self.length).encode(),
            b"True" if self.last_block else b"False",
            b"",
        ))
        return head, self.encrypted_data.encode("utf-8")

    def signed_text(self) -> bytes:
        return b"".join(self.signed_parts())


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
    return attrs.evolve(unsigned, signature=signature.sign(signer, unsigned.signed_parts()))


def open_block(block: Block, private: rsa.RSAPrivateKey) -> bytes:
    """The plaintext; BlockError if the key does not open it or the length is not the announced one."""
    if block.session_key_type != SESSION_KEY_TYPE:
        raise BlockError(f"session key type {block.session_key_type[:20]!r} is not supported")
    plaintext = decrypt_data(block.encrypted_data.encode("utf-8"), unwrap_key(private, block.wrapped_key))
    if len(plaintext) != block.length:
        raise BlockError(f"block holds {len(plaintext)} bytes, announced {block.length}")
    return plaintext


def seal(plaintext: bytes, backup_id: str, creator_id: str, to: rsa.RSAPublicKey, signer: rsa.RSAPrivateKey) -> bytes:
    """A payload of one block: the plaintext encrypted to `to`, signed by its creator (relays, file lists)."""
    return serialize_block(make_block(plaintext, creator_id, backup_id, to, signer))


def unseal(payload: bytes, key: rsa.RSAPrivateKey, backup_id: str, max_bytes: int = MAX_BLOCK_BYTES) -> bytes:
    """The plaintext of a one-block payload encrypted to me; BlockError when it is not one, or not this kind."""
    block = parse_block(payload, max_bytes)
    if block.backup_id != backup_id:
        raise BlockError(f"block is {block.backup_id[:40]!r}, expected {backup_id!r}")
    return open_block(block, key)


def block_signature_valid(block: Block, public: rsa.RSAPublicKey) -> bool:
    return signature.verify(public, block.signed_parts(), block.signature)


# printable ASCII but the quote and the backslash: what a JSON string holds unescaped
_PLAIN = bytes(b for b in range(0x20, 0x7F) if b not in b'"\\')
_PRINTABLE = bytes(range(0x20, 0x7F))


def _escaped_encrypted_data(text: str) -> str | None:
    """EncryptedData as a JSON string, built from its parts: base64 between quotes needs no other escape."""
    middle = text.rfind('","iv":"')
    if not (text.startswith('{"ct":"') and text.endswith('"}') and middle > 0 and text.isascii()):
        return None
    ct, iv = text[7:middle], text[middle + 8:-2]
    try:
        pybase64.b64decode(ct, validate=True), pybase64.b64decode(iv, validate=True)
    except ValueError:
        return None
    return "".join(('"{\\"ct\\":\\"', ct, '\\",\\"iv\\":\\"', iv, '\\"}"'))


def _json_string(text: str) -> str:
    """`text` as json.dumps writes it; a block's EncryptedData (ASCII, a few quotes) without the encoder's walk."""
    if len(text) > 4096:
        escaped = _escaped_encrypted_data(text)
        if escaped is not None:
            return escaped
    if text.isascii():
        raw = text.encode("ascii")
        rest = raw.translate(None, _PLAIN)
        if not rest:
            return '"' + text + '"'
        if not rest.translate(None, b'"\\'):
            return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return json.dumps(text)


def _base64(text: bytes | memoryview) -> bytes:
    """Strict base64 (SIMD: the standard decoder walks a megabyte some sixty times slower)."""
    return pybase64.b64decode(text, validate=True)


def serialize_block(block: Block) -> bytes:
    """Compact JSON with sorted keys, as official nodes write it (compact() would give the same bytes)."""
    return "".join((
        '{"b":', _json_string(block.backup_id),
        ',"c":', _json_string(block.creator_id),
        ',"e":', "true" if block.last_block else "false",
        ',"k":"', base64.b64encode(block.wrapped_key).decode("ascii"),
        '","l":', str(int(block.length)),
        ',"n":', str(int(block.block_number)),
        ',"p":', _json_string(block.encrypted_data),
        ',"s":', _json_string(block.signature),
        ',"t":', _json_string(block.session_key_type),
        "}",
    )).encode("ascii")


_P_OPEN, _S_OPEN = b',"p":"', b'","s":"'


_ESCAPED_HEAD, _ESCAPED_MIDDLE, _ESCAPED_TAIL = b'{\\"ct\\":\\"', b'\\",\\"iv\\":\\"', b'\\"}'


def _unescaped_p(body: bytes) -> bytes | None:
    """The text of a block's `p` from its escaped JSON body, when the only escapes in it are `\\"`."""
    middle = body.rfind(_ESCAPED_MIDDLE)
    if body.startswith(_ESCAPED_HEAD) and body.endswith(_ESCAPED_TAIL) and middle > 0:
        # EncryptedData as every node writes it: the escapes sit at the ends, base64 between them
        view = memoryview(body)  # the base64 between the escapes is copied once, into the result
        ct, iv = view[len(_ESCAPED_HEAD):middle], view[middle + len(_ESCAPED_MIDDLE):-len(_ESCAPED_TAIL)]
        try:
            pybase64.b64decode(ct, validate=True), pybase64.b64decode(iv, validate=True)
        except ValueError:
            return None
        return b"".join((b'{"ct":"', ct, b'","iv":"', iv, b'"}'))
    if body.translate(None, _PRINTABLE):
        return None
    text = body.replace(b'\\"', b'"')
    # any other escape, or a quote that was not escaped: the JSON decoder decides
    if b"\\" in text or body.count(b'"') != len(body) - len(text):
        return None
    return text


def _fast_fields(data: bytes) -> dict[str, Any] | None:
    """A compact block's fields with its large `p` cut out by hand, else None (the JSON decoder decides)."""
    start, end = data.find(_P_OPEN), data.rfind(_S_OPEN)
    if start < 0 or end < start:
        return None
    rest = data[:start] + b',"p":""' + data[end + 1:]
    text = _unescaped_p(data[start + len(_P_OPEN):end])
    if text is None or rest.translate(None, _PRINTABLE):
        return None
    try:
        fields = peer_json.loads(rest, len(rest), max_depth=1)
    except peer_json.PeerJsonError:
        return None
    if not isinstance(fields, dict) or fields.get("p") != "":
        return None
    fields["p"] = text.decode("ascii")
    return fields


def parse_block(data: bytes, max_bytes: int = MAX_BLOCK_BYTES) -> Block:
    if len(data) > max_bytes:
        raise BlockError(f"block of {len(data)} bytes is over the cap of {max_bytes}")
    fields = _fast_fields(data)
    try:
        fields = fields if fields is not None else peer_json.loads(data, max_bytes, max_depth=1)
    except peer_json.PeerJsonError as err:
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
    except ValueError:  # binascii.Error, or text that is not ASCII
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
