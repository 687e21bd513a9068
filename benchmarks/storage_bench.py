"""Storage throughput: a customer stores and restores files on 4 suppliers, next to a Tahoe-LAFS grid
(one introducer, 4 storage nodes, shares.needed 2, shares.total 4: the same redundancy) storing the
same files, in one run on loopback.

    .venv/bin/python benchmarks/storage_bench.py [--sizes 16,256] [--rounds 3] [--tahoe /path/to/venv/bin/tahoe]
                                                 [--repair 64]

Ours: `twistd bitdust` processes (an identity server and DHT seed, 4 suppliers, the customer), the
upload and the download through the customer's REST API, timed from request to answer, the download
compared byte for byte. Tahoe: PUT /uri and GET /uri/<cap> on its client's web API against its own
grid. Both grids run side by side; each round makes a new random file of every size and both store it in
turn (which grid goes first alternates), so the two are timed in the same minutes of a machine whose speed
drifts. The first round is on fresh nodes. Ends with two lines per size: median speeds over the rounds, the
median ratio and every round's ratio, and the peak resident memory of our customer and of Tahoe's client
while they moved files of that size (read from /proc, the peak reset before each transfer); then the CPU our
customer and our suppliers (all four together) spent a MiB of the file each way, next to the protocol's floor
timed in the same run (benchmarks/floor.py: the SHA-1, RSA, base64, AES and zfec work the wire format makes
each side do, nothing else; the medians of the rounds); then, round by round, the pages each grid's client and
servers touched new and the share of the machine's CPU spent in its kernel meanwhile (on a virtual machine whose
host backs its memory on first use, a new page costs 10-14 us where the host has not backed it yet and 2-3 us
where it has: a first round on fresh nodes, which touches the most new pages, goes slower on a machine whose
memory the host took back, whatever runs). Then repair:
a file stored (alone: the rounds' files are deleted first), one of its 4 suppliers SIGKILLed, and its shares rebuilt
onto the spare (a fifth supplier) timed from the replacement to the file whole again (4/4), next to the upload of the
same file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
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

from floor import Costs, signed_packets  # noqa: E402  (benchmarks/, beside this script)

SERVER = "127.0.0.90"
# four hired, and a spare that takes the place of the one lost in the repair measurement
SUPPLIERS = [f"127.0.0.{i}" for i in range(91, 96)]
CUSTOMER = "127.0.0.89"
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

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def peak_mib(pid: int) -> float:
    """The process's peak resident memory since it started, or since reset_peak."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak(pid: int) -> None:
    """Start the process's peak resident memory again from what it holds now (proc(5), clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


_TICK = os.sysconf("SC_CLK_TCK")


def stat_fields(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (proc(5): the first is the state, field 3)."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def cpu_seconds(pid: int) -> float:
    """User and system time of the process so far, all its threads."""
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / _TICK


def minor_faults(pid: int) -> int:
    """The pages the process has touched for the first time so far (minor faults: new memory, no disk read)."""
    return int(stat_fields(pid)[7])


class Watched:
    """The peak memory of a `client` process, and the CPU time and new pages of it and its `helpers`, over one
    transfer."""

    def __init__(self, client: int, helpers: list[int]) -> None:
        self.client, self.helpers = client, helpers
        reset_peak(client)
        self.cpu = cpu_seconds(client)
        self.helpers_cpu = sum(cpu_seconds(pid) for pid in helpers)
        self.faults = sum(minor_faults(pid) for pid in [client, *helpers])
        self.kernel, self.total = machine_times()

    def done(self, way: str) -> dict[str, float]:
        return {f"{way}_peak": peak_mib(self.client), f"{way}_cpu": cpu_seconds(self.client) - self.cpu,
                f"{way}_helpers_cpu": sum(cpu_seconds(pid) for pid in self.helpers) - self.helpers_cpu,
                f"{way}_faults": sum(minor_faults(pid) for pid in [self.client, *self.helpers]) - self.faults,
                f"{way}_kernel": self._kernel_share()}

    def _kernel_share(self) -> float:
        kernel, total = machine_times()
        return (kernel - self.kernel) / max(1, total - self.total)


def machine_times() -> tuple[int, int]:
    """The machine's CPU time so far in the kernel (system, interrupts) and in all, in ticks (proc(5), /proc/stat)."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return ticks[2] + ticks[5] + ticks[6], sum(ticks[:8])


def wait_for(check: Any, what: str, timeout: float = 90, interval: float = 0.3) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(interval)
    raise SystemExit(f"timed out waiting for {what}")


class OurGrid:
    """An identity server and DHT seed, 4 suppliers and a customer that hired them, as `twistd bitdust`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.nodes: list[Node] = []
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        server = self._node("server", SERVER, {"services/identity-server/enabled": True,
                                               "services/identity-server/host": SERVER,
                                               "services/entangled-dht/known-nodes": "genesis"})
        server.api("POST", "/identity/create/v1", {"username": "seed"})
        for number, address in enumerate(SUPPLIERS):
            supplier = self._node(f"supplier{number}", address, {"services/supplier/enabled": True,
                                                                 "services/supplier/donated-space": "50 GB"})
            supplier.api("POST", "/identity/create/v1", {"username": f"supplier{number}"})
        self.customer = self._node("customer", CUSTOMER, {"services/customer/enabled": True,
                                                          "services/customer/suppliers-number": 4,
                                                          "services/customer/needed-space": "8 GB"})
        self.customer.api("POST", "/identity/create/v1", {"username": "customer"})
        wait_for(lambda: len([s for s in self.customer.api("GET", "/supplier/list/v1")["result"]
                              if s["supplier_state"] == "CONNECTED"]) == 4, "4 suppliers hired")

    def repair(self, path: Path, remote: str) -> dict[str, float]:
        """Store the file, lose a supplier holding it for good (SIGKILL), and time its shares rebuilt onto the one
        that replaces it: from the replacement to the file whole again (4/4). The upload of the same file is timed
        in the same minutes. The rounds' files are deleted first: the lost supplier held shares of them too, and their
        blocks, rebuilt in an order the random path ids decide, were timed with the file's."""
        for row in self.customer.api("GET", "/file/list/v1")["result"]:
            if "/" not in row["path"]:  # folders go with their files; the rounds store top-level files only
                self.customer.api("DELETE", "/file/delete/v1", {"remote_path": row["path"]})
        started = time.perf_counter()
        reply = self.customer.api("POST", "/file/upload/start/v1", {"local_path": str(path), "remote_path": remote,
                                                                     "wait_result": True})
        if reply.get("status") != "OK" or reply["result"].get("state") != "done":
            raise SystemExit(f"upload failed: {reply}")
        up = time.perf_counter() - started
        # checks every 2 s and a silent supplier replaced after 5 s (applied within 10 s): no waiting a day
        for key, value in (("health-check-interval-seconds", 2), ("replace-offline-after-seconds", 5)):
            self.customer.api("POST", "/config/set/v1", {"key": f"services/customer/{key}", "value": value})
        wait_for(lambda: self.health(remote) == (4, 4), "the file checked whole", timeout=120)
        rows = self.customer.api("GET", "/supplier/list/v1")["result"]
        lost = rows[-1]["idurl"]
        victim = next(n for n in self.nodes if n.name == lost.rsplit("/", 1)[1].removesuffix(".xml"))
        victim.process.kill()
        victim.process.wait()
        self.nodes.remove(victim)
        wait_for(lambda: self.customer.api("GET", "/supplier/list/v1")["result"][-1]["idurl"] not in ("", lost),
                 "the lost supplier replaced", timeout=120)
        started = time.perf_counter()
        wait_for(lambda: self.health(remote) == (4, 4), "the file whole again", timeout=3600, interval=0.05)
        rebuilt = time.perf_counter() - started
        status = self.customer.api("GET", "/service/info/v1?name=service_customer")["result"]
        return {"up": up, "repair": rebuilt, "share_bytes": float(status["repair"]["bytes_repaired"])}

    def health(self, remote: str) -> tuple[int, int]:
        rows = self.customer.api("GET", "/file/list/v1")["result"]
        found = next((r["health"] for r in rows if r["path"] == remote), {"ok": 0, "total": 0})
        return found["ok"], found["total"]

    def _node(self, name: str, address: str, extra: dict[str, Any]) -> Node:
        node = Node(self.root, name, address, extra)
        self.nodes.append(node)
        node.wait_up()
        return node

    def watch(self) -> Watched:
        suppliers = [n.process.pid for n in self.nodes if n.name.startswith("supplier")]
        return Watched(self.customer.process.pid, suppliers)

    def round_trip(self, path: Path, remote: str) -> dict[str, float]:
        """Upload through the customer's REST API and download again, each timed from request to answer."""
        watched = self.watch()
        started = time.perf_counter()
        reply = self.customer.api("POST", "/file/upload/start/v1", {"local_path": str(path), "remote_path": remote,
                                                                     "wait_result": True})
        if reply.get("status") != "OK" or reply["result"].get("state") != "done":
            raise SystemExit(f"upload failed: {reply}")
        up = time.perf_counter() - started
        figures = watched.done("up")
        back = self.root / "restored"
        watched = self.watch()
        started = time.perf_counter()
        reply = self.customer.api("POST", "/file/download/start/v1", {"remote_path": remote,
                                                                       "destination_folder": str(back),
                                                                       "wait_result": True})
        down = time.perf_counter() - started
        figures |= watched.done("down")
        if reply.get("status") != "OK" or not same_file(back / remote, path):
            raise SystemExit(f"download failed or differs: {reply}")
        (back / remote).unlink()
        return {"up": up, "down": down, **figures}

    def stop(self) -> None:
        for node in reversed(self.nodes):
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


class TahoeGrid:
    """An introducer, 4 storage nodes and a client on loopback, used through the client's web API."""

    def __init__(self, tahoe: str, root: Path) -> None:
        self.tahoe, self.root = tahoe, root
        self.procs: list[subprocess.Popen[bytes]] = []
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _run(self, *args: str) -> None:
        subprocess.run([self.tahoe, *args], check=True, capture_output=True)

    def _launch(self, node: Path) -> None:
        # `tahoe run` stops when its stdin closes unless told not to
        self.procs.append(subprocess.Popen([self.tahoe, "run", "--allow-stdin-close", str(node)],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def _start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        introducer = self.root / "introducer"
        self._run("create-introducer", "--port", f"tcp:39100:interface={TAHOE_HOST}",
                  "--location", f"tcp:{TAHOE_HOST}:39100", str(introducer))
        self._launch(introducer)
        furl = introducer / "private" / "introducer.furl"
        wait_for(furl.exists, "the Tahoe introducer")
        for number in range(5):
            node = self.root / (f"storage{number}" if number < 4 else "client")
            port = 39110 + number
            self._run("create-node", "--port", f"tcp:{port}:interface={TAHOE_HOST}",
                      "--location", f"tcp:{TAHOE_HOST}:{port}", "--introducer", furl.read_text().strip(),
                      "--shares-needed", "2", "--shares-happy", "4", "--shares-total", "4",
                      "--webport", f"tcp:{39200 + number}:interface=127.0.0.1",
                      *(["--no-storage"] if number == 4 else []), str(node))
            self._launch(node)

        def connected() -> bool:
            try:
                with urllib.request.urlopen(TAHOE_WEB + "/?t=json", timeout=2) as reply:
                    servers = json.loads(reply.read()).get("servers", [])
                return sum(1 for s in servers if s.get("connection_status", "").lower().startswith("connected")) >= 4
            except OSError:
                return False

        wait_for(connected, "the Tahoe client to see 4 storage nodes", timeout=120)

    def watch(self) -> Watched:
        # the client is the last started; the introducer is no part of a transfer
        return Watched(self.procs[-1].pid, [proc.pid for proc in self.procs[1:-1]])

    def round_trip(self, path: Path, remote: str) -> dict[str, float]:
        """PUT /uri and GET /uri/<cap> (the file streamed both ways, no CLI start-up in the figures)."""
        watched = self.watch()
        started = time.perf_counter()
        with open(path, "rb") as source:
            request = urllib.request.Request(TAHOE_WEB + "/uri", data=source, method="PUT",
                                             headers={"Content-Length": str(path.stat().st_size)})
            with urllib.request.urlopen(request, timeout=3600) as reply:
                cap = reply.read().decode().strip()
        up = time.perf_counter() - started
        figures = watched.done("up")
        back = self.root / f"{remote}.back"
        watched = self.watch()
        started = time.perf_counter()
        with urllib.request.urlopen(f"{TAHOE_WEB}/uri/{urllib.parse.quote(cap)}", timeout=3600) as reply, \
                open(back, "wb") as out:
            shutil.copyfileobj(reply, out, 1 << 20)
        down = time.perf_counter() - started
        figures |= watched.done("down")
        if not same_file(back, path):
            raise SystemExit("Tahoe gave back other bytes")
        back.unlink()
        return {"up": up, "down": down, **figures}

    def stop(self) -> None:
        stop_all(self.procs)


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def random_file(path: Path, mib: int) -> Path:
    with open(path, "wb") as out:
        for _ in range(mib):
            out.write(os.urandom(1 << 20))
    # written back to disk now: else the first supplier fsync waits for hundreds of MB of it (ext4 orders
    # data before the metadata it commits), which cost an upload up to half its speed
    os.sync()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="16,256", help="file sizes in MiB, comma-separated")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every size on both grids")
    parser.add_argument("--tahoe", default=shutil.which("tahoe") or "/tmp/tahoe-venv/bin/tahoe")
    parser.add_argument("--repair", type=int, default=64, help="MiB stored, then rebuilt after a supplier is lost "
                                                                 "(0: no repair measurement)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    figures: dict[tuple[int, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        grids: dict[str, Any] = {}
        try:
            grids["ours"] = OurGrid(root / "ours")
            if Path(args.tahoe).exists():
                grids["tahoe"] = TahoeGrid(args.tahoe, root / "tahoe")
            costs = [Costs.measure()]  # the floor's pieces timed before the rounds and after, the lower taken
            for number in range(args.rounds):
                # both grids store the same new file in turn, the one going first alternating: a slower or faster
                # minute of this machine falls on both, and neither finds the other's file (Tahoe dedups)
                order = list(grids.items())
                for size in sizes:
                    path = random_file(root / f"round{number}-{size}MiB.bin", size)
                    for name, grid in order if number % 2 == 0 else reversed(order):
                        figures.setdefault((size, name), []).append(grid.round_trip(path, path.name))
                    path.unlink()
            costs.append(Costs.measure())
            repaired = None
            if args.repair:
                path = random_file(root / f"repair-{args.repair}MiB.bin", args.repair)
                repaired = grids["ours"].repair(path, path.name)
        finally:
            for grid in grids.values():
                grid.stop()
    floor = storage_floor(lowest(costs), SHARES, BLOCK_MIB)
    print(costs[-1].describe())
    for size in sizes:
        print(size_line(size, figures[(size, "ours")], figures.get((size, "tahoe"))))
        print(cpu_line(size, figures[(size, "ours")], figures.get((size, "tahoe")), floor))
        print(pages_line(size, figures[(size, "ours")], figures.get((size, "tahoe"))))
    if repaired is not None:
        mb = args.repair * 1.048576
        print(f"repair {args.repair} MiB after a supplier of 4 is lost (any 2 rebuild): file made whole at "
              f"{mb / repaired['repair']:.1f} MB/s ({repaired['share_bytes'] / 1e6 / repaired['repair']:.1f} MB/s of "
              f"shares rebuilt and stored), next to its upload at {mb / repaired['up']:.1f} MB/s in the same run")


def peak(runs: list[dict[str, float]]) -> float:
    """The highest resident memory the client reached moving files of one size, either way, in any round."""
    return max(max(run["up_peak"], run["down_peak"]) for run in runs)


def size_line(size: int, ours: list[dict[str, float]], theirs: list[dict[str, float]] | None) -> str:
    """One line a size: medians over the rounds, and each round's ratio (the first is on fresh nodes)."""
    def speed(runs: list[dict[str, float]], way: str) -> float:
        return size * 1.048576 / statistics.median(run[way] for run in runs)

    line = (f"storage {size} MiB over 4 suppliers (any 2 rebuild), median of {len(ours)} round(s): ours up "
            f"{speed(ours, 'up'):.1f} MB/s down {speed(ours, 'down'):.1f} MB/s")
    if theirs is None:
        return line + f" (Tahoe-LAFS not installed: pass --tahoe); customer peak RSS {peak(ours):.0f} MiB"
    ratios = {way: [other[way] / mine[way] for mine, other in zip(ours, theirs, strict=True)] for way in ("up", "down")}
    rounds = "; ".join(f"{way} " + " ".join(f"{r:.2f}" for r in ratios[way]) for way in ("up", "down"))
    return (line + f" vs Tahoe-LAFS 2-of-4 up {speed(theirs, 'up'):.1f} MB/s down {speed(theirs, 'down'):.1f} MB/s "
            f"(ratio up {statistics.median(ratios['up']):.2f}, down {statistics.median(ratios['down']):.2f}; "
            f"round by round, first on fresh nodes: {rounds}); peak RSS customer {peak(ours):.0f} MiB, "
            f"Tahoe client {peak(theirs):.0f} MiB")


# the grid's redundancy and the customer's block (services/customer/block-size's default)
SHARES, BLOCK_MIB = 4, 4.0


def lowest(measured: list[Costs]) -> Costs:
    """Each piece at the lowest of its timings: the floor of the cheapest minute of the run."""
    return Costs(**{field.name: min(getattr(c, field.name) for c in measured) for field in dataclasses.fields(Costs)})


def storage_floor(costs: Costs, n: int, block_mib: float) -> dict[str, float]:
    """The floor a MiB of a file stored or restored, in ms, for the customer and for the n suppliers together.

    Up: the customer seals the file (AES-256-GCM, a wrapped key a block), codes it into n/k MiB of shares
    (zfec), base64-encodes them and signs each share's Data packet (SHA-1 over 4/3 n/k MiB, n signatures a
    block), and checks the suppliers' Acks; the suppliers check the packets and sign the Acks. Down, the
    cheapest way: k data shares (1 MiB of shares, no decoding), each a supplier's Data packet around the stored
    one, which the supplier checks before it sends it (as official suppliers do) and the customer checks
    (SHA-1 over the stored packet's 4/3 MiB of text twice) after checking the Data packet around it (SHA-1 once
    more); then base64-decoded, opened (a key unwrapped a block) and written. The k Retrieve requests a block
    are signed and checked."""
    k = -(-n // 2)
    text = 4 / 3  # base64 text a MiB of shares
    blocks = 1 / block_mib
    up = signed_packets(costs, text * n / k, n * blocks)
    acks = signed_packets(costs, 0, n * blocks)
    requests = signed_packets(costs, 0, k * blocks)
    outer = signed_packets(costs, text, k * blocks)  # the supplier's Data packet around the stored packet
    stored = costs.sha1_mib * text + costs.rsa_verify * k * blocks
    return {
        "up": (costs.aes_gcm_encrypt_mib + costs.rsa_wrap * blocks + costs.zfec_encode_mib
               + costs.base64_encode_mib * n / k + up.sender + acks.receiver),
        "up_helpers": up.receiver + acks.sender,
        "down": (requests.sender + outer.receiver + stored + costs.base64_decode_mib + costs.aes_gcm_decrypt_mib
                 + costs.rsa_unwrap * blocks),
        "down_helpers": requests.receiver + stored + outer.sender,
    }


def cpu_line(size: int, ours: list[dict[str, float]], theirs: list[dict[str, float]] | None,
             floor: dict[str, float]) -> str:
    """Our CPU a MiB of the file, each side each way (medians of the rounds), against the floor; Tahoe's beside."""
    def spent(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(run[f"{key}_cpu"] for run in runs) * 1000 / size

    parts = []
    for way in ("up", "down"):
        for side, key in (("customer", way), ("suppliers", f"{way}_helpers")):
            mine = spent(ours, key)
            parts.append(f"{side} {way} cpu_per_mib_ms={mine:.2f} floor_ms={floor[key]:.2f} (x{mine / floor[key]:.1f})")
    line = f"storage {size} MiB cpu: " + ", ".join(parts)
    if theirs is not None:
        line += "; Tahoe client up {:.2f} down {:.2f}, its servers up {:.2f} down {:.2f} ms a MiB".format(
            *(spent(theirs, key) for key in ("up", "down", "up_helpers", "down_helpers")))
    return line


def pages_line(size: int, ours: list[dict[str, float]], theirs: list[dict[str, float]] | None) -> str:
    """The pages each grid's client and servers touched new, each round each way, and the share of the machine's
    CPU time spent in its kernel meanwhile. Where a host backs a virtual machine's memory only on first use, a
    page it has not backed yet (or took back once freed) costs several times more: a round touching many new
    pages then spends much of its time in the kernel, whoever runs it."""
    def rounds(runs: list[dict[str, float]]) -> str:
        return "; ".join(f"{way} " + " ".join(f"{run[f'{way}_faults'] / 1000:.1f}k/{run[f'{way}_kernel']:.0%}"
                                              for run in runs) for way in ("up", "down"))

    line = f"storage {size} MiB new pages touched / the machine's kernel share, round by round: ours {rounds(ours)}"
    return line if theirs is None else line + f"; Tahoe {rounds(theirs)}"


if __name__ == "__main__":
    main()
