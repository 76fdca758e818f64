"""Discovery of a loopback unit: Assay's two-phase discovery against plain nmap, same run.

Both sides get the same host, the same port list and the same service set: a real redis-server
(when installed) and small Python services (an SSH-like banner, HTTP, an FTP-like greeting and a
silent discard-like port). Plain nmap is run as a user would: one `nmap -n -Pn -sV` over the port
list. Assay runs `scanner.discovery.discover` (port scan first, then identification in small
parallel runs). Each side runs ROUNDS times, alternating; the medians and their ratio are
printed and written to bench/results/discovery.json.

    python bench/bench_discovery.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scanner.discovery import DiscoverySettings, ScanSpec, discover  # noqa: E402
from scanner.scope import ScopeGuard  # noqa: E402
from tests.helpers import free_port, pick_loopback, wait_port  # noqa: E402


def _serve(addr: str, greeting: bytes | None, http: bool = False) -> int:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, 0))
    srv.listen(64)

    def loop() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    def handle(conn: socket.socket) -> None:
        conn.settimeout(30)
        try:
            if greeting:
                conn.sendall(greeting)
            if http:
                data = conn.recv(4096)
                if data:
                    body = b"<html><body>bench</body></html>"
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\n"
                        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                        + body
                    )
                return
            while conn.recv(4096):
                pass
        except OSError:
            pass
        finally:
            conn.close()

    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1]


def start_unit(addr: str, silent: bool = True) -> tuple[list[int], list[subprocess.Popen[bytes]]]:
    ports = [
        _serve(addr, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"),
        _serve(addr, None, http=True),
        _serve(addr, b"220 (vsFTPd 3.0.3)\r\n"),
    ]
    if silent:
        ports.append(_serve(addr, None))  # silent, discard-like
    procs = []
    redis = shutil.which("redis-server")
    if redis:
        port = free_port(addr)
        procs.append(
            subprocess.Popen(
                [redis, "--bind", addr, "--port", str(port), "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_port(addr, port)
        ports.append(port)
    return ports, procs


def run_nmap(addr: str, ports: list[int], budget: float) -> float:
    args = [
        "nmap",
        "-n",
        "-Pn",
        "-sV",
        "--host-timeout",
        f"{int(budget * 3)}s",
        "-p",
        ",".join(map(str, ports)),
        addr,
    ]
    if os.geteuid() == 0:
        args.insert(1, "-sS")
    t0 = time.perf_counter()
    subprocess.run(args, capture_output=True, check=True, timeout=600)
    return time.perf_counter() - t0


def run_assay(addr: str, ports: list[int], budget: float) -> tuple[float, int]:
    guard = ScopeGuard.of(hosts=[(addr, "bench")])
    spec = ScanSpec(addr, (), ",".join(map(str, ports)), True)
    t0 = time.perf_counter()
    res = asyncio.run(discover([spec], guard, DiscoverySettings(version_budget=budget)))
    return time.perf_counter() - t0, len(res.services)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--budget", type=float, default=10.0, help="Assay's version budget (s)")
    ap.add_argument("--no-silent", action="store_true", help="leave out the silent port")
    opts = ap.parse_args()
    if not shutil.which("nmap"):
        sys.exit("nmap is needed for this benchmark (apt-get install nmap)")
    addr = pick_loopback()
    ports, procs = start_unit(addr, silent=not opts.no_silent)
    try:
        nmap_times, assay_times, found = [], [], 0
        for _ in range(opts.rounds):
            nmap_times.append(run_nmap(addr, ports, opts.budget))
            t, found = run_assay(addr, ports, opts.budget)
            assay_times.append(t)
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
    n, a = statistics.median(nmap_times), statistics.median(assay_times)
    result = {
        "ports": len(ports),
        "silent_port": not opts.no_silent,
        "services_found_by_assay": found,
        "rounds": opts.rounds,
        "nmap_median_s": round(n, 3),
        "assay_median_s": round(a, 3),
        "assay_over_nmap": round(a / n, 3),
        "max_rss_mb_self": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "max_rss_mb_children": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
    }
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    name = "discovery-no-silent.json" if opts.no_silent else "discovery.json"
    (out / name).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
