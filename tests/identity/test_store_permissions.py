"""The identity store is public to a web server running as another user; the rest of the home is not."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.home import TRAVERSABLE_HOME, ensure_home, open_for_web_server
from bitdust_node.identity.server_store import IdentityStore
from bitdust_node.wire import identity_xml
from tests.identity import vectors
from tests.identity.support import make_identity


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class StorePermissionTests(SynchronousTestCase):
    def setUp(self) -> None:
        # the unit's umask: without explicit modes everything would be 0600/0700
        self.addCleanup(os.umask, os.umask(0o077))
        self.home = ensure_home(Path(self.mktemp()))

    def test_files_are_public_whatever_the_umask(self) -> None:
        store = IdentityStore(self.home / "identityserver")
        store.load()
        xml = make_identity("alice", vectors.private_key("alice"))
        store.put(identity_xml.parse(xml), xml, 1_700_000_000.0)
        self.assertEqual(mode(store.root), 0o755)
        self.assertEqual(mode(store.root / "alice.xml"), 0o644)

    def test_home_is_entered_not_listed_and_the_rest_stays_private(self) -> None:
        os.umask(0o022)
        # made before the node set its umask: readable by all
        older = self.home / "metadata"
        older.mkdir()
        (self.home / "api_secret").write_text("x")
        os.chmod(self.home / "api_secret", 0o600)
        public = self.home / "identityserver"
        public.mkdir()
        open_for_web_server(self.home, public)
        self.assertEqual(mode(self.home), TRAVERSABLE_HOME)
        self.assertEqual(mode(older), 0o700)
        self.assertEqual(mode(self.home / "api_secret"), 0o600)
        self.assertEqual(mode(public), 0o755)
