"""The Debian package: built from a copy of the repository, then inspected as dpkg and lintian see it.

The build needs dpkg-dev, debhelper and python3-venv (and pip's index, for the venv); without them
the tests are skipped and say which packages to install. lintian is optional.
"""

from __future__ import annotations

import atexit
import fnmatch
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import attrs
from twisted.trial.unittest import SkipTest, SynchronousTestCase

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
            f"{site}bitdust_node/__init__.py",
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
