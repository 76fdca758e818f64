"""The team server at scale: simulated hosts in several units, assessed through the server by
Celery workers on a real Redis broker, side by side with plain nmap on the same hosts.

The bench starts HOSTS loopback hosts (each a distinct 127.x.y.z address with one light
Redis-like service that answers PING, in one asyncio child process, so its sockets do not count
towards the server's memory), splits them into UNITS units,
registers the units with the server (in this process, on an SQLite file), starts WORKERS
`assay worker` processes that share the units' queues, starts one scan per unit through the
API and waits until every job is complete. Reported: hosts assessed per minute, end to end, and
the peak memory (VmHWM) of the server process and of each worker. For reference, plain
`nmap -n -Pn -sV` over the same hosts and port runs in the same session.

    python bench/bench_server.py [--hosts 200] [--units 4] [--workers 2] [--nmap-timeout 1800]

Results go to bench/results/server.json (with the load average before and after: the numbers
are only comparable between runs on an equally loaded machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from scanner.server.app import ServerConfig, create_app  # noqa: E402
from scanner.server.security import Role  # noqa: E402
from tests.helpers import pick_loopback  # noqa: E402
from tests.servers_redis import RedisServer  # noqa: E402

PORT = 6390  # every simulated host listens here (Redis-like, so the Redis checks run)
ASSAY = (sys.executable, "-c", "from scanner.cli import main; main()")


def _addresses(n: int) -> list[str]:
    rng = random.Random(20261203)
    out: set[str] = set()
    while len(out) < n:
        out.add(f"127.{rng.randint(100, 199)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}")
    return sorted(out)


class _Hosts(threading.Thread):
    """One asyncio loop serving a tiny Redis-like responder on every simulated host."""

    def __init__(self, addrs: list[str]) -> None:
        super().__init__(daemon=True)
        self.addrs = addrs
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await asyncio.wait_for(reader.read(4096), 10):
                if b"PING" in data.upper():
                    writer.write(b"+PONG\r\n")
                else:
                    writer.write(b"-NOAUTH Authentication required.\r\n")
                await writer.drain()
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()

    async def _main(self) -> None:
        for a in self.addrs:
            await asyncio.start_server(self._client, a, PORT)
        self.ready.set()
        await asyncio.Event().wait()

    def run(self) -> None:
        self.loop.run_until_complete(self._main())


def _serve_hosts(n: int) -> None:
    """Child-process mode: serve the simulated hosts until stdin closes."""
    hosts = _Hosts(_addresses(n))
    hosts.start()
    if not hosts.ready.wait(120):
        sys.exit("simulated hosts did not start within 120 s")
    print("ready", flush=True)
    sys.stdin.read()


def _start_hosts(n: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-hosts", str(n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # bounded by the child's own 120 s limit
    if line.strip() != "ready":
        proc.kill()
        sys.exit(f"simulated hosts failed to start: {line!r}")
    return proc


def _wait_ready(logs: list[Path], timeout: float = 120.0) -> None:
    """Until every worker logged that it consumes its queues (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(b"ready." in p.read_bytes() for p in logs):
            return
        time.sleep(0.2)
    sys.exit(f"workers not ready within {timeout:.0f} s; see {', '.join(map(str, logs))}")


def _hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=200)
    ap.add_argument("--units", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds for Assay's jobs")
    ap.add_argument("--nmap-timeout", type=float, default=1800, help="seconds for nmap -sV")
    ap.add_argument("--no-nmap", action="store_true", help="measure Assay only (re-measuring)")
    ap.add_argument("--out", default="server.json", help="file name under bench/results/")
    ap.add_argument("--serve-hosts", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_hosts:
        _serve_hosts(args.serve_hosts)
        return
    load_before = os.getloadavg()
    addrs = _addresses(args.hosts)
    hosts = _start_hosts(args.hosts)
    tmp = Path(tempfile.mkdtemp(prefix="assay-bench-server-"))
    broker_addr = pick_loopback()
    with RedisServer(tmp / "broker", broker_addr, ("protected-mode no",)) as broker:
        broker_url = f"redis://{broker_addr}:{broker.port}/0"
        db = f"sqlite:///{tmp / 'server.db'}"
        app = create_app(ServerConfig(db_url=db, broker_url=broker_url, tick=3600))
        sdb = app.state.sdb
        token = sdb.create_token(sdb.create_user("bench", "bench password 1", Role.ADMIN), "b")
        h = {"Authorization": f"Bearer {token}"}
        queues = [f"q-{i}" for i in range(args.units)]
        workers = []
        logs = [tmp / f"worker-{w}.log" for w in range(args.workers)]
        for w in range(args.workers):
            mine = queues[w :: args.workers]
            log = logs[w].open("ab")
            workers.append(
                subprocess.Popen(
                    [*ASSAY, "worker", "--broker", broker_url, "--db", db,
                     *[x for q in mine for x in ("--queue", q)]],
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )
            )  # fmt: skip
            log.close()
        _wait_ready(logs)
        with TestClient(app, base_url="https://bench") as client:
            jobs = []
            for i in range(args.units):
                part = addrs[i :: args.units]
                inv = (
                    "version: 1\nsettings: {probe_timeout: 3, concurrency: 64, per_host: 4}\n"
                    f"units:\n  - id: unit-{i}\n    name: Unit {i}\n    hosts:\n"
                    + "".join(f'      - address: {a}\n        ports: "{PORT}"\n' for a in part)
                )
                r = client.post(
                    "/api/v1/units",
                    headers=h,
                    json={"id": f"unit-{i}", "inventory": inv, "queue": queues[i]},
                )
                assert r.status_code == 201, r.text
            t0 = time.monotonic()
            for i in range(args.units):
                jobs.append(
                    client.post(f"/api/v1/units/unit-{i}/scans", headers=h, json={}).json()["job"]
                )
            states: dict[str, str] = {}
            peaks = {w.pid: 0 for w in workers}
            while time.monotonic() - t0 < args.timeout:
                states = {
                    j: client.get(f"/api/v1/jobs/{j}", headers=h).json()["state"] for j in jobs
                }
                for w in workers:
                    peaks[w.pid] = max(peaks[w.pid], _hwm_kb(w.pid))
                if all(s in ("complete", "failed") for s in states.values()):
                    break
                time.sleep(0.5)
            wall = time.monotonic() - t0
            scores = client.get("/api/v1/scores", headers=h).json()
        for w in workers:
            os.killpg(w.pid, signal.SIGTERM)
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(w.pid, signal.SIGKILL)
                w.wait(10)
    assay_peaks = {w.pid: v for w, v in zip(workers, peaks.values(), strict=True)}
    _write(args.out, {"partial": "nmap still to run", "wall_s": round(wall, 1), "jobs": states,
            "worker_peak_rss_mb": [round(v / 1024, 1) for v in assay_peaks.values()]})  # fmt: skip
    nmap = None if args.no_nmap else shutil.which("nmap")
    nmap_wall = None
    nmap_timed_out = False
    if nmap:
        t = time.monotonic()
        try:
            subprocess.run([nmap, "-n", "-Pn", "-sV", "-p", str(PORT), *addrs],
                           capture_output=True, timeout=args.nmap_timeout)  # fmt: skip
        except subprocess.TimeoutExpired:  # recorded as at least the timeout
            nmap_timed_out = True
        nmap_wall = time.monotonic() - t
    hosts_peak = _hwm_kb(hosts.pid)
    assert hosts.stdin is not None
    hosts.stdin.close()
    hosts.wait(30)
    result = {
        "hosts": args.hosts,
        "units": args.units,
        "workers": args.workers,
        "jobs": states,
        "wall_s": round(wall, 1),
        "hosts_per_minute": round(args.hosts / wall * 60, 1),
        "server_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "worker_peak_rss_mb": [round(v / 1024, 1) for v in peaks.values()],
        "simulated_hosts_process_rss_mb": round(hosts_peak / 1024, 1),
        "nmap_sV_wall_s": round(nmap_wall, 1) if nmap_wall else None,
        "nmap_timed_out": nmap_timed_out,
        # with nmap_timed_out, nmap's time is at least nmap_sV_wall_s: the ratio is an upper bound
        "ratio_assay_vs_nmap": round(wall / nmap_wall, 3) if nmap_wall else None,
        "units_scored": [
            {
                "unit": s["unit"],
                "policy": s["scores"]["policy"] if s["scores"] else None,
                "pass_rate": s["scores"]["pass_rate"] if s["scores"] else None,
                "grade": s["scores"]["grade"] if s["scores"] else None,
            }
            for s in scores
        ],
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    _write(args.out, result)
    print(json.dumps(result, indent=2))


def _write(name: str, result: dict[str, object]) -> None:
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / Path(name).name).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
