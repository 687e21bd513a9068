"""RSA key files and OpenSSH public key text."""

from __future__ import annotations

import stat
from pathlib import Path

from twisted.trial import unittest

from bitdust_node.crypto import keys
from tests.identity import vectors


class KeyFileTests(unittest.TestCase):
    def test_pem_written_with_mode_0600_and_read_back(self) -> None:
        key = vectors.private_key("alice")
        path = Path(self.mktemp()) / "my_keys" / "master.pem"
        keys.write_private_key(path, key)
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        self.assertTrue(path.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----"))
        again = keys.read_private_key(path)
        self.assertEqual(again.private_numbers(), key.private_numbers())

    def test_overwrite_keeps_0600_even_if_file_was_open(self) -> None:
        path = Path(self.mktemp())
        path.write_bytes(b"old")
        path.chmod(0o644)
        keys.write_secret_file(path, b"new")
        self.assertEqual(path.read_bytes(), b"new")
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)

    def test_a_secret_file_is_written_from_any_bytes_like(self) -> None:
        path = Path(self.mktemp())
        for data, whole in ((bytearray(b"ab"), b"ab"), (memoryview(b"xcdx")[1:3], b"cd")):
            keys.write_secret_file(path, data)
            self.assertEqual(path.read_bytes(), whole)
        self.assertEqual(sorted(p.name for p in path.parent.iterdir()), [path.name])  # no temp file left

    def test_vector_key_gives_the_vector_public_key_text(self) -> None:
        for name in ("alice", "bob", "carol"):
            identity = vectors.identity(name)
            self.assertEqual(keys.openssh_public_text(vectors.private_key(name)), identity.publickey)

    def test_generate_respects_size(self) -> None:
        self.assertEqual(keys.generate_key(1024).key_size, 1024)
        self.assertRaises(keys.InvalidKey, keys.generate_key, 512)

    def test_public_key_round_trip(self) -> None:
        text = vectors.identity("bob").publickey
        public = keys.public_key_from_openssh(text)
        self.assertEqual(keys.openssh_public_text(public), text)

    def test_bad_public_keys_refused(self) -> None:
        for bad in ("", "ssh-dss AAAA", "ssh-rsa !!!!", "ssh-rsa " + "A" * 5000):
            self.assertRaises(keys.InvalidKey, keys.public_key_from_openssh, bad)

    def test_bad_pem_refused(self) -> None:
        self.assertRaises(
            keys.InvalidKey,
            keys.private_key_from_pem,
            b"-----BEGIN RSA PRIVATE KEY-----\nxx\n",
        )
        self.assertRaises(keys.InvalidKey, keys.private_key_from_pem, b"x" * 20000)
