"""A customer whose identity moves to another server stays our supplier's customer: its new IDURL and new
global id reach the pieces it stored by the old ones, in the folder it was given first."""

from __future__ import annotations

import json
from pathlib import Path

from twisted.trial.unittest import TestCase

from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.net.http import CappedHttp
from bitdust_node.transport.gateway import Gateway
from bitdust_node.wire import packet as wire
from tests.storage.support import DAVE, Side, WalkCounting, me

ALICE = "http://127.0.0.1:8084/alice.xml"
MOVED = "http://127.0.0.2:8085/dave.xml"
OLD_PIECE = "master$dave@127.0.0.1_8084:3/F20261201075109PM/0-0-Data"
NEW_PIECE = "master$dave@127.0.0.2_8085:3/F20261201075109PM/0-0-Data"


class MovedCustomerTests(TestCase):
    def setUp(self) -> None:
        self.home = Path(self.mktemp())
        self.side = Side(self, self.home)
        self.supplier = self.side.supplier
        self.supplier.customers.aliases = self.side.gateway.cache.aliases
        self.side.hire("dave", 1 << 20)
        self.side.send("dave", "Data", OLD_PIECE, b"stored before the move")
        dave = me("dave")
        moved = dave.moved_to((MOVED, "http://127.0.0.3:8086/dave.xml"), dave.identity.revision + 1)
        signer_home = Path(self.mktemp())
        self.side.signers["moved"] = Gateway(self.side.reactor, MyIdentityHolder(signer_home, moved),
                                             IdentityCache(signer_home, CappedHttp(self.side.reactor)))
        # dave tells his supplier of the move, as a rotating node tells the peers it talks to
        ack = self.side.send("moved", "Identity", "propagate:0:1", moved.xml)
        self.assertEqual(ack.command if ack else None, "Ack")

    def test_the_new_idurl_gets_what_the_old_one_stored(self) -> None:
        for asked in (NEW_PIECE, OLD_PIECE):
            answer = self.side.send("moved", "Retrieve", asked)
            assert answer is not None
            self.assertEqual(answer.command, "Data")
            self.assertEqual(answer.packet_id, asked)  # what was asked, so the customer's request is answered
            self.assertEqual(wire.parse(answer.payload).payload, b"stored before the move")
        # filed under the IDURL it goes by now; the folder is the one it was given first
        customers = self.supplier.customers
        self.assertEqual(list(customers.by_idurl), [MOVED])
        self.assertEqual(customers.by_idurl[MOVED].global_id, "dave@127.0.0.1_8084")
        saved = json.loads((self.home / "customers.json").read_text())
        self.assertEqual([c["idurl"] for c in saved["customers"]], [MOVED])

    def test_the_customer_is_found_by_its_new_idurl_without_a_walk_over_every_customer(self) -> None:
        self.side.hire("alice", 1 << 20)
        walked = self.supplier.customers.by_idurl = WalkCounting(self.supplier.customers.by_idurl)
        answer = self.side.send("moved", "Retrieve", NEW_PIECE)
        self.assertEqual(answer.command if answer else None, "Data")
        self.assertEqual(walked.walks, 1)  # the one walk: the customers file rewritten for the move
        self.assertEqual(sorted(self.supplier.customers.by_idurl), [ALICE, MOVED])

    def test_new_pieces_listing_and_deletes_by_the_new_global_id(self) -> None:
        other = NEW_PIECE.replace("0-0-Data", "1-0-Data")
        self.assertEqual(self.side.send("moved", "Data", other, b"stored after").command, "Ack")  # type: ignore[union-attr]
        self.assertEqual(sorted(p.name for p in (self.home / "customers" / "dave@127.0.0.1_8084").rglob("*-Data")),
                         ["0-0-Data", "1-0-Data"])
        self.assertFalse((self.home / "customers" / "dave@127.0.0.2_8085").exists())
        listing = self.side.send("moved", "ListFiles", "master$dave@127.0.0.2_8085:1", b'{"items":["*"]}')
        self.assertEqual(listing.command if listing else None, "Files")
        gone = self.side.send("moved", "DeleteFile", "master$dave@127.0.0.2_8085:3/F20261201075109PM/1-0-Data")
        self.assertEqual(gone.command if gone else None, "Ack")

    def test_renting_again_keeps_one_customer_and_its_folder(self) -> None:
        self.side.signers["dave"] = self.side.signers["moved"]
        self.assertEqual(self.side.hire("dave", 2 << 20).payload, b"accepted")  # type: ignore[union-attr]
        customers = self.supplier.customers
        self.assertEqual(list(customers.by_idurl), [MOVED])
        self.assertEqual((customers.by_idurl[MOVED].global_id, customers.by_idurl[MOVED].allocated),
                         ("dave@127.0.0.1_8084", 2 << 20))

    def test_another_key_under_the_new_name_gets_nothing(self) -> None:
        # alice (another customer, another key) asking by dave's new global id, and by his old one
        self.side.hire("alice", 1 << 20)
        for asked in (NEW_PIECE, OLD_PIECE):
            answer = self.side.send("alice", "Retrieve", asked)
            self.assertEqual((answer.command, answer.payload) if answer else None, ("Fail", b"incorrect path"))
        # dave is filed under his new IDURL when he next asks
        self.assertEqual(sorted(self.supplier.customers.by_idurl), [ALICE, DAVE])
