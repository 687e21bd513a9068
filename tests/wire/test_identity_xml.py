"""The identity file format: vectors, byte-exact round trips, the signature scheme, hostile input."""

from __future__ import annotations

import hashlib

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from bitdust_node.crypto import keys
from bitdust_node.identity.signing import sign_identity, verify_identity
from bitdust_node.wire import identity_xml as ix
from tests.identity import hostile, vectors

NAMES = ("alice", "alice.rev0", "bob", "carol")


def independent_signature(text: bytes, n: int, d: int) -> str:
    """The scheme from PROTOCOL.md, by hand: SHA-1 twice, EMSA-PKCS1-v1_5 padding, m^d mod n."""
    digest = hashlib.sha1(hashlib.sha1(text).digest()).digest()
    digest_info = bytes.fromhex("3021300906052b0e03021a05000414") + digest
    k = (n.bit_length() + 7) // 8
    encoded = b"\x00\x01" + b"\xff" * (k - len(digest_info) - 3) + b"\x00" + digest_info
    return str(pow(int.from_bytes(encoded, "big"), d, n))


def independent_verify(text: bytes, n: int, e: int, sig: str) -> bool:
    digest = hashlib.sha1(hashlib.sha1(text).digest()).digest()
    k = (n.bit_length() + 7) // 8
    encoded = pow(int(sig), e, n).to_bytes(k, "big")
    return encoded.endswith(bytes.fromhex("3021300906052b0e03021a05000414") + digest) and encoded.startswith(
        b"\x00\x01\xff"
    )


def independent_signed_text(xml: bytes) -> bytes:
    """Signed text straight from the XML with string slicing, not through our parser."""
    s = xml.decode()

    def items(tag: str) -> list[str]:
        return [part.split(f"</{tag}>")[0] for part in s.split(f"<{tag}>")[1:]]

    fields = [
        "-".join(items("source")),
        "-".join(items("contact")),
        "-".join(items("scrubber")),
        items("postage")[0],
        items("date")[0].replace(" ", "_"),
        items("version")[0],
        items("revision")[0],
    ]
    return ("-" + "-".join(fields)).encode()


class VectorTests(unittest.TestCase):
    def test_vectors_round_trip_byte_for_byte(self) -> None:
        for name in NAMES:
            data = vectors.identity_bytes(name)
            self.assertEqual(ix.serialize(ix.parse(data)), data, name)

    def test_vectors_verify(self) -> None:
        for name in NAMES:
            self.assertTrue(verify_identity(vectors.identity(name)), name)

    def test_resigning_with_vector_key_reproduces_the_signature(self) -> None:
        for name in NAMES:
            identity = vectors.identity(name)
            key = vectors.private_key(name.split(".")[0])
            resigned = sign_identity(attrs.evolve(identity, signature=""), key)
            self.assertEqual(resigned.signature, identity.signature, name)
            self.assertEqual(ix.serialize(resigned), vectors.identity_bytes(name))

    def test_signed_text_matches_protocol_example_shape(self) -> None:
        text = ix.signed_text(vectors.identity("alice.rev0"))
        self.assertEqual(
            text,
            b"-http://127.0.0.1:8084/alice.xml-tcp://127.0.0.1:7771--1-Nov_25,_2026--0",
        )

    def test_vector_signatures_verify_independently(self) -> None:
        for name in NAMES:
            data = vectors.identity_bytes(name)
            identity = ix.parse(data)
            numbers = keys.public_key_from_openssh(identity.publickey).public_numbers()
            self.assertTrue(
                independent_verify(
                    independent_signed_text(data),
                    numbers.n,
                    numbers.e,
                    identity.signature,
                )
            )

    def test_global_id_and_idurl(self) -> None:
        identity = vectors.identity("alice")
        self.assertEqual(identity.global_id, "alice@127.0.0.1_8084")
        self.assertEqual(ix.parse_idurl("http://host-a.com/alice.xml").global_id, "alice@host-a.com")
        self.assertEqual(ix.IdUrl("host-a.com", 80, "bob").url, "http://host-a.com/bob.xml")


class SignHereVerifyThereTests(unittest.TestCase):
    def test_signature_made_here_verifies_with_independent_scheme(self) -> None:
        key = keys.generate_key(1024)
        identity = ix.Identity(
            sources=("http://127.0.0.2:8084/dave.xml", "http://host-b.com/dave.xml"),
            contacts=("tcp://127.0.0.2:7771",),
            scrubbers=("http://host-c.com/eve.xml",),
            date="Nov 25, 2026",
            version="sources",
            revision=7,
        )
        signed = sign_identity(identity, key)
        xml = ix.serialize(signed)
        numbers = key.private_numbers()
        public = numbers.public_numbers
        self.assertEqual(
            independent_signature(independent_signed_text(xml), public.n, numbers.d),
            signed.signature,
        )
        self.assertTrue(independent_verify(independent_signed_text(xml), public.n, public.e, signed.signature))
        self.assertEqual(ix.parse(xml), signed)

    def test_changed_field_breaks_signature(self) -> None:
        identity = vectors.identity("alice")
        for change in (
            {"revision": 2},
            {"contacts": ("tcp://10.0.0.1:7771",)},
            {"date": "Nov 26, 2026"},
            {"signature": str(int(identity.signature) + 1)},
            {"publickey": vectors.identity("bob").publickey},
        ):
            self.assertFalse(verify_identity(attrs.evolve(identity, **change)), change)

    def test_garbage_signatures_do_not_verify(self) -> None:
        identity = vectors.identity("alice")
        for sig in ("", "abc", "٣٤", "9" * 2000, str(1 << 2000), "-5"):
            self.assertFalse(verify_identity(attrs.evolve(identity, signature=sig)), sig[:10])


def _alice_with(old: bytes, new: bytes) -> bytes:
    data = vectors.identity_bytes("alice")
    assert old in data
    return data.replace(old, new, 1)


class HostileInputTests(unittest.TestCase):
    def assertRefused(self, data: bytes) -> None:
        self.assertRaises(ix.IdentityFormatError, ix.parse, data)

    def test_size_caps(self) -> None:
        self.assertRefused(b"")
        self.assertRefused(ix.PROLOG + b"<identity/>")
        self.assertRefused(_alice_with(b"<postage>1", b"<postage>1" + b" " * 50_000))

    def test_billion_laughs(self) -> None:
        self.assertRefused(hostile.billion_laughs(vectors.identity_bytes("alice")))

    def test_external_entity(self) -> None:
        self.assertRefused(hostile.external_entity(vectors.identity_bytes("alice")))
        self.assertRefused(_alice_with(b"<postage>1", b"<postage>&#49;"))

    def test_wrong_prolog(self) -> None:
        self.assertRefused(_alice_with(b'encoding="utf-8"', b'encoding="UTF-8"'))
        self.assertRefused(b" " + vectors.identity_bytes("alice"))

    def test_structure(self) -> None:
        self.assertRefused(_alice_with(b"<postage>1</postage>", b""))
        self.assertRefused(_alice_with(b"<certificates/>\n  <scrubbers/>", b"<scrubbers/>\n  <certificates/>"))
        self.assertRefused(_alice_with(b"<identity>", b'<identity a="1">'))
        self.assertRefused(_alice_with(b"<revision>1", b"<revision>x1"))
        self.assertRefused(_alice_with(b"<revision>1", b"<revision>01"))
        self.assertRefused(_alice_with(b"<contact>tcp://127.0.0.1:7771</contact>", b""))
        self.assertRefused(_alice_with(b"<postage>1</postage>", b"<postage>1</postage><!-- hi -->"))
        # an instruction or a CDATA section anywhere past the prolog (the parser would pass an instruction over)
        self.assertRefused(_alice_with(b"<postage>1</postage>", b"<postage>1</postage><?pi data?>"))
        self.assertRefused(_alice_with(b"<postage>1", b"<postage><?pi x?>1"))
        self.assertRefused(_alice_with(b"<postage>1", b"<postage><![CDATA[1]]>"))
        self.assertRefused(_alice_with(b"</identity>", b"</identity><x/>"))
        self.assertRefused(_alice_with(b"<revision>1</revision>", b"<revision>1<b/></revision>"))

    def test_sources_and_names(self) -> None:
        src = b"<source>http://127.0.0.1:8084/alice.xml</source>"
        self.assertRefused(_alice_with(src, b"<source>http://127.0.0.1:8084/../alice.xml</source>"))
        self.assertRefused(_alice_with(src, b"<source>http://127.0.0.1:8084/Alice.xml</source>"))
        self.assertRefused(_alice_with(src, b"<source>http://127.0.0.1:8084/al.xml</source>"))
        self.assertRefused(_alice_with(src, b"<source>ftp://127.0.0.1/alice.xml</source>"))
        self.assertRefused(_alice_with(src, src + src))
        self.assertRefused(_alice_with(src, src + b"<source>http://host-b.com/bob.xml</source>"))
        self.assertRefused(
            _alice_with(
                src,
                b"".join(b"<source>http://h%d.com/alice.xml</source>" % i for i in range(7)),
            )
        )

    def test_names(self) -> None:
        for good in ("abc", "a-b_c", "x" * 20, "123"):
            self.assertTrue(ix.is_valid_name(good))
        for bad in ("ab", "x" * 21, "../a", "a.b", "Abc", "ab c", "abc\n"):
            self.assertFalse(ix.is_valid_name(bad), bad)

    @settings(max_examples=300, deadline=None)
    @given(st.binary(min_size=0, max_size=2000))
    def test_fuzz_never_crashes(self, tail: bytes) -> None:
        try:
            ix.parse(ix.PROLOG + tail)
        except ix.IdentityFormatError:
            pass

    @settings(max_examples=200, deadline=None)
    @given(st.integers(min_value=0, max_value=900), st.binary(min_size=1, max_size=3))
    def test_mutations_never_crash(self, pos: int, junk: bytes) -> None:
        data = vectors.identity_bytes("alice")
        try:
            ix.parse(data[:pos] + junk + data[pos + len(junk) :])
        except ix.IdentityFormatError:
            pass
