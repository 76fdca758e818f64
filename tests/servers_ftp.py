"""FTP servers for the tests: vsftpd (weak and hardened), pyftpdlib, and scripted faults.

The real servers run as child processes on a loopback address of their own and are stopped
with a bounded wait. `ScriptedServer` produces what no real FTP server does on purpose (silence,
garbage, a 10 MB line); it is a plain threaded socket server, used only for those faults.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.helpers import free_port, wait_port

VSFTPD = "/usr/sbin/vsftpd"


def have_vsftpd() -> bool:
    return os.path.exists(VSFTPD) and os.geteuid() == 0


@dataclass
class FtpServer:
    address: str
    port: int
    root: Path  # what anonymous users see (may be empty for a server without anonymous)
    log: Path


def free_port_range(addr: str, count: int) -> tuple[int, int]:
    """`count` consecutive ports that are free on `addr` (for a passive-port range)."""
    for _ in range(50):
        base = free_port(addr)
        if base + count >= 65535:
            continue
        socks = []
        try:
            for p in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind((addr, p))
            return base, base + count - 1
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {count} consecutive free ports on {addr}")


def self_signed(workdir: Path) -> tuple[Path, Path]:
    """A throw-away certificate and key for vsftpd's TLS settings."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "assay-test-ftp")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = workdir / "cert.pem", workdir / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def vsftpd_config(workdir: Path, addr: str, port: int, *, weak: bool, can_delete: bool) -> str:
    empty = workdir / "empty"  # secure_chroot_dir: empty, owned by root, not writable
    empty.mkdir(mode=0o755)
    root = workdir / "anon"
    root.mkdir(mode=0o755)  # vsftpd refuses a chroot root that anonymous can write to
    lo, hi = free_port_range(addr, 10)
    common = [
        "listen=YES",
        "listen_ipv6=NO",
        f"listen_address={addr}",
        f"listen_port={port}",
        "background=NO",
        f"secure_chroot_dir={empty}",
        "seccomp_sandbox=NO",
        "pasv_enable=YES",
        f"pasv_min_port={lo}",
        f"pasv_max_port={hi}",
        "connect_from_port_20=NO",
        "dirmessage_enable=NO",
        "xferlog_enable=NO",
        f"vsftpd_log_file={workdir / 'vsftpd.log'}",
        "local_enable=YES",
    ]
    if weak:
        upload = root / "upload"
        upload.mkdir()
        upload.chmod(0o777)
        lines = [
            "anonymous_enable=YES",
            f"anon_root={root}",
            "write_enable=YES",
            "anon_upload_enable=YES",
            f"anon_other_write_enable={'YES' if can_delete else 'NO'}",
        ]
    else:
        cert, key = self_signed(workdir)
        lines = [
            "anonymous_enable=NO",
            "write_enable=NO",
            "ssl_enable=YES",
            f"rsa_cert_file={cert}",
            f"rsa_private_key_file={key}",
            "force_local_logins_ssl=YES",
            "force_local_data_ssl=YES",
            "ftpd_banner=Welcome",
        ]
    return "\n".join(common + lines) + "\n"


@contextmanager
def running(cmd: list[str], addr: str, port: int, log: Path, cwd: Path) -> Iterator[None]:
    """Start a server process, wait (bounded) until it listens, stop it at the end."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        try:
            try:
                wait_port(addr, port, timeout=10)
            except TimeoutError:
                proc.kill()
                raise RuntimeError(
                    f"{cmd[0]} did not listen on {addr}:{port}: {log.read_text()[-2000:]}"
                ) from None
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


@contextmanager
def vsftpd(workdir: Path, addr: str, *, weak: bool, can_delete: bool = True) -> Iterator[FtpServer]:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port(addr)
    conf = workdir / "vsftpd.conf"
    conf.write_text(vsftpd_config(workdir, addr, port, weak=weak, can_delete=can_delete))
    log = workdir / "vsftpd.out"
    with running([VSFTPD, str(conf)], addr, port, log, workdir):
        yield FtpServer(addr, port, workdir / "anon", log)


@contextmanager
def pyftpdlib_server(workdir: Path, addr: str, port: int | None = None) -> Iterator[FtpServer]:
    """pyftpdlib's stand-alone server: anonymous, read-only, product and version in the banner."""
    root = workdir / "share"
    (root / "pub").mkdir(parents=True)
    (root / "pub").chmod(0o777)
    (root / "readme.txt").write_text("public file\n")
    port = port or free_port(addr)
    cmd = [sys.executable, "-m", "pyftpdlib", "-i", addr, "-p", str(port), "-d", str(root)]
    log = workdir / "pyftpdlib.out"
    with running(cmd, addr, port, log, workdir):
        yield FtpServer(addr, port, root, log)


def tree(root: Path) -> list[str]:
    """Every path below `root`, relative, for "nothing was left behind" assertions."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


Handler = Callable[[socket.socket, int, threading.Event], None]


class ScriptedServer:
    """A TCP server whose every connection runs `handler(sock, index, stop)` in a thread."""

    def __init__(self, addr: str, handler: Handler, port: int = 0) -> None:
        self.address = addr
        self.handler = handler
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.bind((addr, port))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._acceptor.join(timeout=5)
        for t in self._threads:
            t.join(timeout=5)
        self.sock.close()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            index = self.connections
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn, index), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket, index: int) -> None:
        conn.settimeout(10)
        # OSError: the client hung up, as a bounded client should
        with conn, contextlib.suppress(OSError):
            self.handler(conn, index, self.stop)


def read_command(conn: socket.socket, stop: threading.Event) -> bytes:
    """One command line from the client (empty when it went away or the test ends)."""
    data = b""
    while not stop.is_set() and not data.endswith(b"\n"):
        try:
            chunk = conn.recv(1024)
        except TimeoutError:
            continue
        if not chunk:
            return b""
        data += chunk
    return data.strip()
