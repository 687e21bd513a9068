"""The protocol's floor: the CPU the official scheme makes each side of a transfer spend, timed on this machine
in the same run as the transfer it is held against (its speed changes by the hour: DESIGN.md).

DESIGN.md, "What things cost": the official signature scheme hashes every payload byte with SHA-1 on both sides;
that, not raw TCP, is the floor. A floor here is the sum of the work the wire format cannot do without, each
piece timed alone in this process (thread CPU time, the best of a few tries on a buffer of several MiB, so a
busy minute of the machine does not lower the floor):

- a signed packet: SHA-1 over its payload (the signed text is the payload between short fields) and one RSA
  signature by its sender; SHA-1 again and one RSA verification by its receiver;
- base64: a file piece travels as the base64 of its bytes (encoded by who stores it, decoded by who reads it);
- a customer's block: sealed (AES-256-GCM, its key wrapped with RSA-OAEP) and cut into shares (zfec), and the
  reverse on the way back.

No copy, framing, parsing, disk or reactor turn is in a floor: what a node spends over it is its own overhead.
`Costs.measure()` times the pieces; the benchmarks compose them (`signed_packets` for one packet stream).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable

MIB = 1 << 20
# enough bytes that a try is milliseconds long, few enough that measuring stays well under a second
_BUFFER = 4 * MIB
_TRIES = 5


def _best(work: Callable[[], object], tries: int = _TRIES) -> float:
    """The fewest CPU seconds of this thread that `work` took over `tries` runs."""
    best = float("inf")
    for _ in range(tries):
        started = time.thread_time()
        work()
        best = min(best, time.thread_time() - started)
    return best


@dataclasses.dataclass(frozen=True)
class Costs:
    """What each piece of the protocol's work costs here: per MiB of input, or per operation (ms)."""

    sha1_mib: float
    base64_encode_mib: float  # per MiB of raw bytes in
    base64_decode_mib: float  # per MiB of raw bytes out
    aes_gcm_encrypt_mib: float
    aes_gcm_decrypt_mib: float
    zfec_encode_mib: float  # 2 of 4, per MiB of block in
    zfec_decode_mib: float  # 2 of 4 from one data and one parity share, per MiB of block out
    rsa_sign: float
    rsa_verify: float
    rsa_wrap: float  # RSA-OAEP encryption of a 32-byte key with the public key
    rsa_unwrap: float
    key_bits: int

    @classmethod
    def measure(cls, key_bits: int = 2048) -> Costs:
        import hashlib

        import pybase64
        import zfec
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        data = os.urandom(_BUFFER)
        mib = _BUFFER / MIB
        encoded = pybase64.b64encode(data)
        text = encoded[:_BUFFER]
        aes = AESGCM(AESGCM.generate_key(bit_length=256))
        nonce = os.urandom(12)
        sealed = aes.encrypt(nonce, data, b"place")
        half = _BUFFER // 2
        primary = [data[:half], data[half:]]
        encoder, decoder = zfec.Encoder(2, 4), zfec.Decoder(2, 4)
        parity = encoder.encode(primary, [2, 3])
        key = rsa.generate_private_key(public_exponent=65537, key_size=key_bits)
        public = key.public_key()
        digest = hashlib.sha1(b"signed text").digest()
        signature = key.sign(digest, padding.PKCS1v15(), hashes.SHA1())
        oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
        wrapped = public.encrypt(os.urandom(32), oaep)
        per = 1000.0  # ms
        rounds = 20  # RSA operations are timed 20 at a time
        return cls(
            sha1_mib=_best(lambda: hashlib.sha1(text).digest()) * per / mib,
            base64_encode_mib=_best(lambda: pybase64.b64encode(data)) * per / mib,
            base64_decode_mib=_best(lambda: pybase64.b64decode(encoded, validate=True)) * per / mib,
            aes_gcm_encrypt_mib=_best(lambda: aes.encrypt(nonce, data, b"place")) * per / mib,
            aes_gcm_decrypt_mib=_best(lambda: aes.decrypt(nonce, sealed, b"place")) * per / mib,
            zfec_encode_mib=_best(lambda: encoder.encode(primary, [2, 3])) * per / mib,
            zfec_decode_mib=_best(lambda: decoder.decode([primary[0], parity[1]], [0, 3])) * per / mib,
            rsa_sign=_best(lambda: [key.sign(digest, padding.PKCS1v15(), hashes.SHA1()) for _ in range(rounds)])
            * per / rounds,
            rsa_verify=_best(lambda: [public.verify(signature, digest, padding.PKCS1v15(), hashes.SHA1())
                                      for _ in range(rounds)]) * per / rounds,
            rsa_wrap=_best(lambda: [public.encrypt(b"k" * 32, oaep) for _ in range(rounds)]) * per / rounds,
            rsa_unwrap=_best(lambda: [key.decrypt(wrapped, oaep) for _ in range(rounds)]) * per / rounds,
            key_bits=key_bits,
        )

    def describe(self) -> str:
        """One line of what the floors are made of."""
        return (f"floor pieces (ms a MiB): SHA-1 {self.sha1_mib:.2f}, base64 encode {self.base64_encode_mib:.2f} "
                f"decode {self.base64_decode_mib:.2f}, AES-256-GCM {self.aes_gcm_encrypt_mib:.2f}/"
                f"{self.aes_gcm_decrypt_mib:.2f}, zfec 2-of-4 encode {self.zfec_encode_mib:.2f} decode "
                f"{self.zfec_decode_mib:.2f}; RSA-{self.key_bits} (ms each) sign {self.rsa_sign:.3f} verify "
                f"{self.rsa_verify:.3f} wrap {self.rsa_wrap:.3f} unwrap {self.rsa_unwrap:.3f}")


@dataclasses.dataclass(frozen=True)
class Floor:
    """The floor of each side of a packet stream, in ms a MiB."""

    sender: float
    receiver: float


def signed_packets(costs: Costs, payload_mib: float, packets_per_mib: float) -> Floor:
    """`payload_mib` of signed text a MiB of what is moved, in `packets_per_mib` packets: SHA-1 over it on both
    sides, a signature by the sender and its verification by the receiver for every packet."""
    hashing = costs.sha1_mib * payload_mib
    return Floor(hashing + costs.rsa_sign * packets_per_mib, hashing + costs.rsa_verify * packets_per_mib)
