"""Real TLS servers for the tests: a weak and a strong nginx site, and `openssl s_server`.

- weak: TLS 1.0 to 1.2 only, every suite the local OpenSSL still has at security level 0
  (NULL, anonymous DH/ECDH, static RSA, CBC with SHA-1; Debian builds OpenSSL without 3DES
  and RC4, so those need a scripted server), 1024-bit DHE, client cipher
  order, and an expired self-signed SHA-1 RSA-1024 certificate without subjectAltName;
- strong: TLS 1.2 and 1.3, ECDHE with AEAD suites only, an ECDSA P-256 certificate for the
  site's IP address issued by the tests' own CA (`TestCA`, trust it by adding its root),
  with a CRL and OCSP location, and the CA's OCSP answer stapled from a file.

`openssl_server()` runs `openssl s_server` with arbitrary options for cases nginx cannot be
configured into (one protocol only, a certificate without its intermediate, ...).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import free_port, pick_loopback, wait_port
from tests.servers_nginx import HAVE_NGINX, NginxServer
from tests.servers_redis import stop_process
from tests.tls_pki import OPENSSL, Issued, TestCA, dh_params_1024, weak_self_signed

HAVE_TLS_SERVERS = HAVE_NGINX and OPENSSL is not None

WEAK_CIPHERS = "ALL:COMPLEMENTOFALL:eNULL:aNULL:@SECLEVEL=0"
STRONG_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"
)


@dataclass(frozen=True)
class TlsSite:
    address: str
    port: int
    cert: Issued
    ca: TestCA | None  # the CA that issued the certificate (None: self-signed)
    ca_file: Path | None  # its root as PEM, for "trust the CAs the inventory adds"


@dataclass(frozen=True)
class TlsSites:
    weak: TlsSite
    strong: TlsSite


def _site(address: str, port: int, crt: Path, key: Path, extra: str) -> str:
    return f"""    server {{
        listen {address}:{port} ssl;
        ssl_certificate {crt};
        ssl_certificate_key {key};
{extra}
        root {{root}};
        location / {{ try_files /plain.html =404; }}
    }}"""


@contextlib.contextmanager
def tls_sites(workdir: Path, ca: TestCA | None = None) -> Iterator[TlsSites]:
    """Start one nginx serving the weak and the strong site, each on its own loopback address."""
    ca = ca or TestCA()
    pki = workdir / "pki"
    weak_addr, strong_addr = pick_loopback(), pick_loopback()
    weak_port, strong_port = free_port(weak_addr), free_port(strong_addr)
    weak_cert = weak_self_signed()
    strong_cert = ca.issue(ips=(strong_addr,), names=("portal.so-tttt.example",))
    wcrt, wkey = weak_cert.write(pki, "weak")
    scrt, skey = strong_cert.write(pki, "strong")
    staple = ca.ocsp_response(strong_cert, pki, "strong")
    dh = dh_params_1024(pki / "dh1024.pem")
    weak = _site(
        weak_addr,
        weak_port,
        wcrt,
        wkey,
        f"""        ssl_protocols TLSv1 TLSv1.1 TLSv1.2;
        ssl_ciphers '{WEAK_CIPHERS}';
        ssl_dhparam {dh};
        ssl_ecdh_curve prime256v1:secp384r1;
        ssl_prefer_server_ciphers off;
        ssl_session_tickets on;""",
    )
    strong = _site(
        strong_addr,
        strong_port,
        scrt,
        skey,
        f"""        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers '{STRONG_CIPHERS}';
        ssl_ecdh_curve X25519:prime256v1:secp384r1;
        ssl_prefer_server_ciphers off;
        ssl_session_tickets off;
        ssl_stapling on;
        ssl_stapling_file {staple};
        add_header Strict-Transport-Security "max-age=63072000" always;""",
    )
    nginx = NginxServer(workdir / "nginx", weak_addr, [weak, strong])
    with nginx:
        nginx.wait(weak_port)
        nginx.address = strong_addr
        nginx.wait(strong_port)
        yield TlsSites(
            weak=TlsSite(weak_addr, weak_port, weak_cert, None, None),
            strong=TlsSite(strong_addr, strong_port, strong_cert, ca, ca.root_pem(pki)),
        )


@contextlib.contextmanager
def openssl_server(
    workdir: Path,
    cert: Issued,
    options: Sequence[str] = (),
    full_chain: bool = True,
    address: str | None = None,
) -> Iterator[tuple[str, int]]:
    """`openssl s_server` with `options` (e.g. ["-tls1_3"]) on its own address: (addr, port)."""
    assert OPENSSL, "openssl is not installed"
    addr = address or pick_loopback()
    port = free_port(addr)
    crt, key = cert.write(workdir, f"s_server_{port}", full_chain=full_chain)
    proc = subprocess.Popen(
        [
            OPENSSL,
            "s_server",
            "-quiet",
            "-naccept",
            "1000",
            "-accept",
            f"{addr}:{port}",
            "-cert",
            str(crt),
            "-key",
            str(key),
            *options,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(addr, port, timeout=10)
        yield addr, port
    finally:
        stop_process(proc)


def openssl_connects(addr: str, port: int, *options: str) -> bool:
    """Whether the local `openssl s_client` completes a handshake with `options` (test aid)."""
    if not shutil.which("openssl"):
        return False
    done = subprocess.run(
        [OPENSSL or "openssl", "s_client", "-connect", f"{addr}:{port}", *options],
        input=b"",
        capture_output=True,
        timeout=20,
    )
    return done.returncode == 0 and b"Cipher is (NONE)" not in done.stdout
