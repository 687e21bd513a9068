"""The protocol's floor for transport_bench.py and relay_bench.py: floor.py's pieces, timed in the same run,
composed for a stream of signed Data packets each answered by a signed Ack, directly and through a proxy router,
and the one piece a relay adds to them: AES-128-CBC, the cipher of relay blocks (PROTOCOL-P2P.md 5.3).

All in ms a MiB of Data payload moved (the payload is base64 text, as a file piece is: a MiB of it carries 3/4
MiB of bytes); RSA operations a packet are spread over the packets a MiB. Small hashes and small blocks (an Ack's,
a RelayAck's) are left out, their RSA operations are not. What each side must do (PROTOCOL-P2P.md 2, 4.4, 4.5):

- sender: base64-encode the piece, SHA-1 over the Data packet's signed text (its payload) and an RSA signature;
  verify the Ack (one RSA verification).
- receiver of a direct packet: SHA-1 over the signed text and one verification; base64-decode the payload (what
  anyone reading a piece does); sign the Ack.
- router (RelayIn, 4.5): verify the sender's Data packet (SHA-1 over it, one verification); encrypt the whole
  packet (AES-128-CBC), base64 the ciphertext (4/3 of it), wrap the session key to the user (RSA-OAEP); sign the
  block (SHA-1 over its 4/3 MiB of EncryptedData, one signature) and the RelayIn packet around it (SHA-1 over the
  block, one signature). For the Ack coming back (RelayOut, 4.4): verify the RelayOut and the Ack inside, unwrap
  its key; then a RelayAck to the user: a key wrapped, the block and the packet signed.
- routed receiver: verify the RelayIn (SHA-1 over 4/3, one verification), unwrap the key, base64-decode the
  ciphertext, decrypt it; verify the Data packet inside (SHA-1 over it, one verification) and base64-decode its
  payload; sign the Ack, seal it in a RelayOut (a key wrapped, the block and the packet signed); verify the
  RelayAck and unwrap its key. (Relay receivers need not check a block's own signature: 5.3.)
"""

from __future__ import annotations

import dataclasses
import os

from floor import _BUFFER, MIB, Costs, _best

# a MiB of base64 text carries this much of the piece's bytes
RAW = 3 / 4
# base64 text a MiB of bytes
TEXT = 4 / 3


@dataclasses.dataclass(frozen=True)
class RelayCosts:
    costs: Costs
    cbc_encrypt_mib: float
    cbc_decrypt_mib: float

    @classmethod
    def measure(cls) -> RelayCosts:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        data = os.urandom(_BUFFER)
        key, iv = os.urandom(16), os.urandom(16)
        sealed = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor().update(data)

        def encrypt() -> bytes:
            return Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor().update(data)

        def decrypt() -> bytes:
            return Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor().update(sealed)

        per = 1000.0 / (_BUFFER / MIB)
        return cls(Costs.measure(), _best(encrypt) * per, _best(decrypt) * per)

    @staticmethod
    def lowest(measured: list[RelayCosts]) -> RelayCosts:
        """Each piece at the lowest of its timings: the floor of the cheapest minute of the run."""
        costs = Costs(**{f.name: min(getattr(m.costs, f.name) for m in measured) for f in dataclasses.fields(Costs)})
        return RelayCosts(costs, min(m.cbc_encrypt_mib for m in measured), min(m.cbc_decrypt_mib for m in measured))

    def describe(self) -> str:
        return (f"{self.costs.describe()}; AES-128-CBC {self.cbc_encrypt_mib:.2f}/{self.cbc_decrypt_mib:.2f} "
                f"ms a MiB")


def sender(c: RelayCosts, packet_mib: float) -> float:
    """A sender's floor, directly or to a routed user alike."""
    k, packets = c.costs, 1 / packet_mib
    return k.base64_encode_mib * RAW + k.sha1_mib + packets * (k.rsa_sign + k.rsa_verify)


def receiver(c: RelayCosts, packet_mib: float) -> float:
    """A direct receiver's floor."""
    k, packets = c.costs, 1 / packet_mib
    return k.sha1_mib + k.base64_decode_mib * RAW + packets * (k.rsa_verify + k.rsa_sign)


def router(c: RelayCosts, packet_mib: float) -> float:
    """A proxy router's floor for packets relayed to a routed user and the user's Acks relayed back."""
    k, packets = c.costs, 1 / packet_mib
    relay_in = c.cbc_encrypt_mib + k.base64_encode_mib + k.sha1_mib * (1 + 2 * TEXT)
    return relay_in + packets * (3 * k.rsa_verify + 4 * k.rsa_sign + 2 * k.rsa_wrap + k.rsa_unwrap)


def routed_receiver(c: RelayCosts, packet_mib: float) -> float:
    """A routed user's floor for packets it gets through its router and the Acks it sends back through it."""
    k, packets = c.costs, 1 / packet_mib
    opened = k.sha1_mib * (TEXT + 1) + k.base64_decode_mib * (1 + RAW) + c.cbc_decrypt_mib
    return opened + packets * (3 * k.rsa_verify + 3 * k.rsa_sign + k.rsa_wrap + 2 * k.rsa_unwrap)
