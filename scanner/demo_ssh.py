"""SSH for the demo unit: a weak and a hardened SSH server, made with paramiko.

Both speak real SSH-2 (paramiko's server side) so that nmap and Assay's SSH audit see a genuine
key exchange, host keys and authentication methods. Neither ever lets anyone in: every
authentication attempt fails, no channel is ever opened, and every connection is closed after a
fixed time.

- weak: announces an old OpenSSH with a Debian patch level, a 1024-bit RSA host key, CBC and
  3DES ciphers, MD5 and SHA-1 MACs (also the truncated 96-bit ones), encrypt-then-MAC without
  strict key exchange (open to the Terrapin prefix truncation), password and
  keyboard-interactive authentication, and a pre-login banner that names the host, its OS and
  a person;
- hardened: an Ed25519 host key, Curve25519 and a 4096-bit group, AES-GCM, encrypt-then-MAC
  SHA-2, strict key exchange, public-key authentication only, no banner, no patch level.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from io import StringIO

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

MAX_CLIENTS = 16
SESSION_TIMEOUT = 30.0  # a demo SSH connection is closed after this long, whatever it does
ACCEPT_POLL = 0.2

WEAK_VERSION = "OpenSSH_8.4p1 Debian-5+deb11u1"
GOOD_VERSION = "OpenSSH_9.6"
WEAK_BANNER = (
    "Welcome to weak.demo.invalid (Debian GNU/Linux 11, kernel 5.10.0-21-amd64)\n"
    "Authorised staff only. Problems? Call Nguyen Van A, IT office, ext. 1234.\n"
)

WEAK_ALGORITHMS = {
    "kex": ("diffie-hellman-group14-sha256", "ecdh-sha2-nistp256", "curve25519-sha256@libssh.org"),
    "ciphers": ("aes128-cbc", "aes256-cbc", "3des-cbc", "aes128-ctr"),
    "digests": (
        "hmac-sha2-256-etm@openssh.com",
        "hmac-sha1",
        "hmac-md5",
        "hmac-sha1-96",
        "hmac-md5-96",
    ),
}
GOOD_ALGORITHMS = {
    "kex": ("curve25519-sha256@libssh.org", "diffie-hellman-group16-sha512"),
    "ciphers": ("aes256-gcm@openssh.com", "aes128-gcm@openssh.com"),
    "digests": ("hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com"),
}


class _Refuse(paramiko.ServerInterface):
    """Lists the authentication methods and refuses every attempt."""

    def __init__(self, weak: bool) -> None:
        self.weak = weak

    def get_allowed_auths(self, username: str) -> str:
        return "publickey,password,keyboard-interactive" if self.weak else "publickey"

    def check_auth_none(self, username: str) -> int:
        return paramiko.AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> int:
        return paramiko.AUTH_FAILED  # the password is neither stored nor logged

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_FAILED

    def check_auth_interactive(self, username: str, submethods: str) -> int:
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def get_banner(self) -> tuple[str | None, str | None]:
        return (WEAK_BANNER, "en-US") if self.weak else (None, None)


def _ed25519_key() -> paramiko.PKey:
    pem = (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        .decode()
    )
    return paramiko.Ed25519Key.from_private_key(StringIO(pem))


class DemoSshServer:
    """One demo SSH server on an already listening socket, in a background thread."""

    def __init__(self, name: str, sock: socket.socket, weak: bool) -> None:
        self.name = name
        self.sock = sock
        self.weak = weak
        self.host_key: paramiko.PKey = paramiko.RSAKey.generate(1024) if weak else _ed25519_key()
        self._stop = threading.Event()
        self._transports: list[tuple[float, paramiko.Transport]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"assay-demo-{name}", daemon=True)
        # nmap's probes and scanners that hang up mid-handshake make paramiko log tracebacks
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop accepting, close every connection; True when everything ended in time."""
        self._stop.set()
        self._thread.join(timeout)
        with self._lock:
            transports = [t for _, t in self._transports]
            self._transports.clear()
        for t in transports:
            with contextlib.suppress(Exception):
                t.close()
        deadline = time.monotonic() + timeout
        for t in transports:
            t.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive() and not any(t.is_alive() for t in transports)

    def _reap(self) -> None:
        now = time.monotonic()
        with self._lock:
            keep = []
            for started, t in self._transports:
                if not t.is_alive():
                    continue
                if now - started > SESSION_TIMEOUT:
                    with contextlib.suppress(Exception):
                        t.close()
                    continue
                keep.append((started, t))
            self._transports = keep

    def _run(self) -> None:
        self.sock.settimeout(ACCEPT_POLL)
        while not self._stop.is_set():
            self._reap()
            try:
                ready, _, _ = select.select([self.sock], [], [], ACCEPT_POLL)
                if not ready:
                    continue
                conn, _ = self.sock.accept()
            except (OSError, ValueError):
                if self._stop.is_set():
                    return
                continue
            with self._lock:
                busy = len(self._transports) >= MAX_CLIENTS
            if busy:
                conn.close()
                continue
            self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(SESSION_TIMEOUT)
        try:
            t = paramiko.Transport(conn, strict_kex=not self.weak)
            t.local_version = f"SSH-2.0-{WEAK_VERSION if self.weak else GOOD_VERSION}"
            t.banner_timeout = 10
            t.handshake_timeout = 10
            t.auth_timeout = 10
            t.add_server_key(self.host_key)
            opts = t.get_security_options()
            algorithms = WEAK_ALGORITHMS if self.weak else GOOD_ALGORITHMS
            opts.kex = algorithms["kex"]
            opts.ciphers = algorithms["ciphers"]
            opts.digests = algorithms["digests"]
            t.start_server(event=threading.Event(), server=_Refuse(self.weak))
        except Exception:  # a client that breaks the handshake costs only its connection
            conn.close()
            return
        with self._lock:
            self._transports.append((time.monotonic(), t))
