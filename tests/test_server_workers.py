"""Scale-out: the server enqueues each unit's job on that unit's Celery queue; `assay worker`
processes on a real Redis broker run them. One worker is killed mid-scan: after it comes back,
the redelivered job resumes the same scan, which completes with every target exactly once.

No step depends on how fast the machine is: unit A's scan is held open by a host that accepts
and never answers (for up to HOLD seconds of probe timeout), the worker is killed once that
host was reached and a target is stored, and the host is then stopped so the resumed scan
finds its port closed at once. Every wait is for a state, with a deadline.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from scanner.server.app import ServerConfig, create_app
from scanner.server.security import Role
from scanner.store import targets
from tests.helpers import free_port, pick_loopback
from tests.servers_redis import HAVE_REDIS, WEAK_LINES, RedisServer, ScriptedServer, silent

pytestmark = pytest.mark.skipif(not HAVE_REDIS, reason="redis-server is not installed")

ASSAY = (sys.executable, "-c", "from scanner.cli import main; main()")
VISIBILITY = 4  # seconds before an unacknowledged job goes to another worker
WAIT = 120.0
HOLD = 30  # probe timeout of unit A: how long its silent host keeps the scan running


def _until(ready: Callable[[], bool], what: str, log: Path | None = None) -> None:
    """Poll `ready` (backing off from 20 ms to 0.5 s) until true; fail after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    pause = 0.02
    while not ready():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise AssertionError(f"{what} within {WAIT:.0f}s\n{tail}")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.5)


def _holding(reached: threading.Event) -> Callable[[socket.socket, threading.Event], None]:
    """A host that accepts, tells the test it was reached, and never answers."""

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        reached.set()
        silent(conn, stop)

    return handler


def _worker(queue: str, broker: str, db: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                *ASSAY,
                "worker",
                "--queue",
                queue,
                "--broker",
                broker,
                "--db",
                db,
                "--visibility-timeout",
                str(VISIBILITY),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=20)


def _inventory(unit: str, hosts: list[tuple[str, int]], probe_timeout: float = 3) -> str:
    lines = [
        "version: 1",
        f"settings: {{probe_timeout: {probe_timeout}, version_budget: 5}}",
        "units:",
        f"  - id: {unit}",
        f"    name: Unit {unit}",
        "    hosts:",
    ]
    for addr, port in hosts:
        lines += [f"      - address: {addr}", f'        ports: "{port}"']
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    addr = pick_loopback()
    with RedisServer(tmp_path_factory.mktemp("broker"), addr, ("protected-mode no",)) as r:
        yield f"redis://{addr}:{r.port}/0"


def test_two_workers_two_queues_and_a_killed_worker(broker: str, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'server.db'}"
    app = create_app(ServerConfig(db_url=db, broker_url=broker, tick=0.5))
    sdb = app.state.sdb
    token = sdb.create_token(sdb.create_user("admin", "x" * 16, Role.ADMIN), "t")
    h = {"Authorization": f"Bearer {token}"}
    log_a, log_b = tmp_path / "worker-a.log", tmp_path / "worker-b.log"
    weak = RedisServer(tmp_path / "redis-a", pick_loopback(), WEAK_LINES)
    weak.__enter__()
    slow_addr = pick_loopback()
    reached = threading.Event()
    slow = ScriptedServer(slow_addr, _holding(reached))  # holds unit A's scan open
    slow.__enter__()
    other = RedisServer(tmp_path / "redis-b", pick_loopback(), WEAK_LINES)
    other.__enter__()
    workers: dict[str, subprocess.Popen[bytes]] = {}
    try:
        with TestClient(app, base_url="https://testserver") as client:
            for unit, hosts, hold in (
                ("a", [(weak.address, weak.port), (slow_addr, slow.port)], HOLD),
                ("b", [(other.address, other.port)], 3),
            ):
                inv = _inventory(unit, hosts, hold)
                r = client.post(
                    "/api/v1/units",
                    headers=h,
                    json={"id": unit, "inventory": inv, "queue": f"q-{unit}"},
                )
                assert r.status_code == 201, r.text
            workers["a"] = _worker("q-a", broker, db, log_a)
            workers["b"] = _worker("q-b", broker, db, log_b)
            job_a = client.post("/api/v1/units/a/scans", headers=h, json={}).json()["job"]
            job_b = client.post("/api/v1/units/b/scans", headers=h, json={}).json()["job"]

            def job(job_id: str) -> dict[str, Any]:
                return dict(client.get(f"/api/v1/jobs/{job_id}", headers=h).json())

            def stored(scan_id: str | None) -> int:
                if not scan_id:
                    return 0
                with sdb.engine.begin() as c:
                    return int(
                        c.execute(
                            select(func.count())
                            .select_from(targets)
                            .where(targets.c.scan_id == scan_id)
                        ).scalar_one()
                    )

            def ended(job_id: str) -> bool:
                return job(job_id)["state"] in ("complete", "failed")

            # kill worker A mid-scan: its silent host was reached and a target is stored
            assert reached.wait(WAIT), log_a.read_text(errors="replace")[-3000:]
            _until(
                lambda: stored(job(job_a)["scan_id"]) >= 1 or workers["a"].poll() is not None,
                "unit A's scan stored no target",
                log_a,
            )
            assert workers["a"].poll() is None, log_a.read_text(errors="replace")[-3000:]
            assert job(job_a)["state"] == "running"  # still held by the silent host
            _kill(workers.pop("a"))
            scan_a = job(job_a)["scan_id"]
            slow.__exit__(None, None, None)  # the resumed scan finds its port closed at once

            # unit B's job runs on its own worker meanwhile
            _until(lambda: ended(job_b), "unit B's job did not end", log_b)
            assert job(job_b)["state"] == "complete", log_b.read_text(errors="replace")[-3000:]
            assert job(job_a)["state"] == "running"  # nobody else serves q-a

            # the node of unit A comes back; the redelivered job resumes the same scan
            workers["a"] = _worker("q-a", broker, db, log_a)
            _until(lambda: ended(job_a), "unit A's resumed job did not end", log_a)
            final = job(job_a)
            assert final["state"] == "complete", log_a.read_text(errors="replace")[-3000:]
            assert final["scan_id"] == scan_a and final["attempts"] >= 2
            with sdb.engine.begin() as c:
                keys = list(
                    c.execute(select(targets.c.key).where(targets.c.scan_id == scan_a)).scalars()
                )
            assert len(keys) == len(set(keys))  # nothing counted twice
            assert {f"host:{weak.address}", f"host:{slow_addr}"} <= set(keys)
            findings = client.get("/api/v1/findings", headers=h, params={"unit": "a"}).json()
            assert "net.redis.no_auth" in {f["check_id"] for f in findings}
    finally:
        for proc in workers.values():
            _kill(proc, signal.SIGTERM)
        for server in (weak, other):
            server.__exit__(None, None, None)
        slow.__exit__(None, None, None)


def test_worker_needs_a_broker(tmp_path: Path) -> None:
    done = subprocess.run(
        [*ASSAY, "worker", "--queue", "q", "--db", "sqlite://"],
        capture_output=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "ASSAY_BROKER"},
    )
    assert done.returncode == 1
    assert b"needs --broker" in done.stderr


def test_unreachable_broker_is_a_clear_error(tmp_path: Path) -> None:
    addr = pick_loopback()
    port = free_port(addr)
    app = create_app(
        ServerConfig(db_url=f"sqlite:///{tmp_path / 's.db'}", broker_url=f"redis://{addr}:{port}/0")
    )
    sdb = app.state.sdb
    token = sdb.create_token(sdb.create_user("admin", "x" * 16, Role.ADMIN), "t")
    h = {"Authorization": f"Bearer {token}"}
    with TestClient(app, base_url="https://testserver") as client:
        r = client.post(
            "/api/v1/units",
            headers=h,
            json={"id": "a", "inventory": _inventory("a", [(addr, port)])},
        )
        assert r.status_code == 201
        r = client.post("/api/v1/units/a/scans", headers=h, json={})
        assert r.status_code == 503 and "broker" in r.text
        jobs = client.get("/api/v1/units/a/jobs", headers=h).json()
        assert jobs[0]["state"] == "failed" and "broker" in jobs[0]["error"]
