"""The Debian package: built from a copy of the repository, then inspected as dpkg and lintian see it.

The build needs dpkg-dev, debhelper and python3-venv (and pip's index, for the venv); without them
the tests are skipped and say which packages to install. lintian is optional.
"""

from __future__ import annotations

import atexit
import fnmatch
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import attrs
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.support.unit import unit_environment, unit_fields

REPO = Path(__file__).resolve().parents[2]
VENV = "opt/bitdust-node"
# the venv is made by Debian's /usr/bin/python3, whatever runs the tests
SITE = re.compile(rf"\./{VENV}/lib/python3\.\d+/site-packages/")
# pip could not reach its index: no network here, not a fault of the package
OFFLINE = ("Failed to establish a new connection", "Temporary failure in name resolution", "Network is unreachable")
BUILD_TOOLS = {
    "dpkg-buildpackage": "dpkg-dev", "dpkg-checkbuilddeps": "dpkg-dev", "dpkg-deb": "dpkg", "dh": "debhelper",
}
BUILD_TIMEOUT = 300
# what a working tree holds that the package is not built from: anywhere, at the top, in debian/
LEFT_OUT = ("__pycache__", "*.pyc", "_trial_temp*", "*.egg-info", ".mypy_cache", ".ruff_cache", ".hypothesis")
LEFT_OUT_AT = {
    ".": (".git", ".venv", ".bitdust-home", "build", "dist"),
    "debian": (".debhelper", "files", "bitdust-node", "*.substvars", "debhelper-build-stamp"),
}
# hardening the unit must keep: a change here is a decision, not an accident
UNIT_LINES = (
    "User=bitdust",
    "Environment=PYTHONOPTIMIZE=2",
    "ExecStart=/opt/bitdust-node/bin/bitdust-node --nodaemon --pidfile= --config /var/lib/bitdust/.bitdust",
    "Restart=on-failure",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ReadWritePaths=/var/lib/bitdust",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "CapabilityBoundingSet=",
)


def run(*argv: str | Path, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def copy_repo(dest: Path) -> None:
    def left_out(folder: str, names: list[str]) -> set[str]:
        where = Path(folder).relative_to(REPO).as_posix()
        patterns = LEFT_OUT + LEFT_OUT_AT.get(where, ())
        return {n for n in names if any(fnmatch.fnmatch(n, pattern) for pattern in patterns)}

    shutil.copytree(REPO, dest, symlinks=True, ignore=left_out)


@attrs.frozen
class Build:
    workdir: Path
    deb: Path
    unpacked: Path
    # the developer's environment in the checkout the package was built from
    dev_venv: Path


_built: list[Build | SkipTest | str] = []


def build_once() -> Build:
    """Build the .deb from a copy of the repository, once per test run (about 40 s)."""
    if not _built:
        try:
            _built.append(_build())
        except SkipTest as skip:
            _built.append(skip)
    outcome = _built[0]
    if isinstance(outcome, SkipTest):
        raise outcome
    if isinstance(outcome, str):
        raise AssertionError(outcome)
    return outcome


def _build() -> Build | str:
    missing = sorted({pkg for tool, pkg in BUILD_TOOLS.items() if shutil.which(tool) is None})
    if missing:
        raise SkipTest(f"building the .deb needs: apt-get install {' '.join(missing)}")
    workdir = Path(tempfile.mkdtemp(prefix="bitdust-deb-"))
    # trial has no class-wide tear-down: the build goes when the test run ends
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    source = workdir / "bitdust-node"
    copy_repo(source)
    # a checkout is built where its developer works: `make run`'s .venv must survive the build
    dev_venv = source / ".venv"
    run("/usr/bin/python3", "-m", "venv", "--without-pip", dev_venv).check_returncode()
    unmet = run("dpkg-checkbuilddeps", cwd=source)
    if unmet.returncode != 0:
        raise SkipTest(f"building the .deb needs build dependencies: {unmet.stderr.strip()}")
    built = run("dpkg-buildpackage", "-b", "-us", "-uc", cwd=source, timeout=BUILD_TIMEOUT)
    if built.returncode != 0 and any(sign in built.stdout + built.stderr for sign in OFFLINE):
        raise SkipTest("building the .deb needs pip's index (the venv is filled by pip), unreachable here")
    if built.returncode != 0:
        return f"dpkg-buildpackage failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"
    (deb,) = workdir.glob("bitdust-node_*.deb")
    unpacked = workdir / "unpacked"
    run("dpkg-deb", "-x", deb, unpacked).check_returncode()
    return Build(workdir, deb, unpacked, dev_venv)


class DebianPackage(SynchronousTestCase):
    def setUp(self) -> None:
        build = build_once()
        self.workdir, self.deb, self.unpacked = build.workdir, build.deb, build.unpacked
        self.dev_venv = build.dev_venv

    def test_the_developers_venv_survives_the_build(self) -> None:
        self.assertTrue((self.dev_venv / "pyvenv.cfg").exists(), "dpkg-buildpackage removed the checkout's .venv")
        works = run(self.dev_venv / "bin/python", "-c", "import sys; print(sys.prefix)")
        self.assertEqual((works.returncode, works.stdout.strip()), (0, str(self.dev_venv)))

    def test_control(self) -> None:
        fields = run("dpkg-deb", "-f", self.deb, "Package", "Depends").stdout
        self.assertIn("Package: bitdust-node", fields)
        self.assertRegex(fields, r"python3 \(>= 3\.\d+~\), python3 \(<< 3\.\d+~\)")
        self.assertIn("adduser", fields)
        info = run("dpkg-deb", "-I", self.deb).stdout
        for script in ("postinst", "prerm", "postrm"):
            self.assertRegex(info, rf"\d+ lines\s+\*\s+{script}\s")

    def test_contents(self) -> None:
        listing = run("dpkg-deb", "-c", self.deb).stdout
        paths = {line.split()[5] for line in listing.splitlines()}
        site = next(match.group() for match in map(SITE.match, sorted(paths)) if match)
        for path in (
            "./lib/systemd/system/bitdust.service",
            f"./{VENV}/bin/twistd",
            f"./{VENV}/bin/bitdust",
            f"./{VENV}/bin/bitdust-node",
            f"{site}bitdust_node/__init__.py",
            # the web interface's script and style are package data
            f"{site}bitdust_node/gui/static/app.js",
            f"{site}bitdust_node/gui/static/style.css",
            f"{site}twisted/plugins/bitdust_plugin.py",
            "./usr/share/bitdust-node/settings/seed-node.json",
            "./usr/share/man/man1/bitdust.1.gz",
            "./usr/share/doc/bitdust-node/README.md",
        ):
            self.assertIn(path, paths)
        self.assertRegex(listing, r"\./usr/bin/bitdust -> /opt/bitdust-node/bin/bitdust\n")
        # byte code and the plugin cache are made by postinst, at the final path
        self.assertFalse([p for p in paths if "__pycache__" in p or p.endswith("dropin.cache")])

    def test_venv_runs_the_node(self) -> None:
        venv = self.unpacked / VENV
        modules = "bitdust_node.tap, twisted.plugins.bitdust_plugin, klein, treq, automat, zfec, lxml.etree"
        imported = run(venv / "bin/python", "-c", f"import {modules}; print(bitdust_node.__file__)")
        self.assertEqual(imported.returncode, 0, imported.stderr)
        self.assertTrue(imported.stdout.startswith(str(venv)), imported.stdout)
        self.assertEqual((venv / "bin/bitdust").read_text().splitlines()[0], "#!/opt/bitdust-node/bin/python")
        cli = run(venv / "bin/python", venv / "bin/bitdust", "--help")
        self.assertEqual(cli.returncode, 0, cli.stderr)
        self.assertIn("usage: bitdust", cli.stdout)
        twistd = run(venv / "bin/python", venv / "bin/twistd", "--help")
        self.assertIn("bitdust", twistd.stdout)

    def test_no_build_paths_left(self) -> None:
        needle = str(self.workdir).encode()
        leaks = [p for p in (self.unpacked / VENV).rglob("*")
                 if p.is_file() and not p.is_symlink() and needle in p.read_bytes()]
        self.assertEqual(leaks, [])

    def test_unit_is_hardened_and_valid(self) -> None:
        unit = (self.unpacked / "lib/systemd/system/bitdust.service").read_text()
        lines = set(unit.splitlines())
        for line in UNIT_LINES:
            self.assertIn(line, lines)
        if shutil.which("systemd-analyze") is None:
            raise SkipTest("systemd-analyze not installed (apt-get install systemd): unit not verified")
        # verify checks that ExecStart exists: point it at the unpacked venv (and the man page, not installed)
        here = self.workdir / "verify" / "bitdust.service"
        here.parent.mkdir()
        here.write_text(unit.replace("/opt/bitdust-node/", f"{self.unpacked}/opt/bitdust-node/"))
        verified = run("systemd-analyze", "verify", "--man=no", here)
        self.assertEqual((verified.returncode, verified.stderr), (0, ""))

    def test_lintian(self) -> None:
        if shutil.which("lintian") is None:
            raise SkipTest("lintian not installed (apt-get install lintian)")
        report = run("lintian", "--pedantic", self.deb, timeout=120)
        findings = [line for line in report.stdout.splitlines() if line[:2] in ("E:", "W:", "I:", "P:", "X:")]
        for line in findings:
            print(f"lintian: {line}")
        # warnings are reported, errors that no override explains fail
        self.assertEqual([line for line in findings if line.startswith("E:")], [])


INSTALLED_ADDRESS = "127.0.0.26"
INSTALLED_HOME = "/var/lib/bitdust/.bitdust"


class InstalledPackage(SynchronousTestCase):
    """apt-get install ./bitdust-node_*.deb, run the node as the unit does, query it, purge."""

    def setUp(self) -> None:
        if os.geteuid() != 0:
            raise SkipTest("installing the package needs root")
        if run("dpkg", "-s", "bitdust-node").returncode == 0:
            raise SkipTest("bitdust-node is installed on this machine: the test would replace it")
        self.build = build_once()
        had_user = run("getent", "passwd", "bitdust").returncode == 0
        had_home = Path("/var/lib/bitdust").exists()
        # leave the machine as it was: the package, then what purge keeps on purpose
        if not had_home:
            self.addCleanup(shutil.rmtree, "/var/lib/bitdust", True)
        if not had_user:
            self.addCleanup(run, "userdel", "bitdust")
            self.addCleanup(run, "groupdel", "bitdust")
        self.addCleanup(lambda: run("dpkg", "-s", "bitdust-node").returncode or apt_get("purge", "bitdust-node"))

    def as_bitdust(self, *argv: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run("setpriv", "--reuid=bitdust", "--regid=bitdust", "--init-groups", "--", *argv, timeout=timeout)

    def test_install_run_as_the_unit_does_query_stop_purge(self) -> None:
        installed = apt_get("install", f"./{self.build.deb.name}", cwd=self.build.deb.parent)
        self.assertEqual(installed.returncode, 0, installed.stdout[-2000:] + installed.stderr[-2000:])
        unit_path = Path("/lib/systemd/system/bitdust.service")
        if shutil.which("systemd-analyze"):
            verified = run("systemd-analyze", "verify", unit_path)
            self.assertEqual((verified.returncode, verified.stderr), (0, ""))
        home = Path(INSTALLED_HOME)
        self.assertEqual(stat_mode(home), 0o700)
        self.assertEqual(home.owner(), "bitdust")
        self.assertEqual(Path("/usr/bin/bitdust").resolve(), Path("/opt/bitdust-node/bin/bitdust"))
        # the unit's byte code (PYTHONOPTIMIZE=2) is made at install: the node cannot write it under /opt
        package = next(Path("/opt/bitdust-node/lib").glob("python3.*/site-packages/bitdust_node"))
        missing = [str(source) for source in package.rglob("*.py")
                   if not list(source.parent.glob(f"__pycache__/{source.stem}.*.opt-2.pyc"))]
        self.assertEqual(missing, [])
        # the admin's steps of the README, with the installed CLI as the bitdust user
        for key, value in (("services/network/bind-address", INSTALLED_ADDRESS),
                           ("interface/api/rest-http-host", INSTALLED_ADDRESS),
                           ("services/identity-server/enabled", "true")):
            done = self.as_bitdust("/usr/bin/bitdust", "--config", home, "set", key, value)
            self.assertEqual(done.returncode, 0, done.stderr)
        node = self.start_as_the_unit(unit_fields(unit_path.read_text()))
        try:
            states = self.wait_for_states(home, node)
            self.assertRegex(states, r"service_identity_server\(ON\)")
            # the unit's UMask: what the node wrote is its own, but for the public identity store
            self.assertEqual(stat_mode(home / "apisecret"), 0o600)
            self.assertEqual(stat_mode(home), 0o711)
            self.assertEqual(stat_mode(home / "identityserver"), 0o755)
            self.assertFalse((home / "logs" / "node.log").exists())  # the journal has the lines
        finally:
            node.send_signal(signal.SIGTERM)
            output, _ = node.communicate(timeout=40)
        self.assertIn(node.returncode, (0, -signal.SIGTERM), output)
        self.assertIn("node stopped", output)
        self.assertNotIn("Traceback", output)
        purged = apt_get("purge", "bitdust-node")
        self.assertEqual(purged.returncode, 0, purged.stderr[-2000:])
        for gone in ("/opt/bitdust-node", "/usr/bin/bitdust", str(unit_path)):
            self.assertFalse(Path(gone).exists(), gone)
        # the identity and its private key outlive the package, as postrm says
        self.assertTrue((home / "apisecret").exists())

    def start_as_the_unit(self, unit: dict[str, list[str]]) -> subprocess.Popen[str]:
        """ExecStart as User=, in WorkingDirectory=, with Environment= and UMask=: what systemd does."""
        (user,), (group,), (umask,) = unit["User"], unit["Group"], unit["UMask"]
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "HOME": "/var/lib/bitdust", "USER": user, "LOGNAME": user}
        env.update(unit_environment(unit))
        (exec_start,) = unit["ExecStart"]
        shell = f"umask {umask} && exec {exec_start}"
        return subprocess.Popen(
            ["setpriv", f"--reuid={user}", f"--regid={group}", "--init-groups", "--", "/bin/sh", "-c", shell],
            cwd=unit["WorkingDirectory"][0], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )

    def wait_for_states(self, home: Path, node: subprocess.Popen[str], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and node.poll() is None:
            states = self.as_bitdust("/usr/bin/bitdust", "--config", home, "states", timeout=20)
            if states.returncode == 0 and "service_identity_server(ON)" in states.stdout:
                return states.stdout
            time.sleep(0.5)
        node.kill()
        raise AssertionError(f"the installed node did not answer `bitdust states`:\n{node.communicate()[0]}")


def apt_get(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return subprocess.run(["apt-get", "-y", "-qq", "--no-install-recommends", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=BUILD_TIMEOUT)


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777
