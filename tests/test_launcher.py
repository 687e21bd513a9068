"""bitdust-node's process: no TLS library loaded (Twisted, http.client and werkzeug would load them
for TLS nobody speaks here), no room of a service that is off, and free heap given back to the system."""

from __future__ import annotations

import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.heap import release_free_memory

PROBE = (
    "import sys\n"
    "from bitdust_node.launcher import without_tls\n"
    "without_tls()\n"
    "from twisted.internet import reactor, endpoints\n"
    "import treq, klein\n"
    "import bitdust_node.node\n"
    "from bitdust_node.services import catalog\n"
    "catalog.discover()\n"
    "print(endpoints.TLSMemoryBIOFactory is None, 'OpenSSL.SSL' in sys.modules, '_ssl' in sys.modules)\n"
    "rooms = ('bitdust_node.storage', 'bitdust_node.proxy')\n"
    "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith(rooms)}))\n"
)


class LauncherProcessTests(SynchronousTestCase):
    def test_no_tls_library_and_no_room_of_a_stopped_service_is_loaded(self) -> None:
        done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
        lines = done.stdout.splitlines()
        self.assertEqual((done.returncode, lines[:1]), (0, ["True False False"]), done.stderr)
        # every service module is imported to know the services; storage and proxy load when one starts
        self.assertEqual(lines[1:], ["[]"])

    def test_free_heap_goes_back(self) -> None:
        blocks = [bytearray(1 << 16) for _ in range(256)]
        del blocks
        self.assertTrue(release_free_memory())
