"""The official customer (dave) replayed into our supplier (carol, with the capture's identity and throwaway
key): every packet dave sent carol, in capture order. Our carol answers each one as the official carol did
(the same command and text, the same listing once decrypted, the same nested piece), and her disk ends up
holding what the official carol's held, file for file and byte for byte in size."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

from twisted.trial.unittest import TestCase

from bitdust_node.crypto import block as blocks
from bitdust_node.wire import packet as wire
from tests.storage.support import STORAGE, Side, me

DONATED = 1 << 30  # the captured carol donated 1 GB


def captured(sender: str, receiver: str) -> list[wire.Packet]:
    found = []
    for path in sorted((STORAGE / "packets").glob(f"*_{sender}_to_{receiver}_*.json")):
        found.append(wire.parse(str(json.loads(path.read_text())["raw_utf8"]).encode()))
    return found


def listing_text(packet: wire.Packet, key: Any) -> str:
    block = blocks.parse_block(packet.payload)
    return zlib.decompress(blocks.open_block(block, key)).decode()


class SupplierReplayTests(TestCase):
    def test_every_packet_of_the_official_customer(self) -> None:
        home = Path(self.mktemp())
        side = Side(self, home, donated=DONATED, signers=())
        official = {(p.packet_id, p.command): p for p in captured("carol", "dave")}
        dave_key = me("dave").key
        compared = 0
        for request in captured("dave", "carol"):
            ours = side.answers_to(request)
            if request.command == "Ack":
                self.assertEqual(ours, [], request.packet_id)  # dave's Acks of carol's Files
                continue
            self.assertEqual(len(ours), 1, f"{request.command}({request.packet_id})")
            (answer,) = ours
            if request.command == "RequestService" and b"service_p2p_notifications" in request.payload:
                # not built here: refused the official way (the official customer goes on without it)
                self.assertEqual((answer.command, answer.payload),
                                 ("Fail", b"service service_p2p_notifications not exist"))
                continue
            theirs = official.get((answer.packet_id, answer.command))
            self.assertIsNotNone(theirs, f"official carol did not answer {request.command} with {answer.command}")
            assert theirs is not None
            self.assertEqual((answer.owner_id, answer.creator_id, answer.remote_id),
                             (theirs.owner_id, theirs.creator_id, theirs.remote_id), answer.packet_id)
            if answer.command == "Files":
                self.assertEqual(listing_text(answer, dave_key), listing_text(theirs, dave_key), answer.packet_id)
            else:
                self.assertEqual(answer.payload, theirs.payload, f"{answer.command}({answer.packet_id})")
            compared += 1
        self.assertEqual(compared, 33)  # every RequestService, ListFiles, Retrieve and Data dave sent carol
        # the one refusal the official carol made too: the catalog asked for before any was stored
        self.assertEqual(dict(side.supplier.refusals), {"retrieve_not_found": 1})
        tree = sorted(
            f"./{p.relative_to(home / 'customers')} {p.stat().st_size}"
            for p in (home / "customers").rglob("*") if p.is_file()
        )
        self.assertEqual(tree, (STORAGE / "supplier_C_customers_tree.txt").read_text().split("\n")[:-1])
