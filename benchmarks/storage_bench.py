"""Storage throughput: a customer stores and restores files on 4 suppliers, next to a Tahoe-LAFS grid
(one introducer, 4 storage nodes, shares.needed 2, shares.total 4: the same redundancy) storing the
same files, in one run on loopback.

    .venv/bin/python benchmarks/storage_bench.py [--sizes 16,256] [--tahoe /path/to/venv/bin/tahoe]

Ours: `twistd bitdust` processes (an identity server and DHT seed, 4 suppliers, the customer), the
upload and the download through the customer's REST API, timed from request to answer, the download
compared byte for byte. Tahoe: PUT /uri and GET /uri/<cap> on its client's web API against its own
grid. The customer's peak resident memory is read from /proc. Ends with one line per size and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVER = "127.0.0.90"
SUPPLIERS = [f"127.0.0.{i}" for i in range(91, 95)]
CUSTOMER = "127.0.0.95"
REST_PORT = 8180
TAHOE_HOST = "127.0.0.96"
TAHOE_WEB = "http://127.0.0.1:39204"


def settings(home: Path, address: str, extra: dict[str, Any]) -> None:
    from bitdust_node.settings import Settings

    stored = Settings.load(home)
    base = {
        "services/network/bind-address": address,
        "interface/api/rest-http-host": address,
        "services/identity-propagate/known-servers": f"{SERVER}:8084",
        "services/identity-propagate/min-servers": 1,
        "services/entangled-dht/known-nodes": f"{SERVER}:14441",
        "services/proxy-transport/enabled": False,
        "services/supplier/enabled": False,
        "services/customer/enabled": False,
    }
    for key, value in {**base, **extra}.items():
        stored.set(key, value)


class Node:
    def __init__(self, root: Path, name: str, address: str, extra: dict[str, Any]) -> None:
        self.name, self.address = name, address
        self.home = root / name
        settings(self.home, address, extra)
        twistd = str(Path(sys.executable).parent / "twistd")
        self.process = subprocess.Popen(
            [twistd, "-n", "--pidfile=", "--logfile", str(self.home / "twistd.log"), "bitdust", "--config",
             str(self.home)],
            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=str(ROOT),
        )

    def api(self, method: str, path: str, body: Any = None, timeout: float = 3600) -> Any:
        from bitdust_node import home as home_paths

        secret = home_paths.read_api_secret(self.home) or ""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://{self.address}:{REST_PORT}{path}", data=data, method=method,
                                         headers={"api_secret": secret})
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return json.loads(reply.read())

    def wait_up(self) -> None:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                self.api("GET", "/process/health/v1", timeout=2)
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"{self.name} did not start; see {self.home / 'twistd.log'}")

    def peak_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def wait_for(check: Any, what: str, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise SystemExit(f"timed out waiting for {what}")


def run_ours(root: Path, files: list[Path]) -> list[dict[str, float]]:
    nodes: list[Node] = []
    try:
        server = Node(root, "server", SERVER, {"services/identity-server/enabled": True,
                                               "services/identity-server/host": SERVER,
                                               "services/entangled-dht/known-nodes": "genesis"})
        nodes.append(server)
        server.wait_up()
        server.api("POST", "/identity/create/v1", {"username": "seed"})
        for number, address in enumerate(SUPPLIERS):
            supplier = Node(root, f"supplier{number}", address, {"services/supplier/enabled": True,
                                                                 "services/supplier/donated-space": "50 GB"})
            nodes.append(supplier)
            supplier.wait_up()
            supplier.api("POST", "/identity/create/v1", {"username": f"supplier{number}"})
        customer = Node(root, "customer", CUSTOMER, {"services/customer/enabled": True,
                                                     "services/customer/suppliers-number": 4,
                                                     "services/customer/needed-space": "4 GB"})
        nodes.append(customer)
        customer.wait_up()
        customer.api("POST", "/identity/create/v1", {"username": "customer"})
        wait_for(lambda: len([s for s in customer.api("GET", "/supplier/list/v1")["result"]
                              if s["supplier_state"] == "CONNECTED"]) == 4, "4 suppliers hired")
        results = []
        for path in files:
            started = time.perf_counter()
            reply = customer.api("POST", "/file/upload/start/v1", {"local_path": str(path),
                                                                    "remote_path": path.name, "wait_result": True})
            if reply.get("status") != "OK" or reply["result"].get("state") != "done":
                raise SystemExit(f"upload failed: {reply}")
            up = time.perf_counter() - started
            back = root / "restored"
            started = time.perf_counter()
            reply = customer.api("POST", "/file/download/start/v1", {"remote_path": path.name,
                                                                      "destination_folder": str(back),
                                                                      "wait_result": True})
            down = time.perf_counter() - started
            if reply.get("status") != "OK" or not same_file(back / path.name, path):
                raise SystemExit(f"download failed or differs: {reply}")
            (back / path.name).unlink()
            results.append({"up": up, "down": down})
        results.append({"customer_peak_mib": customer.peak_mib()})
        return results
    finally:
        for node in reversed(nodes):
            node.stop()


def same_file(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as one, open(b, "rb") as two:
        while True:
            x, y = one.read(1 << 20), two.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


# -- Tahoe-LAFS, the peer


def tahoe_grid(tahoe: str, root: Path) -> tuple[list[subprocess.Popen[bytes]], Path]:
    """An introducer, 4 storage nodes and a client on loopback; returns the processes and the client dir."""
    def run(*args: str) -> None:
        subprocess.run([tahoe, *args], check=True, capture_output=True)

    root.mkdir(parents=True, exist_ok=True)
    introducer = root / "introducer"
    run("create-introducer", "--port", f"tcp:39100:interface={TAHOE_HOST}",
        "--location", f"tcp:{TAHOE_HOST}:39100", str(introducer))
    # `tahoe run` stops when its stdin closes unless told not to
    procs = [subprocess.Popen([tahoe, "run", "--allow-stdin-close", str(introducer)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    furl = introducer / "private" / "introducer.furl"
    wait_for(furl.exists, "the Tahoe introducer")
    nodes = []
    for number in range(5):
        node = root / (f"storage{number}" if number < 4 else "client")
        port = 39110 + number
        run("create-node", "--port", f"tcp:{port}:interface={TAHOE_HOST}",
            "--location", f"tcp:{TAHOE_HOST}:{port}", "--introducer", furl.read_text().strip(),
            "--shares-needed", "2", "--shares-happy", "4", "--shares-total", "4",
            "--webport", f"tcp:{39200 + number}:interface=127.0.0.1",
            *(["--no-storage"] if number == 4 else []), str(node))
        nodes.append(node)
        procs.append(subprocess.Popen([tahoe, "run", "--allow-stdin-close", str(node)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
    client = nodes[-1]

    def connected() -> bool:
        try:
            with urllib.request.urlopen(TAHOE_WEB + "/?t=json", timeout=2) as reply:
                servers = json.loads(reply.read()).get("servers", [])
            return sum(1 for s in servers if s.get("connection_status", "").lower().startswith("connected")) >= 4
        except OSError:
            return False

    try:
        wait_for(connected, "the Tahoe client to see 4 storage nodes", timeout=120)
    except SystemExit:
        stop_all(procs)
        raise
    return procs, client


def run_tahoe(tahoe: str, root: Path, files: list[Path]) -> list[dict[str, float]]:
    procs, _client = tahoe_grid(tahoe, root)
    try:
        results = []
        for path in files:
            # through the client's web API, as our customer's REST API is used: no CLI start-up in the figures
            started = time.perf_counter()
            with open(path, "rb") as source:
                request = urllib.request.Request(TAHOE_WEB + "/uri", data=source, method="PUT",
                                                 headers={"Content-Length": str(path.stat().st_size)})
                with urllib.request.urlopen(request, timeout=3600) as reply:
                    cap = reply.read().decode().strip()
            up = time.perf_counter() - started
            back = root / f"{path.name}.back"
            started = time.perf_counter()
            with urllib.request.urlopen(f"{TAHOE_WEB}/uri/{urllib.parse.quote(cap)}", timeout=3600) as reply, \
                    open(back, "wb") as out:
                shutil.copyfileobj(reply, out, 1 << 20)
            down = time.perf_counter() - started
            if not same_file(back, path):
                raise SystemExit("Tahoe gave back other bytes")
            back.unlink()
            results.append({"up": up, "down": down})
        return results
    finally:
        stop_all(procs)


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="16,256", help="file sizes in MiB, comma-separated")
    parser.add_argument("--tahoe", default=shutil.which("tahoe") or "/tmp/tahoe-venv/bin/tahoe")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = []
        for size in sizes:
            path = root / f"file-{size}MiB.bin"
            with open(path, "wb") as out:
                for _ in range(size):
                    out.write(os.urandom(1 << 20))
            files.append(path)
        # the inputs written back to disk now: else the first supplier fsync waits for hundreds of MB of them
        # (ext4 orders data before the metadata it commits), which cost the first upload up to half its speed
        os.sync()
        ours = run_ours(root / "ours", files)
        theirs = run_tahoe(args.tahoe, root / "tahoe", files) if Path(args.tahoe).exists() else None
    peak = ours.pop()["customer_peak_mib"]
    for size, mine, other in zip(sizes, ours, theirs or [None] * len(sizes), strict=True):
        line = (f"storage {size} MiB over 4 suppliers (any 2 rebuild): ours up {size * 1.048576 / mine['up']:.1f} "
                f"MB/s down {size * 1.048576 / mine['down']:.1f} MB/s")
        if other is not None:
            line += (f" vs Tahoe-LAFS 2-of-4 up {size * 1.048576 / other['up']:.1f} MB/s down "
                     f"{size * 1.048576 / other['down']:.1f} MB/s (ratio up {other['up'] / mine['up']:.2f}, "
                     f"down {other['down'] / mine['down']:.2f})")
        else:
            line += " (Tahoe-LAFS not installed: pass --tahoe)"
        print(line + f"; customer peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
