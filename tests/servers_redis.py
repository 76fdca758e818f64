"""Servers for the Redis, HTTP and exposure tests: real redis-server, and scripted faults.

`RedisServer` runs the real binary on a test's own loopback address with everything it writes
(config, log, data directory) inside pytest's tmp_path, and stops it within a bounded time.
`ScriptedServer` is a tiny TCP listener that plays one fault a real server cannot be made to
produce (never answering, answering garbage, announcing a 1 GB reply, streaming forever); the
HTTP tests use it too.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from tests.helpers import free_port, wait_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
HAVE_REDIS = Path(REDIS_SERVER).exists()
STOP_TIMEOUT = 5.0


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate, wait a bounded time, then kill: a stuck server never hangs the suite."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)


class RedisServer:
    """A real redis-server on `address`, configured by `lines` of redis.conf."""

    def __init__(
        self, workdir: Path, address: str, lines: Iterable[str] = (), port: int | None = None
    ) -> None:
        self.address = address
        self.port = port or free_port(address)
        self.workdir = workdir
        self.data = workdir / "data"
        self.lines = list(lines)
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RedisServer:
        self.data.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "redis.conf"
        conf.write_text(
            "\n".join(
                [
                    f"bind {self.address}",
                    f"port {self.port}",
                    "daemonize no",
                    'save ""',
                    "appendonly no",
                    f"dir {self.data}",
                    f"logfile {self.workdir / 'redis.log'}",
                    f"pidfile {self.workdir / 'redis.pid'}",
                    *self.lines,
                ]
            )
            + "\n"
        )
        self.proc = subprocess.Popen(
            [REDIS_SERVER, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_port(self.address, self.port, timeout=10)
        except TimeoutError:
            stop_process(self.proc)
            log = self.workdir / "redis.log"
            raise RuntimeError(f"redis-server did not start: {log.read_text()[-2000:]}") from None
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None:
            stop_process(self.proc)


WEAK_LINES = ("protected-mode no",)


def auth_lines() -> tuple[str, ...]:
    return ("protected-mode no", f"requirepass {secrets.token_hex(24)}")


RENAMED = (
    "CONFIG",
    "FLUSHALL",
    "FLUSHDB",
    "DEBUG",
    "MODULE",
    "SLAVEOF",
    "REPLICAOF",
    "EVAL",
    "KEYS",
    "SCRIPT",
    "SAVE",
    "SHUTDOWN",
    "MIGRATE",
    "CLIENT",
)
RENAMED_LINES = ("protected-mode no", *(f'rename-command {c} ""' for c in RENAMED))


Handler = Callable[[socket.socket, threading.Event], None]


class ScriptedServer:
    """Accepts connections on `address` and hands each to `handler` in its own thread."""

    def __init__(self, address: str, handler: Handler) -> None:
        self.address, self.handler = address, handler
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, 0))
        self.port: int = self.sock.getsockname()[1]
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.threads: list[threading.Thread] = []
        self.accepted = 0

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            t = threading.Thread(target=self._one, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _one(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            self.handler(conn, self.stop)

    def __enter__(self) -> ScriptedServer:
        t = threading.Thread(target=self._serve, daemon=True)
        self.threads.append(t)
        t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.sock.close()
        for t in self.threads:
            t.join(STOP_TIMEOUT)


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """Accept and never answer (reads whatever comes, until the test ends)."""
    conn.settimeout(0.1)
    while not stop.is_set():
        try:
            if not conn.recv(4096):
                return
        except TimeoutError:
            continue


def reply_once(data: bytes) -> Handler:
    """Read the first request, send `data`, then hold the connection open until stopped."""

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.recv(4096)
        conn.sendall(data)
        silent(conn, stop)

    return handler


def refused_port(address: str) -> int:
    """A port on `address` where nothing listens (connection refused)."""
    return free_port(address)
