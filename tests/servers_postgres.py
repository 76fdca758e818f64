"""A real PostgreSQL server for the tests, started on its own loopback address (Debian's package).

`pg_url` is a module-scoped fixture: import it into a test module to use it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, pick_loopback, wait_port

BINDIR = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"))), None)


def _as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", "postgres", "--", *args]


def _wait_ready(addr: str, port: int, timeout: float) -> None:
    """Bounded wait until the server takes queries: it listens before recovery ends and
    refuses logins with "the database system is starting up" until then."""
    import psycopg

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(host=addr, port=port, user="assay", dbname="postgres",
                                 connect_timeout=5) as conn:  # fmt: skip
                conn.execute("SELECT 1")
                return
        except psycopg.OperationalError as exc:
            last = exc
            time.sleep(0.1)
    raise TimeoutError(f"PostgreSQL on {addr}:{port} not ready within {timeout}s: {last}")


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
        _wait_ready(addr, port, timeout=60)
        yield f"postgresql+psycopg://assay@{addr}:{port}/postgres"
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(base, ignore_errors=True)
