"""Discovery against real nmap and real listeners on loopback; faults nmap itself can have."""

from __future__ import annotations

import asyncio
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.discovery import DiscoverySettings, ScanSpec, discover
from scanner.identify import identify
from scanner.scope import OutOfScope, ScopeGuard
from tests.helpers import free_port, pick_loopback, wait_port

NMAP = shutil.which("nmap")
REDIS = shutil.which("redis-server")
needs_nmap = pytest.mark.skipif(NMAP is None, reason="nmap is not installed")


class Listener:
    """A thread-served TCP listener: greeting, echo, silent or HTTP behaviour."""

    def __init__(self, addr: str, mode: str, greeting: bytes = b"") -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, 0))
        self.sock.listen(32)
        self.port = self.sock.getsockname()[1]
        self.mode, self.greeting = mode, greeting
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(20)
        try:
            if self.greeting:
                conn.sendall(self.greeting)
            if self.mode == "close":
                return
            while data := conn.recv(4096):
                if self.mode == "echo":
                    conn.sendall(data)
                elif self.mode == "http" and b"\r\n\r\n" in data:
                    conn.sendall(
                        b"HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22.1\r\n"
                        b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                    return
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def addr() -> str:
    return pick_loopback()


@pytest.fixture
def redis(addr: str, tmp_path: Path) -> Iterator[int]:
    if REDIS is None:
        pytest.skip("redis-server is not installed")
    port = free_port(addr)
    proc = subprocess.Popen(
        [REDIS, "--bind", addr, "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_port(addr, port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def run(specs: list[ScanSpec], guard: ScopeGuard, **kw: object) -> object:
    return asyncio.run(discover(specs, guard, DiscoverySettings(**kw)))  # type: ignore[arg-type]


@pytest.mark.real
@needs_nmap
def test_nmap_finds_and_names_services(addr: str, redis: int) -> None:
    ssh = Listener(addr, "silent", b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
    closed = free_port(addr)
    guard = ScopeGuard.of(hosts=[(addr, "u")])
    ports = f"{ssh.port},{redis},{closed}"
    res = run([ScanSpec(addr, (), ports, True)], guard, version_budget=15)
    ssh.close()
    by_port = {s.port: s.service for s in res.services}  # type: ignore[attr-defined]
    assert res.engine.startswith("nmap")  # type: ignore[attr-defined]
    assert set(by_port) == {ssh.port, redis}, "closed port must not be reported"
    assert by_port[redis].name == "redis"
    assert by_port[ssh.port].name == "ssh" and "OpenSSH" in by_port[ssh.port].product
    assert all("-n" in c.split() for c in res.commands)  # type: ignore[attr-defined]


@pytest.mark.real
@needs_nmap
def test_excluded_address_is_not_scanned() -> None:
    base = pick_loopback().rsplit(".", 1)[0]
    inside, excluded = f"{base}.1", f"{base}.2"
    a = Listener(inside, "silent", b"220 ready\r\n")
    b = Listener(excluded, "silent", b"220 ready\r\n")
    net = f"{base}.0/30"
    guard = ScopeGuard.of(networks=[(net, [excluded], "u")])
    res = run([ScanSpec(net, (excluded,), f"{a.port},{b.port}", True)], guard, version_budget=5)
    a.close(), b.close()
    addrs = {s.address for s in res.services}  # type: ignore[attr-defined]
    assert inside in addrs and excluded not in addrs


@pytest.mark.real
@needs_nmap
def test_silent_service_costs_at_most_the_budget(addr: str) -> None:
    silent = Listener(addr, "silent")
    guard = ScopeGuard.of(hosts=[(addr, "u")])
    t0 = time.monotonic()
    res = run([ScanSpec(addr, (), str(silent.port), True)], guard, version_budget=3)
    elapsed = time.monotonic() - t0
    silent.close()
    [svc] = res.services  # type: ignore[attr-defined]
    assert svc.port == silent.port  # the port is kept even though nothing was identified
    assert elapsed < 3 * 4 + 10, "a silent service must not cost minutes"


def _crashing_nmap(tmp_path: Path, crash_port: int) -> str:
    """An nmap that scans ports for real but dies of SIGSEGV identifying one port."""
    script = tmp_path / "nmap"
    script.write_text(
        "#!/bin/sh\n"
        f'case " $* " in *" -sV "*"-p {crash_port} "*) kill -SEGV $$ ;; esac\n'
        f'exec {NMAP} "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@pytest.mark.real
@needs_nmap
def test_nmap_crash_loses_one_version_not_the_ports(addr: str, tmp_path: Path) -> None:
    ftp = Listener(addr, "silent", b"220 " + b"A" * 2000 + b"\r\n")
    ssh = Listener(addr, "silent", b"SSH-2.0-OpenSSH_9.2p1\r\n")
    guard = ScopeGuard.of(hosts=[(addr, "u")])
    res = run(
        [ScanSpec(addr, (), f"{ftp.port},{ssh.port}", True)],
        guard,
        version_budget=10,
        nmap_path=_crashing_nmap(tmp_path, ftp.port),
    )
    ftp.close(), ssh.close()
    by_port = {s.port: s.service for s in res.services}  # type: ignore[attr-defined]
    assert set(by_port) == {ftp.port, ssh.port}
    assert by_port[ssh.port].name == "ssh" and by_port[ssh.port].method == "probed"
    assert by_port[ftp.port].method in ("banner", "table")
    assert any(f"{addr}:{ftp.port}" in e and "signal 11" in e for e in res.errors)  # type: ignore[attr-defined]


def test_nmap_missing_falls_back_to_connect_scan(addr: str, tmp_path: Path) -> None:
    ftp = Listener(addr, "silent", b"220 FTP server ready\r\n")
    echo = Listener(addr, "echo")
    http = Listener(addr, "http")
    daytime = Listener(addr, "close", b"Wednesday, December 2, 2026 19:04:49-UTC\r\n")
    closed = free_port(addr)
    guard = ScopeGuard.of(hosts=[(addr, "u")])
    ports = ",".join(str(p) for p in (ftp.port, echo.port, http.port, daytime.port, closed))
    res = run([ScanSpec(addr, (), ports, True)], guard, nmap_path=str(tmp_path / "none"))
    for x in (ftp, echo, http, daytime):
        x.close()
    assert res.engine == "connect"  # type: ignore[attr-defined]
    assert res.warnings == [  # type: ignore[attr-defined]
        f"nmap not found at {tmp_path / 'none'}; using the built-in TCP connect scan "
        "(no version detection)"
    ]
    names = {s.port: s.service.name for s in res.services}  # type: ignore[attr-defined]
    assert names == {ftp.port: "ftp", echo.port: "echo", http.port: "http", daytime.port: "daytime"}


def test_out_of_scope_is_refused_before_nmap_runs(addr: str, tmp_path: Path) -> None:
    marker = tmp_path / "called"
    fake = tmp_path / "nmap"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    fake.chmod(0o755)
    guard = ScopeGuard.of(hosts=[(addr, "u")])
    with pytest.raises(OutOfScope):
        run([ScanSpec(addr), ScanSpec("127.0.0.0/8")], guard, nmap_path=str(fake))
    assert not marker.exists()


def test_failing_nmap_is_an_error_not_a_crash(addr: str, tmp_path: Path) -> None:
    fake = tmp_path / "nmap"
    fake.write_text("#!/bin/sh\necho 'Nmap version 7.93'\necho 'boom: cannot scan' >&2\nexit 2\n")
    fake.chmod(0o755)
    guard = ScopeGuard.of(hosts=[(addr, "u")])
    res = run([ScanSpec(addr, (), "80", True)], guard, nmap_path=str(fake))
    assert res.services == []  # type: ignore[attr-defined]
    assert any("nmap port scan failed" in e for e in res.errors)  # type: ignore[attr-defined]


def test_identify_garbage_and_oversized_greetings(addr: str) -> None:
    garbage = Listener(addr, "silent", bytes(range(256)) * 4)
    huge = Listener(addr, "silent", b"X" * 1_000_000)
    g = asyncio.run(identify(addr, garbage.port, 2))
    h = asyncio.run(identify(addr, huge.port, 2))
    refused = asyncio.run(identify(addr, free_port(addr), 2))
    garbage.close(), huge.close()
    assert g.name == "" and "unrecognised" in g.note
    assert h.name == "" and "4096 bytes" in h.note
    assert refused.name == "" and "connect failed" in refused.note
