"""Identity server throughput: GET /alice.xml from the node, from bare nginx and through the shipped
nginx site, and POST / ingestion.

    .venv/bin/python benchmarks/idserver_bench.py [--seconds 10] [--connections 50] [--uploads 2000]

Runs the identity server in a child process on 127.0.0.15; one nginx (Debian's) serves the stored
file from disk on 127.0.0.16 and runs conf/nginx/bitdust-identity-server.conf, as shipped but for
its addresses and store folder, on 127.0.0.17 in front of the node. wrk drives all three, then
fresh signed identities are POSTed with an asyncio load generator. Ends with one machine-readable
line.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bitdust_node.crypto import keys  # noqa: E402
from bitdust_node.identity.signing import sign_identity  # noqa: E402
from bitdust_node.wire import identity_xml  # noqa: E402

SERVER_ADDRESS = "127.0.0.15"
NGINX_ADDRESS = "127.0.0.16"
SITE_ADDRESS = "127.0.0.17"
SITE_CONF = ROOT / "conf" / "nginx" / "bitdust-identity-server.conf"
PACKAGE_STORE = "/var/lib/bitdust/.bitdust/identityserver"
HOST = "127.0.0.15"
PORT = 8084


def serve(store_dir: Path) -> None:
    """Child process: the identity server alone in its own reactor."""
    from twisted.internet import reactor as global_reactor

    reactor: Any = global_reactor

    from bitdust_node.identity.server import IdServer
    from bitdust_node.identity.server_http_fast import make_site
    from bitdust_node.identity.server_store import IdentityStore

    store = IdentityStore(store_dir)
    store.load()
    idserver = IdServer(HOST, store, reactor, expire_days=60)
    reactor.listenTCP(PORT, make_site(idserver, reactor), backlog=1024, interface=SERVER_ADDRESS)
    idserver.machine.start()
    print("READY", flush=True)
    reactor.run()


def signed_for(host: str, name: str, key: object, revision: int = 0) -> bytes:
    """A signed identity hosted at http://host:8084/<name>.xml."""
    identity = identity_xml.Identity(
        sources=(f"http://{host}:{PORT}/{name}.xml",),
        contacts=(f"tcp://{host}:7771",),
        date="Nov 25, 2026",
        revision=revision,
    )
    return identity_xml.serialize(sign_identity(identity, key))  # type: ignore[arg-type]


def signed(name: str, key: object, revision: int = 0) -> bytes:
    return signed_for(HOST, name, key, revision)


def wrk(url: str, seconds: int, connections: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if match is None or errors:
        raise SystemExit(f"wrk failed against {url}:\n{out}")
    return float(match.group(1))


POST_SCRIPT = """
local bodies = {}
local counter = 0
function init(args)
    local f = assert(io.open(args[1], "rb"))
    local data = f:read("*a")
    f:close()
    for body in string.gmatch(data, "(.-)\\n%-%-%-%-\\n") do
        table.insert(bodies, body)
    end
end
function request()
    counter = counter + 1
    local body = bodies[(counter % #bodies) + 1]
    return wrk.format("POST", "/", {["Content-Length"] = #body}, body)
end
"""


def wrk_post(bodies: list[bytes], seconds: int, connections: int, work: Path) -> float:
    """Keep-alive POST / rate with wrk, cycling over signed identities (repeats are touches)."""
    (work / "bodies.bin").write_bytes(b"".join(b + b"\n----\n" for b in bodies))
    (work / "post.lua").write_text(POST_SCRIPT)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "-s",
            str(work / "post.lua"),
            f"http://{SERVER_ADDRESS}:{PORT}/",
            "--",
            str(work / "bodies.bin"),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None or "Non-2xx" in out:
        raise SystemExit(f"wrk POST failed:\n{out}")
    return float(match.group(1))


def shipped_site(docroot: Path) -> str:
    """The conf/ site with its listen address, backend and store folder moved to the benchmark's."""
    site = SITE_CONF.read_text()
    for shipped, here in (
        ("listen 80;", f"listen {SITE_ADDRESS}:{PORT};"),
        ("server 127.0.0.1:8084;", f"server {SERVER_ADDRESS}:{PORT};"),
        (PACKAGE_STORE, str(docroot)),
    ):
        if shipped not in site:
            raise SystemExit(f"{SITE_CONF} no longer holds {shipped!r}")
        site = site.replace(shipped, here)
    return site


def start_nginx(work: Path, docroot: Path) -> subprocess.Popen[bytes] | None:
    if not shutil.which("nginx") and not Path("/usr/sbin/nginx").exists():
        return None
    (work / "tmp").mkdir()
    (work / "site.conf").write_text(shipped_site(docroot))
    conf = work / "nginx.conf"
    conf.write_text(
        f"""pid {work}/nginx.pid;
error_log {work}/error.log warn;
worker_processes 1;
daemon off;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {work}/tmp/body;
    proxy_temp_path {work}/tmp/proxy;
    fastcgi_temp_path {work}/tmp/fastcgi;
    uwsgi_temp_path {work}/tmp/uwsgi;
    scgi_temp_path {work}/tmp/scgi;
    types {{ application/xml xml; }}
    server {{
        listen {NGINX_ADDRESS}:{PORT};
        root {docroot};
    }}
    include {work}/site.conf;
}}
"""
    )
    return subprocess.Popen(["/usr/sbin/nginx", "-c", str(conf), "-p", str(work)])


async def post_one(address: str, port: int, body: bytes) -> int:
    reader, writer = await asyncio.open_connection(address, port)
    writer.write(
        b"POST / HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\nContent-Length: %d\r\n"
        b"User-Agent: BitDust HTTP client\r\n\r\n%s" % (address.encode(), port, len(body), body)
    )
    await writer.drain()
    status_line = await reader.readline()
    await reader.read()
    writer.close()
    return int(status_line.split()[1])


async def ingest_to(address: str, port: int, bodies: list[bytes], concurrency: int) -> tuple[float, int]:
    """POST every body, one connection each as official clients do: (seconds, how many were accepted)."""
    queue = list(reversed(bodies))
    accepted = 0

    async def worker() -> None:
        nonlocal accepted
        while queue:
            if await post_one(address, port, queue.pop()) == 200:
                accepted += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, accepted


async def ingest(bodies: list[bytes], concurrency: int) -> tuple[float, int]:
    return await ingest_to(SERVER_ADDRESS, PORT, bodies, concurrency)


def wait_until_listening(address: str, port: int, timeout: float = 10.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {address}:{port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--uploads", type=int, default=2000)
    parser.add_argument("--key-size", type=int, default=2048)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="idserver_bench."))
    work.chmod(0o755)  # nginx workers run as another user and read the store
    store = work / "store"
    store.mkdir()
    key = keys.generate_key(args.key_size)
    (store / "alice.xml").write_bytes(signed("alice", key))
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(store)], stdout=subprocess.PIPE, text=True)
    nginx = None
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "READY":
            raise SystemExit("identity server did not start")
        (work / "nginx").mkdir()
        nginx = start_nginx(work / "nginx", store)
        wrk(f"http://{SERVER_ADDRESS}:{PORT}/alice.xml", 1, args.connections)  # warm-up
        server_rps = wrk(f"http://{SERVER_ADDRESS}:{PORT}/alice.xml", args.seconds, args.connections)
        print(f"identity server GET /alice.xml: {server_rps:.0f} requests/s")
        nginx_rps = site_rps = 0.0
        if nginx is not None:
            wait_until_listening(NGINX_ADDRESS, PORT)
            nginx_rps = wrk(f"http://{NGINX_ADDRESS}:{PORT}/alice.xml", args.seconds, args.connections)
            print(f"nginx GET /alice.xml (same file): {nginx_rps:.0f} requests/s")
            print(f"ratio identity server / nginx: {server_rps / nginx_rps:.3f}")
            wait_until_listening(SITE_ADDRESS, PORT)
            site_rps = wrk(f"http://{SITE_ADDRESS}:{PORT}/alice.xml", args.seconds, args.connections)
            print(f"conf/ nginx site in front of the node GET /alice.xml: {site_rps:.0f} requests/s")
            print(f"ratio site / bare nginx: {site_rps / nginx_rps:.3f}")
        bodies = [signed(f"user{i:05d}", key) for i in range(args.uploads)]
        elapsed, accepted = asyncio.run(ingest(bodies, concurrency=32))
        if accepted != len(bodies):
            raise SystemExit(f"only {accepted} of {len(bodies)} uploads were accepted")
        rate = accepted / elapsed
        print(
            f"POST / ingestion, one connection per upload as official clients do: "
            f"{accepted} new identities in {elapsed:.2f} s = {rate:.0f} identities/s"
        )
        keepalive = wrk_post(bodies, args.seconds, args.connections, work)
        print(f"POST / ingestion, keep-alive (wrk, revalidated and rewritten each time): {keepalive:.0f} identities/s")
        ratio = server_rps / nginx_rps if nginx_rps else 0.0
        site_ratio = site_rps / nginx_rps if nginx_rps else 0.0
        print(
            f"idserver_bench get_rps={server_rps:.0f} nginx_rps={nginx_rps:.0f} ratio={ratio:.3f} "
            f"site_rps={site_rps:.0f} site_ratio={site_ratio:.3f} "
            f"post_ingest_per_s={rate:.0f} post_keepalive_per_s={keepalive:.0f} key_bits={args.key_size}"
        )
    finally:
        if nginx is not None:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(timeout=10)
        child.send_signal(signal.SIGINT)
        child.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
