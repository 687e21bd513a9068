"""A node's resident memory: at rest, then holding 10,000 hosted identities and 1,000 DHT values,
next to Twisted's reactor alone and the node's libraries alone in the same run, and what each import costs.

    .venv/bin/python benchmarks/node_memory.py [--identities 10000] [--values 1000] [--rest 70]

Both nodes run as debian/bitdust.service runs the node: `bitdust-node --nodaemon --pidfile= --config HOME`
in the foreground, the unit's Environment= (BITDUST_HOME, PYTHONOPTIMIZE=2), umask 0077; the import costs, the
reactor and the libraries alone are measured with that environment too. One on 127.0.0.53 has the local-network
profile (DHT genesis, identity server) and an identity, every default service on; a second one on 127.0.0.54
is the guide's seed node (`bitdust init --profile conf/settings/seed-node.json`, its hosts made local: DHT
genesis, identity server, proxy transport, supplier and customer off) and is measured at rest beside it. Each
creates its identity with `bitdust identity create` as the guide does. "At rest" is read after `--rest`
seconds without traffic (the node gives free heap back each minute). The identities are POSTed to the first
node's identity server as clients do, the values set through its REST API. Ends with one machine-readable
line; the seed's resident memory is given in MiB and in MB (10^6 bytes) too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from idserver_bench import ingest_to, signed_for  # noqa: E402

from bitdust_node.crypto import keys  # noqa: E402
from tests.support.unit import unit_environment  # noqa: E402

ADDRESS = "127.0.0.53"
SEED_ADDRESS = "127.0.0.54"
REST = f"http://{ADDRESS}:8180"
BIN = Path(sys.executable).parent
# every process measured here has the unit's environment (PYTHONOPTIMIZE=2: no docstrings, no asserts)
AS_THE_UNIT = {**os.environ, **unit_environment()}
# in import order, each measured on top of the ones before it in a fresh interpreter
IMPORTS = (
    ("twisted reactor", "twisted.internet.reactor"),
    ("twisted.web", "twisted.web.server"),
    ("cryptography", "cryptography.hazmat.primitives.asymmetric.rsa"),
    ("treq", "treq"),
    ("the node", "bitdust_node.node"),
    ("services", "bitdust_node.services.catalog"),
)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise SystemExit(f"no process {pid}")


def import_costs() -> list[tuple[str, float]]:
    script = (
        "import sys, json\n"
        "sys.modules.setdefault('OpenSSL', None)\n"  # as bitdust-node runs
        "sys.modules.setdefault('ssl', None)\n"
        "def rss():\n"
        "    return int([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1])\n"
        "out = [('python', rss())]\n"
        f"for label, module in {IMPORTS!r}:\n"
        "    __import__(module)\n"
        "    if module.endswith('catalog'):\n"
        "        sys.modules[module].discover()\n"
        "    out.append((label, rss()))\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=AS_THE_UNIT)
    steps = json.loads(done.stdout)
    return [(label, (kib - steps[i - 1][1]) / 1024 if i else kib / 1024) for i, (label, kib) in enumerate(steps)]


def child_rss(script: str, seconds: float) -> float:
    """Resident MiB of a Python child running `script` after `seconds`."""
    child = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=AS_THE_UNIT)
    try:
        time.sleep(seconds)
        return rss_kib(child.pid) / 1024
    finally:
        child.terminate()
        child.wait(timeout=10)


def reactor_alone(seconds: float) -> float:
    return child_rss("from twisted.internet import reactor; reactor.run()", seconds)


def bitdust(home: Path, *args: str) -> str:
    return subprocess.run([str(BIN / "bitdust"), "--config", str(home), *args], capture_output=True, text=True,
                          check=True).stdout


def api(home: Path, method: str, path: str, body: dict[str, object] | None = None) -> object:
    secret = (home / "apisecret").read_text().strip()
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(REST + path, data=data, method=method, headers={"api_secret": secret})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


SEED_PROFILE = ROOT / "conf" / "settings" / "seed-node.json"
DEPENDENCIES = "twisted.web.server treq cryptography.hazmat.primitives.asymmetric.rsa"


def dependencies_alone(seconds: float) -> float:
    """The node's libraries imported as bitdust-node imports them (no TLS), in a running reactor."""
    script = (
        "from bitdust_node.launcher import without_tls\n"
        "without_tls()\n"
        "import importlib\n"
        f"for name in {DEPENDENCIES.split()!r}:\n"
        "    importlib.import_module(name)\n"
        "from twisted.internet import reactor\n"
        "reactor.run()\n"
    )
    return child_rss(script, seconds)


def start_node(home: Path, address: str, name: str, profile: str) -> subprocess.Popen[bytes]:
    """A node on `address` with the settings `profile`, run as debian/bitdust.service runs it, hosting its own
    identity (created as the guide creates one once the node runs)."""
    bitdust(home, "init", "--profile", profile)
    for key, value in (("services/network/bind-address", address), ("interface/api/rest-http-host", address),
                       ("services/identity-server/host", address),
                       ("services/identity-propagate/known-servers", f"{address}:8084"),
                       ("services/identity-propagate/min-servers", "1")):
        bitdust(home, "set", key, value)
    # the unit's ExecStart, Environment and UMask (its working directory is the home's parent)
    node = subprocess.Popen([str(BIN / "bitdust-node"), "--nodaemon", "--pidfile=", "--config", str(home)],
                            cwd=home.parent, env={**AS_THE_UNIT, "BITDUST_HOME": str(home)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=lambda: os.umask(0o077))
    deadline = time.monotonic() + 60
    while subprocess.run([str(BIN / "bitdust"), "--config", str(home), "status"], capture_output=True).returncode:
        if time.monotonic() > deadline or node.poll() is not None:
            raise SystemExit(f"the node in {home} did not start")
        time.sleep(0.5)
    bitdust(home, "identity", "create", name)
    return node


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--identities", type=int, default=10_000)
    parser.add_argument("--values", type=int, default=1_000)
    parser.add_argument("--rest", type=float, default=70.0)
    args = parser.parse_args()
    for label, mib in import_costs():
        print(f"import {label:16s} +{mib:5.1f} MiB")
    alone = reactor_alone(3.0)
    print(f"Twisted's reactor alone: {alone:.1f} MiB")
    libraries = dependencies_alone(3.0)
    print(f"the node's libraries alone, in a running reactor: {libraries:.1f} MiB")
    work = Path(tempfile.mkdtemp(prefix="node_memory."))
    home, seed_home = work / "home", work / "seed"
    nodes: list[subprocess.Popen[bytes]] = []
    try:
        nodes.append(start_node(home, ADDRESS, "memorynode", "local-network"))
        nodes.append(start_node(seed_home, SEED_ADDRESS, "memoryseed", str(SEED_PROFILE)))
        pid, seed_pid = nodes[0].pid, nodes[1].pid
        time.sleep(args.rest)
        at_rest = rss_kib(pid) / 1024
        seed_kib = rss_kib(seed_pid)
        seed_at_rest = seed_kib / 1024
        print(f"node at rest, every default service on: {at_rest:.1f} MiB")
        print(f"the guide's seed node at rest (no proxy transport, supplier, customer): {seed_at_rest:.1f} MiB, "
              f"{seed_kib * 1024 / 1e6:.1f} MB")
        nodes[1].terminate()
        nodes[1].wait(timeout=30)
        key = keys.generate_key(1024)
        bodies = [signed_for(ADDRESS, f"user{i:05d}", key) for i in range(args.identities)]
        _seconds, accepted = asyncio.run(ingest_to(ADDRESS, 8084, bodies, concurrency=16))
        if accepted != len(bodies):
            raise SystemExit(f"only {accepted} of {len(bodies)} identities were accepted")
        for number in range(args.values):
            api(home, "POST", "/dht/value/set/v1", {"key": f"memory-{number}",
                                                     "value": {"type": "note", "number": number}})
        time.sleep(args.rest)
        loaded = rss_kib(pid) / 1024
        print(f"node with {accepted} hosted identities and {args.values} DHT values: {loaded:.1f} MiB")
        print(f"node_memory rest_mib={at_rest:.1f} seed_rest_mib={seed_at_rest:.1f} "
              f"seed_rest_mb={seed_kib * 1024 / 1e6:.1f} loaded_mib={loaded:.1f} "
              f"libraries_alone_mib={libraries:.1f} reactor_alone_mib={alone:.1f} "
              f"identities={accepted} dht_values={args.values}")
    finally:
        for node in nodes:
            if node.poll() is None:
                node.terminate()  # SIGTERM, as systemd stops the unit
                node.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
