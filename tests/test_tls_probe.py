"""The TLS prober on real servers: openssl s_server cases, STARTTLS on vsftpd and nginx mail.

`openssl s_server` gives single-protocol and server-order cases nginx cannot be configured
into; vsftpd (AUTH TLS) and nginx's mail proxy (SMTP, IMAP and POP3 STARTTLS) show the
cleartext preamble working against real implementations, and refusing cleanly where the
server offers no STARTTLS.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.tls.ciphers import NoServerOrder
from checks.tls.protocol import NoTls13
from scanner.collectors.tls import TlsCollector, TlsFacts
from scanner.model import ServiceInfo, Status, Target, TargetKind
from scanner.scope import OutOfScope
from scanner.tlsprobe.endpoint import StartTlsError, TlsEndpoint, open_plain, tls_endpoint
from tests.helpers import collect, free_port, pick_loopback, statuses, wait_port
from tests.servers_ftp import have_vsftpd, vsftpd
from tests.servers_nginx import HAVE_NGINX, NGINX
from tests.servers_redis import stop_process
from tests.servers_tls import HAVE_TLS_SERVERS, openssl_server
from tests.tls_pki import TestCA

COLLECTOR = TlsCollector()
# Debian ships nginx's mail proxy as a dynamic module (libnginx-mod-mail)
MAIL_MODULE = Path("/usr/lib/nginx/modules/ngx_mail_module.so")
HAVE_MAIL = HAVE_NGINX and MAIL_MODULE.exists()
needs_tls = pytest.mark.skipif(not HAVE_TLS_SERVERS, reason="nginx or openssl missing")


def svc(address: str, port: int, name: str = "", tunnel: str = "", names: tuple[str, ...] = ()):
    return Target(
        kind=TargetKind.SERVICE,
        unit="test",
        address=address,
        port=port,
        names=names,
        service=ServiceInfo(name=name, tunnel=tunnel) if name or tunnel else None,
    )


def facts(view) -> TlsFacts:  # type: ignore[no-untyped-def]
    return view.get("service.tls", TlsFacts)


# -- which targets are TLS endpoints ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "tunnel", "port", "expected"),
    [
        ("https", "", 8000, ""),
        ("http", "ssl", 8000, ""),
        ("imaps", "", 10993, ""),
        ("", "", 443, ""),
        ("", "", 993, ""),
        ("smtp", "", 2525, "smtp"),
        ("submission", "", 587, "smtp"),
        ("imap", "", 143, "imap"),
        ("pop3", "", 110, "pop3"),
        ("ftp", "", 21, "ftp"),
        ("", "", 25, "smtp"),
        ("http", "", 443, None),  # discovery saw cleartext HTTP on 443: no TLS there
        ("redis", "", 6379, None),
        ("", "", 8080, None),
    ],
)
def test_tls_endpoint_classification(name: str, tunnel: str, port: int, expected: str | None):
    ep = tls_endpoint(svc("10.0.0.5", port, name, tunnel))
    assert (ep.starttls if ep else None) == expected


def test_server_name_is_the_first_dns_name() -> None:
    ep = tls_endpoint(svc("10.0.0.5", 443, "https", names=("10.0.0.5", "Portal.Example.", "b")))
    assert ep and ep.server_name == "portal.example"
    assert tls_endpoint(svc("10.0.0.5", 443, "https", names=("10.0.0.5",))).server_name is None  # type: ignore[union-attr]
    assert tls_endpoint(Target(kind=TargetKind.HOST, unit="t", address="10.0.0.5")) is None


def test_out_of_scope_is_refused_before_connecting() -> None:
    from scanner.plugins import CollectContext
    from tests.helpers import guard_for

    ctx = CollectContext(scope=guard_for("127.0.0.9"))
    with pytest.raises(OutOfScope):
        asyncio.run(COLLECTOR.collect(svc("127.0.0.8", 443, "https"), ctx))


# -- openssl s_server cases ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


@needs_tls
@pytest.mark.real
def test_tls13_only_server_and_its_groups(tmp_path: Path, ca: TestCA) -> None:
    cert = ca.issue(ips=("127.0.0.1",))
    opts = ["-tls1_3", "-groups", "P-384:X448"]
    with openssl_server(tmp_path, cert, opts) as (addr, port):
        f = facts(collect([COLLECTOR], svc(addr, port, "https"), timeout=3))
    assert f.supported == ["TLSv1.3"]
    assert set(f.groups_tls13) == {"secp384r1", "x448"}
    assert f.certificate_chain == []  # TLS 1.3 encrypts the Certificate message
    assert f.fallback_scsv is None  # only one protocol: nothing to downgrade to
    assert "TLS_AES_256_GCM_SHA384" in f.protocol("TLSv1.3").suites  # type: ignore[union-attr]


@needs_tls
@pytest.mark.real
def test_server_preference_is_detected(tmp_path: Path, ca: TestCA) -> None:
    cert = ca.issue(ips=("127.0.0.1",), key="rsa2048")
    suites = "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-SHA:AES128-SHA"
    opts = ["-tls1_2", "-serverpref", "-cipher", suites]
    with openssl_server(tmp_path, cert, opts) as (addr, port):
        view = collect([COLLECTOR], svc(addr, port, "https"), timeout=3)
    f = facts(view)
    p = f.protocol("TLSv1.2")
    assert f.supported == ["TLSv1.2"] and p is not None
    assert set(p.suites) == {
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        "TLS_RSA_WITH_AES_128_CBC_SHA",
    }
    assert p.server_order is True and p.preferred == "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
    assert statuses(NoServerOrder(), view) == {Status.PASS}  # weak suites, but server decides
    assert statuses(NoTls13(), view) == {Status.FAIL}
    assert len(f.certificate_chain) == 1  # s_server -cert sends the leaf only


@needs_tls
@pytest.mark.real
def test_client_order_with_weak_suites_fails(tmp_path: Path, ca: TestCA) -> None:
    cert = ca.issue(ips=("127.0.0.1",), key="rsa2048")
    opts = ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA"]
    with openssl_server(tmp_path, cert, opts) as (addr, port):
        view = collect([COLLECTOR], svc(addr, port, "https"), timeout=3)
    assert facts(view).protocol("TLSv1.2").server_order is False  # type: ignore[union-attr]
    assert statuses(NoServerOrder(), view) == {Status.FAIL}


# -- STARTTLS on real servers ---------------------------------------------------------------


@pytest.mark.real
@pytest.mark.skipif(not have_vsftpd(), reason="vsftpd missing (or not root)")
def test_ftp_auth_tls_on_vsftpd(tmp_path: Path) -> None:
    addr = pick_loopback()
    with vsftpd(tmp_path / "ftp", addr, weak=False) as srv:
        f = facts(collect([COLLECTOR], svc(addr, srv.port, "ftp"), timeout=3))
    assert f.starttls == "ftp"
    assert "TLSv1.2" in f.supported and f.certificate_chain


def _nginx_mail(
    workdir: Path, addr: str, crt: Path, key: Path, starttls: str
) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    ports = {p: free_port(addr) for p in ("smtp", "imap", "pop3")}
    servers = "\n".join(
        f"    server {{ listen {addr}:{port}; protocol {proto}; }}" for proto, port in ports.items()
    )
    conf = workdir / "nginx-mail.conf"
    conf.write_text(
        f"""load_module {MAIL_MODULE};
daemon off;
master_process off;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"} warn;
events {{ worker_connections 64; }}
mail {{
    server_name mail.assay.test;
    auth_http {addr}:{free_port(addr)}/auth;
    ssl_certificate {crt};
    ssl_certificate_key {key};
    starttls {starttls};
    smtp_auth plain;
{servers}
}}
"""
    )
    proc = subprocess.Popen(
        [NGINX, "-p", str(workdir), "-e", str(workdir / "error.log"), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for port in ports.values():
            wait_port(addr, port)
    except TimeoutError:
        stop_process(proc)
        raise
    return proc, ports


@pytest.fixture(scope="module")
def mail(
    tmp_path_factory: pytest.TempPathFactory, ca: TestCA
) -> Iterator[tuple[str, dict[str, int]]]:
    if not HAVE_MAIL:
        pytest.skip("nginx or its mail module (libnginx-mod-mail) missing")
    work = Path(tmp_path_factory.mktemp("mail"))
    addr = pick_loopback()
    crt, key = ca.issue(ips=(addr,)).write(work, "mail")
    proc, ports = _nginx_mail(work, addr, crt, key, "on")
    try:
        yield addr, ports
    finally:
        stop_process(proc)


@pytest.mark.real
@pytest.mark.parametrize("proto", ["smtp", "imap", "pop3"])
def test_starttls_on_nginx_mail(proto: str, mail: tuple[str, dict[str, int]]) -> None:
    addr, ports = mail
    f = facts(collect([COLLECTOR], svc(addr, ports[proto], proto), timeout=3))
    assert f.starttls == proto
    assert "TLSv1.2" in f.supported and len(f.certificate_chain) == 2


@pytest.mark.real
@pytest.mark.skipif(not HAVE_MAIL, reason="nginx mail module missing")
def test_smtp_without_starttls_is_a_named_error(tmp_path: Path, ca: TestCA) -> None:
    addr = pick_loopback()
    crt, key = ca.issue(ips=(addr,)).write(tmp_path, "mail")
    proc, ports = _nginx_mail(tmp_path, addr, crt, key, "off")
    try:
        ep = TlsEndpoint(addr, ports["smtp"], "smtp", None)
        with pytest.raises(
            StartTlsError, match=rf"{addr}:{ports['smtp']}.*does not offer STARTTLS"
        ):
            asyncio.run(open_plain(ep, 3))
        ep = TlsEndpoint(addr, ports["imap"], "imap", None)
        with pytest.raises(StartTlsError, match="IMAP server refused STARTTLS"):
            asyncio.run(open_plain(ep, 3))
    finally:
        stop_process(proc)


# -- the suite table ----------------------------------------------------------------------------


def test_suite_table_is_consistent() -> None:
    from scanner.tlsprobe.suites import (
        TLS10,
        TLS13,
        SuiteTableError,
        candidates,
        parse_table,
        suite_by_name,
        suite_table,
    )

    table = suite_table()
    assert len(table) > 300
    rc4 = suite_by_name("RC4-SHA")
    assert rc4 and rc4.iana == "TLS_RSA_WITH_RC4_128_SHA" and "rc4" in rc4.flags
    assert {"aead", "fs"} <= table[0xC02F].flags and table[0xC02F].strong
    assert "fs" not in table[0x002F].flags  # static RSA
    assert {"anon", "fs"} <= table[0x0034].flags and not table[0x0034].strong
    assert len(candidates(TLS13)) == 5 and all(c >> 8 != 0x13 for c in candidates(TLS10))
    with pytest.raises(SuiteTableError, match="row 2: unknown flags"):
        parse_table("code,iana,openssl,min_version,kex,auth,enc,bits,mac,flags\n"
                    "0x0001,X,Y,SSLv3,RSA,RSA,NULL,0,MD5,nul\n")  # fmt: skip
