"""The store on a real PostgreSQL server started by the test on a loopback address.

The same scan pipeline (a real connect-scan discovery, checks, resume bookkeeping) writes to
PostgreSQL through `--db`-style URLs, and the report is built from it.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from reports.build import build_assessment
from scanner.inventory import parse_inventory
from scanner.plugins import load_registry
from scanner.runner import Runner, ScanOptions
from scanner.store import Store
from tests.helpers import free_port, pick_loopback, wait_port

BINDIR = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"))), None)


def _as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", "postgres", "--", *args]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    if BINDIR is None or not Path(BINDIR, "initdb").exists():
        pytest.skip("PostgreSQL server binaries are not installed")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("no postgres user to run the server as")
    base = Path(tempfile.mkdtemp(prefix="assay-pg-"))
    base.chmod(0o755)
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    subprocess.run(
        _as_postgres([f"{BINDIR}/initdb", "-D", str(data), "-U", "assay", "--auth=trust", "-E",
                      "UTF8", "--no-instructions"]),
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    addr = pick_loopback()
    port = free_port(addr)
    proc = subprocess.Popen(
        _as_postgres([f"{BINDIR}/postgres", "-D", str(data), "-h", addr, "-p", str(port),
                      "-k", str(base), "-c", "fsync=off"]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_port(addr, port, timeout=60)
        yield f"postgresql+psycopg://assay@{addr}:{port}/postgres"
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(base, ignore_errors=True)


def test_scan_stored_in_postgresql(pg_url: str) -> None:
    addr = pick_loopback()
    port = free_port(addr)
    text = (
        f"units:\n  - id: u1\n    name: One\n    hosts:\n      - address: {addr}\n"
        f'        ports: "{port}"\n'
    )
    store = Store(pg_url)
    runner = Runner(
        load_registry(),
        store,
        parse_inventory(text, "pg.yaml"),
        inventory_text=text,
        inventory_name="pg.yaml",
        options=ScanOptions(nmap_path="/nonexistent/nmap"),
    )
    summary = asyncio.run(runner.run())
    store.close()
    assert summary.state == "complete"
    again = Store(pg_url)  # migrations are idempotent on PostgreSQL too
    rec = again.scan(summary.scan_id[:17])
    assert rec.state == "complete" and rec.units == ["u1"]
    doc = build_assessment(again, rec.id)
    assert doc.units[0].discovery and doc.units[0].discovery.fallback
    assert again.finished_keys(rec.id) == {f"host:{addr}"}
    again.close()
