"""`pip install .` and plain `pip install -e .` in fresh virtualenvs: each runs a node.

The regular install puts the twistd dropin in site-packages, so `twistd --help` lists bitdust; an
editable install has no dropin on the path, which is why `bitdust-node` (twistd with the plugin
built in) exists: both installs run a node with it. Needs pip's index (or its cache).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.packaging.test_debian_package import OFFLINE, copy_repo, run

ADDRESS = "127.0.0.25"
REST_PORT = 8180
INSTALL_TIMEOUT = 300
START_TIMEOUT = 30.0


def fresh_venv(where: Path) -> Path:
    # the interpreter behind the test's venv, so that the new venv owes nothing to it
    base = getattr(sys, "_base_executable", sys.executable)
    made = run(base, "-m", "venv", where, timeout=120)
    if made.returncode != 0:
        raise SkipTest(f"python -m venv failed: {made.stderr.strip()}")
    return where


def pip_install(venv: Path, *args: str | Path, cwd: Path) -> None:
    done = run(venv / "bin/python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args,
               cwd=cwd, timeout=INSTALL_TIMEOUT)
    if done.returncode != 0 and any(sign in done.stdout + done.stderr for sign in OFFLINE):
        raise SkipTest("pip's index is unreachable here")
    if done.returncode != 0:
        raise AssertionError(f"pip install {args} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def run_a_node(testcase: SynchronousTestCase, venv: Path, home: Path) -> str:
    """Start bitdust-node in the foreground on ADDRESS, wait for its REST API, stop it; its output."""
    for key, value in (("services/network/bind-address", ADDRESS), ("interface/api/rest-http-host", ADDRESS)):
        done = run(venv / "bin/bitdust", "--config", home, "set", key, value)
        testcase.assertEqual(done.returncode, 0, done.stderr)
    node = subprocess.Popen(
        [venv / "bin/bitdust-node", "--nodaemon", "--pidfile=", "--config", home],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=home,
        env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
    )
    testcase.addCleanup(lambda: node.poll() is not None or node.kill())
    secret = None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and node.poll() is None:
        try:
            secret = secret or (home / "apisecret").read_text().strip()
            request = urllib.request.Request(f"http://{ADDRESS}:{REST_PORT}/process/health/v1",
                                             headers={"api_secret": secret})
            with urllib.request.urlopen(request, timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            time.sleep(0.2)
    else:
        node.kill()
        raise AssertionError(f"the node did not answer:\n{node.communicate()[0]}")
    node.send_signal(signal.SIGTERM)
    output, _ = node.communicate(timeout=30)
    # twistd ends by the signal it was stopped with, as systemd expects of a clean stop
    testcase.assertIn(node.returncode, (0, -signal.SIGTERM), output)
    testcase.assertIn("node stopped", output)
    return output


class PipInstallTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="bitdust-pip-"))
        self.addCleanup(shutil.rmtree, self.work, True)
        self.source = self.work / "bitdust-node"
        copy_repo(self.source)

    def test_regular_install_gives_twistd_the_plugin_and_the_launcher(self) -> None:
        venv = fresh_venv(self.work / "venv")
        pip_install(venv, ".", cwd=self.source)
        listed = run(venv / "bin/twistd", "--help", cwd=self.work)
        self.assertIn("A BitDust node", listed.stdout)
        output = run_a_node(self, venv, self.work / "home")
        self.assertIn("node started in", output)
        self.assertIn(str(venv), output)  # the installed copy ran, not the checkout

    def test_plain_editable_install_runs_the_node_from_the_source_tree(self) -> None:
        venv = fresh_venv(self.work / "venv")
        pip_install(venv, "-e", ".", cwd=self.source)
        imported = run(venv / "bin/python", "-c", "import bitdust_node; print(bitdust_node.__file__)", cwd=self.work)
        self.assertEqual(imported.stdout.strip(), str(self.source / "bitdust_node" / "__init__.py"))
        helped = run(venv / "bin/bitdust-node", "--help", cwd=self.work)
        self.assertIn("Usage: bitdust-node [twistd options] [--config DIR]", helped.stdout)
        output = run_a_node(self, venv, self.work / "home")
        self.assertIn("node started in", output)
        self.assertIn("REST API on", output)
