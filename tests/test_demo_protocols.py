"""The demo unit's SSH and TLS servers, checked with real clients (OpenSSH, openssl, paramiko)."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from cryptography import x509

from scanner.demo_ssh import GOOD_VERSION, WEAK_BANNER, WEAK_VERSION, DemoSshServer
from scanner.demo_tls import DemoTls
from tests.helpers import pick_loopback

SSH = shutil.which("ssh")
OPENSSL = shutil.which("openssl")


@pytest.fixture(scope="module")
def addr() -> str:
    return pick_loopback()


def _listen(addr: str) -> socket.socket:
    sock = socket.socket()
    sock.bind((addr, 0))
    sock.listen()
    return sock


@pytest.fixture(scope="module", params=[True, False], ids=["weak", "good"])
def ssh_server(request: pytest.FixtureRequest, addr: str) -> Iterator[tuple[DemoSshServer, int]]:
    sock = _listen(addr)
    server = DemoSshServer("ssh", sock, weak=request.param)
    server.start()
    try:
        yield server, sock.getsockname()[1]
    finally:
        assert server.stop(5.0), "the demo SSH server did not stop in time"
        sock.close()


def _auth_none(addr: str, port: int) -> tuple[list[str], bytes | None, str]:
    t = paramiko.Transport((addr, port))
    try:
        t.connect()
        version = t.remote_version
        with pytest.raises(paramiko.BadAuthenticationType) as exc:
            t.auth_none("assay")
        return list(exc.value.allowed_types), t.get_banner(), version
    finally:
        t.close()


def test_ssh_methods_banner_and_version(ssh_server: tuple[DemoSshServer, int], addr: str) -> None:
    server, port = ssh_server
    methods, banner, version = _auth_none(addr, port)
    if server.weak:
        assert methods == ["publickey", "password", "keyboard-interactive"]
        assert banner is not None and banner.decode() == WEAK_BANNER
        assert version == f"SSH-2.0-{WEAK_VERSION}"
    else:
        assert methods == ["publickey"]
        assert banner is None
        assert version == f"SSH-2.0-{GOOD_VERSION}"


def test_ssh_password_is_refused(ssh_server: tuple[DemoSshServer, int], addr: str) -> None:
    _, port = ssh_server
    t = paramiko.Transport((addr, port))
    try:
        t.connect()
        with pytest.raises((paramiko.AuthenticationException, paramiko.BadAuthenticationType)):
            t.auth_password("root", "root")
        assert not t.is_authenticated()
    finally:
        t.close()


@pytest.mark.skipif(SSH is None, reason="OpenSSH client is not installed")
def test_ssh_algorithms_seen_by_openssh(ssh_server: tuple[DemoSshServer, int], addr: str) -> None:
    server, port = ssh_server
    done = subprocess.run(
        [
            SSH or "ssh",
            "-vv",
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "Ciphers=+aes128-cbc,3des-cbc",
            "-p",
            str(port),
            f"assay@{addr}",
            "true",
        ],
        capture_output=True,
        timeout=30,
    )
    log = done.stderr.decode(errors="replace")
    assert done.returncode != 0  # nobody gets in
    offered = [line for line in log.splitlines() if "ciphers stoc:" in line]
    macs = [line for line in log.splitlines() if "MACs stoc:" in line]
    assert len(offered) == 2 and len(macs) == 2  # ours, then the server's
    server_ciphers, server_macs = offered[1], macs[1]
    if server.weak:
        assert "3des-cbc" in server_ciphers and "aes128-cbc" in server_ciphers
        assert "hmac-md5" in server_macs and "hmac-sha1" in server_macs
        assert "kex-strict-s-v00@openssh.com" not in log
        assert "ssh-rsa" in log or "rsa-sha2" in log
    else:
        assert "cbc" not in server_ciphers and "etm@openssh.com" in server_macs
        assert "hmac-sha1" not in server_macs
        assert "host key algorithm: ssh-ed25519" in log


def test_ssh_server_survives_garbage(ssh_server: tuple[DemoSshServer, int], addr: str) -> None:
    _, port = ssh_server
    for payload in (b"GET / HTTP/1.0\r\n\r\n", b"\x00" * 4096, b""):
        with socket.create_connection((addr, port), timeout=5) as s:
            s.sendall(payload)
    methods, _, _ = _auth_none(addr, port)  # still serving
    assert "publickey" in methods


# -- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory, addr: str) -> DemoTls:
    return DemoTls.create(tmp_path_factory.mktemp("tls"), addr, "good.demo.invalid")


def test_tls_material(tls: DemoTls, addr: str) -> None:
    weak = x509.load_pem_x509_certificate(tls.weak_cert.read_bytes())
    assert weak.signature_hash_algorithm is not None
    assert weak.signature_hash_algorithm.name == "sha1"
    assert weak.public_key().key_size == 1024  # type: ignore[union-attr]
    assert weak.issuer == weak.subject
    assert weak.not_valid_after_utc < weak.not_valid_before_utc.replace(year=3000)
    with pytest.raises(x509.ExtensionNotFound):
        weak.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    chain = x509.load_pem_x509_certificates(tls.good_cert.read_bytes())
    assert len(chain) == 2
    san = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "good.demo.invalid" in san.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [addr]
    # the good certificate verifies against the demo CA for the good host's address
    ctx = ssl.create_default_context(cafile=str(tls.ca_file))
    server_ctx = tls.good_context()
    a, b = socket.socketpair()
    with a, b:

        def serve() -> None:
            with server_ctx.wrap_socket(b, server_side=True) as s:
                s.recv(1)

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        with ctx.wrap_socket(a, server_hostname="good.demo.invalid") as c:
            assert c.version() in ("TLSv1.2", "TLSv1.3")
            c.sendall(b"x")
        t.join(5)


def _s_client(port: int, addr: str, *options: str) -> str:
    done = subprocess.run(
        [OPENSSL or "openssl", "s_client", "-connect", f"{addr}:{port}", *options],
        input=b"",
        capture_output=True,
        timeout=20,
    )
    return done.stdout.decode(errors="replace") if done.returncode == 0 else ""


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
@pytest.mark.parametrize("weak", [True, False], ids=["weak", "good"])
def test_tls_endpoints_seen_by_openssl(tls: DemoTls, addr: str, weak: bool, tmp_path: Path) -> None:
    ctx = tls.weak_context() if weak else tls.good_context()
    sock = _listen(addr)
    port = sock.getsockname()[1]
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        for _ in range(500):  # bounded: at most 100 s of polling
            if stop.is_set():
                return
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(10)
            try:
                with ctx.wrap_socket(conn, server_side=True) as s:
                    s.recv(1)
            except (OSError, ssl.SSLError):
                conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        legacy = _s_client(port, addr, "-tls1", "-cipher", "ALL:@SECLEVEL=0")
        anon = _s_client(port, addr, "-tls1_2", "-cipher", "ADH-AES128-SHA:@SECLEVEL=0")
        dhe = _s_client(port, addr, "-tls1_2", "-cipher", "DHE-RSA-AES128-SHA:@SECLEVEL=0")
        tls13 = _s_client(port, addr, "-tls1_3")
        if weak:
            assert "TLSv1.0" in legacy
            assert "ADH-AES128-SHA" in anon
            assert "DH, 1024 bits" in dhe
            assert tls13 == ""
        else:
            assert legacy == anon == dhe == ""
            assert "TLSv1.3" in tls13
    finally:
        stop.set()
        sock.close()
        t.join(10)
