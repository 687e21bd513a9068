"""RSA keys: generate, load and save PEM (mode 0600), and the OpenSSH public key text of identities."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# key sizes seen on BitDust networks; anything else is refused
ALLOWED_KEY_SIZES = (1024, 2048, 3072, 4096)
# an OpenSSH RSA public key of 4096 bits is about 720 characters
MAX_PUBLIC_KEY_TEXT = 2048
MAX_PEM_BYTES = 16384


class InvalidKey(ValueError):
    """A key that cannot be read or is not an RSA key of an allowed size."""


def generate_key(bits: int) -> rsa.RSAPrivateKey:
    if bits not in ALLOWED_KEY_SIZES:
        raise InvalidKey(f"RSA key size must be one of {ALLOWED_KEY_SIZES}, not {bits}")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_to_pem(key: rsa.RSAPrivateKey) -> bytes:
    # traditional OpenSSL form (BEGIN RSA PRIVATE KEY), as BitDust writes it
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def private_key_from_pem(data: bytes) -> rsa.RSAPrivateKey:
    if len(data) > MAX_PEM_BYTES:
        raise InvalidKey("private key file is too large")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as err:
        raise InvalidKey(f"not a readable PEM private key: {err}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidKey("private key is not an RSA key")
    _check_size(key.key_size)
    return key


def openssh_public_text(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode("ascii")


def public_key_from_openssh(text: str) -> rsa.RSAPublicKey:
    if len(text) > MAX_PUBLIC_KEY_TEXT or not text.startswith("ssh-rsa "):
        raise InvalidKey("public key is not an OpenSSH ssh-rsa key")
    try:
        key = serialization.load_ssh_public_key(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm) as err:
        raise InvalidKey(f"unreadable public key: {err}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidKey("public key is not an RSA key")
    _check_size(key.key_size)
    return key


def write_private_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    """Write the PEM so that it is never readable by others, not even for a moment."""
    write_secret_file(path, private_key_to_pem(key))


def read_private_key(path: Path) -> rsa.RSAPrivateKey:
    return private_key_from_pem(path.read_bytes())


def write_secret_file(path: Path, data: bytes | bytearray | memoryview) -> None:
    """Atomically replace `path` with `data`, created with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a stale temp file may have had another mode
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def _check_size(bits: int) -> None:
    if bits not in ALLOWED_KEY_SIZES:
        raise InvalidKey(f"RSA key of {bits} bits is not allowed")
