"""bitdust-node's process: no pyOpenSSL loaded (Twisted would load it for TLS nobody speaks here),
and free heap given back to the system."""

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
    "print(endpoints.TLSMemoryBIOFactory is None, 'OpenSSL.SSL' in sys.modules)\n"
)


class LauncherProcessTests(SynchronousTestCase):
    def test_no_tls_library_is_loaded(self) -> None:
        done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
        self.assertEqual((done.returncode, done.stdout.split()), (0, ["True", "False"]), done.stderr)

    def test_free_heap_goes_back(self) -> None:
        blocks = [bytearray(1 << 16) for _ in range(256)]
        del blocks
        self.assertTrue(release_free_memory())
