"""MyIdentityHolder: the one owner of my identity, and how it tells the others of a new revision."""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.errors import Conflict, NotFound
from bitdust_node.identity import my_identity
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.identity.my_identity import MyIdentity
from tests.identity import vectors


def alice() -> MyIdentity:
    return MyIdentity(vectors.identity("alice"), vectors.private_key("alice"))


class HolderTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.home = Path(self.mktemp())
        self.holder = MyIdentityHolder.load(self.home)

    def test_empty_home_has_no_identity(self) -> None:
        self.assertIsNone(self.holder.current)
        self.assertRaises(NotFound, self.holder.require)
        self.holder.refuse_if_exists()

    def test_adopt_saves_sets_and_notifies_every_subscriber_once_in_order(self) -> None:
        heard: list[tuple[str, int]] = []
        self.holder.subscribe(lambda me: heard.append(("first", me.identity.revision)))
        self.holder.subscribe(lambda me: heard.append(("second", me.identity.revision)))
        me = alice()
        self.holder.adopt(me)
        self.assertEqual(heard, [("first", me.identity.revision), ("second", me.identity.revision)])
        self.assertIs(self.holder.require(), me)
        self.assertRaises(Conflict, self.holder.refuse_if_exists)
        # saved in the home: a fresh holder loads the same identity and key
        again = MyIdentityHolder.load(self.home)
        assert again.current is not None
        self.assertEqual(again.current.xml, me.xml)
        self.assertEqual(my_identity.identity_paths(self.home)[1].stat().st_mode & 0o777, 0o600)

    def test_a_subscriber_that_raises_does_not_stop_the_others(self) -> None:
        heard: list[str] = []

        def broken(me: MyIdentity) -> None:
            heard.append("broken")
            raise RuntimeError("listener bug")

        self.holder.subscribe(lambda me: heard.append("before"))
        self.holder.subscribe(broken)
        self.holder.subscribe(lambda me: heard.append("after"))
        self.holder.adopt(alice())
        self.assertEqual(heard, ["before", "broken", "after"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertIsNotNone(self.holder.current)

    def test_unsubscribe_stops_the_notices(self) -> None:
        heard: list[int] = []
        unsubscribe = self.holder.subscribe(lambda me: heard.append(me.identity.revision))
        self.holder.adopt(alice())
        unsubscribe()
        unsubscribe()  # twice is harmless
        newer = alice().next_revision(("tcp://127.0.0.9:7771",), 0.0)
        self.holder.adopt(newer)
        self.assertEqual(len(heard), 1)
        self.assertIs(self.holder.current, newer)


class FormerIdurlTests(SynchronousTestCase):
    """The IDURLs a rotation leaves stay mine: packets and messages to them are for me, across restarts."""

    def test_a_move_keeps_the_idurls_it_leaves(self) -> None:
        home = Path(self.mktemp())
        holder = MyIdentityHolder.load(home)
        first = alice()
        holder.adopt(first)
        old = first.idurl
        self.assertEqual(holder.former, ())
        self.assertTrue(holder.answers_to(old))
        moved = first.moved_to(("http://127.0.0.2:8085/alice.xml",), first.identity.revision + 1)
        holder.adopt(moved)
        self.assertEqual(holder.former, (old,))
        for idurl in (old, moved.idurl):
            self.assertTrue(holder.answers_to(idurl))
        self.assertFalse(holder.answers_to("http://127.0.0.2:8085/bob.xml"))
        self.assertTrue(holder.is_my_key_id("master$alice@127.0.0.2_8085"))
        self.assertTrue(holder.is_my_key_id("master$" + first.global_id))
        self.assertFalse(holder.is_my_key_id("other$" + first.global_id))
        self.assertFalse(holder.is_my_key_id("master$bob@127.0.0.2_8085"))
        # a restart remembers; a later move back takes the IDURL out of the former ones
        again = MyIdentityHolder.load(home)
        self.assertEqual(again.former, (old,))
        back = moved.moved_to((old,), moved.identity.revision + 1)
        again.adopt(back)
        self.assertEqual(again.former, (moved.idurl,))
        # another key (a restored, different identity) starts with none
        other = MyIdentity(vectors.identity("bob"), vectors.private_key("bob"))
        again.adopt(other)
        self.assertEqual(MyIdentityHolder.load(home).former, ())
