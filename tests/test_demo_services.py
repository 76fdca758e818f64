"""The demo unit's services, exercised with real clients (ftplib, raw RESP, httpx, nmap)."""

from __future__ import annotations

import contextlib
import ftplib
import io
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import httpx
import pyftpdlib
import pytest

from scanner import demo_services as ds
from scanner.demo_services import DemoService, DemoUnit, pick_demo_addresses
from scanner.inventory import parse_inventory
from tests.helpers import pick_loopback

NMAP = Path("/usr/bin/nmap")


@pytest.fixture(scope="module")
def unit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoUnit]:
    weak = pick_loopback()
    good = pick_loopback()
    while good == weak:
        good = pick_loopback()
    with DemoUnit(weak, good, workdir=tmp_path_factory.mktemp("demo")) as running:
        yield running


def _conn(svc: DemoService, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection((svc.address, svc.port), timeout=timeout)


def _read_until(sock: socket.socket, marker: bytes, limit: int = 65536) -> bytes:
    data = b""
    while marker not in data and len(data) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _read_all(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    data = b""
    while len(data) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


# ---------------------------------------------------------------------------------------------
# a minimal RESP2 reader for the tests


def _resp_value(f: io.BufferedReader) -> Any:
    line = f.readline()
    if not line:
        raise EOFError("connection closed")
    kind, rest = line[:1], line[1:].rstrip(b"\r\n")
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        return RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_resp_value(f) for _ in range(n)]
    raise AssertionError(f"not RESP: {line!r}")


def _redis(svc: DemoService, payload: bytes, replies: int = 1) -> list[Any]:
    with _conn(svc) as s:
        s.sendall(payload)
        f = s.makefile("rb")
        try:
            return [_resp_value(f) for _ in range(replies)]
        finally:
            f.close()


def _cmd(*args: str) -> bytes:
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a.encode())
    return out


# ---------------------------------------------------------------------------------------------
# the unit as a whole


def test_services_hosts_and_expectations(unit: DemoUnit) -> None:
    names = {s.name for s in unit.services}
    assert names == {
        "ftp-weak",
        "redis-open",
        "telnet-login",
        "echo",
        "daytime",
        "chargen",
        "http-login",
        "ftp-good",
        "redis-auth",
        "http-redirect",
        "https-weak",
        "https-good",
        "ssh-weak",
        "ssh-good",
    }
    assert unit.weak_address != unit.good_address
    for svc in unit.services:
        assert svc.port > 1024
        assert svc.address == (unit.weak_address if svc.weak else unit.good_address)
        assert bool(svc.expect) or not svc.weak, f"{svc.name} is weak but expects nothing"
    registered = {ep.name for ep in entry_points(group="assay.checks")}
    for svc in unit.services:
        assert set(svc.expect) <= registered, f"{svc.name}: unknown check ids"
    assert "net.exposed.db_admin_ports" in unit.service("redis-open").expect
    assert unit.service("redis-auth").expect == ["net.exposed.db_admin_ports"]  # port reachable
    assert unit.service("ftp-weak").expected(active=False) == [
        c for c in unit.service("ftp-weak").expect if c != "net.ftp.anonymous_write"
    ]
    assert "net.ftp.anonymous_write" in unit.service("ftp-weak").expected(active=True)
    good_ftp = unit.service("ftp-good").expect
    assert good_ftp == ([] if ds.FTP_TLS_AVAILABLE else ["net.ftp.cleartext_auth"])


def test_inventory_parses_and_declares_exactly_the_demo_ports(unit: DemoUnit) -> None:
    text = unit.inventory_yaml()
    inv = parse_inventory(text, "demo.yaml")
    demo = inv.unit("demo")
    assert demo.name == "Demo unit (loopback)"
    by_addr = {h.address: h for h in demo.hosts}
    assert set(by_addr) == {unit.weak_address, unit.good_address}
    assert by_addr[unit.weak_address].names == ["weak.demo.invalid"]
    assert by_addr[unit.good_address].names == ["good.demo.invalid"]
    assert "weak" in by_addr[unit.weak_address].tags and "good" in by_addr[unit.good_address].tags
    for addr, host in by_addr.items():
        declared = {int(p) for p in (host.ports or "").split(",")}
        assert declared == {s.port for s in unit.services if s.address == addr}
    web = {f"{s.kind}://{s.address}:{s.port}/" for s in unit.services if s.kind.startswith("http")}
    assert {w.url for w in demo.web} == web
    guard = inv.scope()
    for svc in unit.services:
        guard.ensure_address(svc.address)
    assert unit._ftp_password not in text and unit._ftp_password not in repr(unit)


def test_inventory_before_start_is_refused() -> None:
    idle = DemoUnit(pick_loopback(), pick_loopback())
    with pytest.raises(RuntimeError, match="not running"):
        idle.inventory_yaml()


def test_addresses_are_validated() -> None:
    with pytest.raises(ValueError, match="loopback"):
        DemoUnit("127.0.0.1", pick_loopback())
    with pytest.raises(ValueError, match="loopback"):
        DemoUnit("10.1.2.3", pick_loopback())
    same = pick_loopback()
    with pytest.raises(ValueError, match="two different"):
        DemoUnit(same, same)


def test_pick_demo_addresses() -> None:
    a, b = pick_demo_addresses()
    assert a != b
    for addr in (a, b):
        assert addr.startswith("127.") and addr != "127.0.0.1"


# ---------------------------------------------------------------------------------------------
# FTP


def test_ftp_weak_anonymous_list_store_delete(unit: DemoUnit) -> None:
    svc = unit.service("ftp-weak")
    with ftplib.FTP() as ftp:
        banner = ftp.connect(svc.address, svc.port, timeout=5)
        assert banner == f"220 pyftpdlib {pyftpdlib.__ver__} ready."
        assert ftp.login().startswith("230")
        names = ftp.nlst()
        assert {"README.txt", "pub", "upload"} <= set(names)
        ftp.cwd("upload")
        ftp.storbinary("STOR assay-probe.txt", io.BytesIO(b"demo write\n"))
        assert "assay-probe.txt" in ftp.nlst()
        ftp.delete("assay-probe.txt")
        assert "assay-probe.txt" not in ftp.nlst()


def test_ftp_good_refuses_anonymous_behind_neutral_banner(unit: DemoUnit) -> None:
    svc = unit.service("ftp-good")
    with ftplib.FTP() as ftp:
        banner = ftp.connect(svc.address, svc.port, timeout=5)
        assert banner == "220 " + ds.GOOD_FTP_BANNER
        assert not re.search(r"\d|pyftpdlib", banner[4:])  # no version, no product
        with pytest.raises(ftplib.error_perm, match=r"^5"):
            ftp.login()  # anonymous


@pytest.mark.skipif(ds.FTP_TLS_AVAILABLE, reason="pyOpenSSL present: the good FTP requires TLS")
def test_ftp_good_user_logs_in_over_cleartext(unit: DemoUnit) -> None:
    svc = unit.service("ftp-good")
    with ftplib.FTP() as ftp:
        ftp.connect(svc.address, svc.port, timeout=5)
        assert ftp.login("demo", unit._ftp_password).startswith("230")
        assert "welcome.txt" in ftp.nlst()


@pytest.mark.skipif(not ds.FTP_TLS_AVAILABLE, reason="pyOpenSSL is not installed")
def test_ftp_good_requires_tls(unit: DemoUnit) -> None:
    svc = unit.service("ftp-good")
    with ftplib.FTP() as ftp:
        ftp.connect(svc.address, svc.port, timeout=5)
        with pytest.raises(ftplib.error_perm, match=r"^5"):
            ftp.sendcmd("USER demo")
    with ftplib.FTP_TLS() as ftps:
        ftps.connect(svc.address, svc.port, timeout=5)
        ftps.auth()  # the certificate is self-signed; ftplib does not verify by default
        assert ftps.login("demo", unit._ftp_password).startswith("230")


# ---------------------------------------------------------------------------------------------
# Redis look-alikes


def test_redis_open_answers_without_auth(unit: DemoUnit) -> None:
    svc = unit.service("redis-open")
    assert _redis(svc, b"PING\r\n") == ["PONG"]
    assert _redis(svc, _cmd("PING")) == ["PONG"]
    (info,) = _redis(svc, _cmd("INFO"))
    assert isinstance(info, bytes)
    assert info.startswith(b"# Server\r\nredis_version:7.0.15-demo\r\n")
    assert f"tcp_port:{svc.port}\r\n".encode() in info
    (config,) = _redis(svc, b"COMMAND INFO config\r\n")
    assert config[0][0] == b"config" and config[0][1] == -2
    assert [sub[0] for sub in config[0][9]][:1] == [b"config|get"]
    (mixed,) = _redis(svc, _cmd("COMMAND", "INFO", "flushall", "nosuchcommand"))
    assert mixed[0][0] == b"flushall" and "@dangerous" in mixed[0][6]
    assert mixed[1] is None
    (pairs,) = _redis(svc, _cmd("CONFIG", "GET", "requirepass"))
    assert pairs == [b"requirepass", b""]
    (pairs,) = _redis(svc, b"CONFIG GET prot*\r\n")
    assert pairs == [b"protected-mode", b"no"]


def test_redis_open_never_executes(unit: DemoUnit) -> None:
    svc = unit.service("redis-open")
    for command in ("FLUSHALL", "CONFIG SET dir /tmp", "DEBUG SLEEP 0", "EVAL return 1 0"):
        (reply,) = _redis(svc, command.encode() + b"\r\n")
        assert isinstance(reply, RuntimeError), command
        assert str(reply).startswith("ERR unknown"), reply
    (reply,) = _redis(svc, b"NOSUCH a b\r\n")
    assert str(reply) == "ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' "
    # what nmap -sV's HTTP probe gets, as from a real Redis
    (reply,) = _redis(svc, b"GET / HTTP/1.0\r\n\r\n")
    assert str(reply) == "ERR wrong number of arguments for 'get' command"


def test_redis_quit_and_http_smuggling_close(unit: DemoUnit) -> None:
    svc = unit.service("redis-open")
    with _conn(svc) as s:
        s.sendall(b"QUIT\r\nPING\r\n")
        assert _read_all(s) == b"+OK\r\n"
    with _conn(svc) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_all(s) == b""


def test_redis_oversized_request_is_cut_off(unit: DemoUnit) -> None:
    svc = unit.service("redis-open")
    with _conn(svc) as s:
        s.sendall(b"*1\r\n$%d\r\n" % (ds.REDIS_MAX_REQUEST + 10))
        reply = _read_all(s)
    assert reply.startswith(b"-ERR Protocol error")
    with _conn(svc) as s:
        with contextlib.suppress(OSError):  # the server may already have hung up
            s.sendall(b"A" * (ds.REDIS_MAX_REQUEST + 4096))
        reply = _read_all(s)
    assert reply.startswith(b"-ERR Protocol error: too big inline request")


def test_redis_garbage_is_a_protocol_error(unit: DemoUnit) -> None:
    svc = unit.service("redis-open")
    with _conn(svc) as s:
        s.sendall(b"*2\r\nxx\r\n")
        assert _read_all(s).startswith(b"-ERR Protocol error: expected '$'")


def test_redis_auth_required(unit: DemoUnit) -> None:
    svc = unit.service("redis-auth")
    for payload in (b"PING\r\n", _cmd("INFO"), b"COMMAND INFO config\r\n", b"CONFIG GET *\r\n"):
        (reply,) = _redis(svc, payload)
        assert str(reply) == "NOAUTH Authentication required.", payload
    for payload in (_cmd("AUTH", "guess"), _cmd("AUTH", "default", "guess")):
        (reply,) = _redis(svc, payload)
        assert str(reply) == "WRONGPASS invalid username-password pair or user is disabled."
    (reply,) = _redis(svc, b"AUTH\r\n")
    assert str(reply) == "ERR wrong number of arguments for 'auth' command"
    (reply,) = _redis(svc, _cmd("AUTH", "x"))
    assert "WRONGPASS" in str(reply)


def test_redis_open_auth_says_no_password_configured(unit: DemoUnit) -> None:
    (reply,) = _redis(unit.service("redis-open"), _cmd("AUTH", "x"))
    assert "without any password configured" in str(reply)


# ---------------------------------------------------------------------------------------------
# Telnet and the small services


class _Buffered:
    """Reads a socket up to markers, keeping what arrived beyond them for the next read."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf = sock, b""

    def until(self, marker: bytes, limit: int = 65536) -> bytes:
        while marker not in self.buf and len(self.buf) < limit:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buf += chunk
        head, sep, self.buf = self.buf.partition(marker)
        return head + sep


def test_telnet_negotiates_then_refuses_every_login(unit: DemoUnit) -> None:
    svc = unit.service("telnet-login")
    with _conn(svc) as s:
        first = s.recv(3)
        assert first == bytes([0xFF, 0xFD, 0x18])  # IAC DO TERMINAL-TYPE
        s.sendall(bytes([0xFF, 0xFC, 0x18]))  # IAC WONT TERMINAL-TYPE
        stream = _Buffered(s)
        greeting = stream.until(b"login: ")
        assert b"\xff\xfb\x01" in greeting  # IAC WILL ECHO
        assert greeting.endswith(b"Debian GNU/Linux 12\r\nlogin: ")
        for attempt in range(ds.TELNET_TRIES):
            s.sendall(b"root\r\n")
            assert stream.until(b"Password: ").endswith(b"root\r\nPassword: ")  # echoed name
            s.sendall(b"toor\r\n")
            text = stream.until(b"Login incorrect\r\n")
            assert b"toor" not in text and text.endswith(b"Login incorrect\r\n")
            if attempt < ds.TELNET_TRIES - 1:
                assert stream.until(b"login: ").endswith(b"login: ")
        assert stream.buf + _read_all(s) == b""  # closed after the last try


def test_echo_roundtrip(unit: DemoUnit) -> None:
    with _conn(unit.service("echo")) as s:
        s.sendall(b"hello assay\r\n")
        assert _read_until(s, b"\r\n") == b"hello assay\r\n"


def test_daytime_line_then_close(unit: DemoUnit) -> None:
    with _conn(unit.service("daytime")) as s:
        line = _read_all(s)
    pattern = rb"[A-Z][a-z]+day, [A-Z][a-z]+ \d{1,2}, \d{4} \d\d:\d\d:\d\d-UTC\r\n"
    assert re.fullmatch(pattern, line), line


def test_chargen_pattern_and_bound(unit: DemoUnit) -> None:
    with _conn(unit.service("chargen")) as s:
        data = _read_all(s)
    lines = data.split(b"\r\n")
    assert lines[0] == bytes(range(33, 105))  # '!' .. 'h'
    assert lines[1] == bytes(range(34, 106))
    assert all(len(line) == 72 for line in lines[:-1])
    assert lines[-1] == b""
    assert ds.CHARGEN_MAX_BYTES <= len(data) < ds.CHARGEN_MAX_BYTES + 16 * 74
    assert ds.chargen_line(94)[:2] == b" !"  # the pattern wraps around the 95 characters


def test_chargen_stops_when_client_leaves(unit: DemoUnit) -> None:
    svc = unit.service("chargen")
    with _conn(svc) as s:
        assert s.recv(10)
    with _conn(svc) as s:  # the service is still there for the next client
        assert s.recv(10)


# ---------------------------------------------------------------------------------------------
# HTTP


def _http(svc: DemoService) -> httpx.Client:
    return httpx.Client(base_url=f"http://{svc.address}:{svc.port}", trust_env=False, timeout=5)


def test_http_weak_serves_a_login_form_in_cleartext(unit: DemoUnit) -> None:
    with _http(unit.service("http-login")) as client:
        r = client.get("/")
        assert r.status_code == 200
        assert r.headers["server"] == "nginx/1.18.0"
        assert r.headers["connection"] == "close"
        assert "date" in r.headers and "location" not in r.headers
        assert int(r.headers["content-length"]) == len(r.content)
        assert "<form method=post>" in r.text
        assert "<input type=password name=password>" in r.text
        posted = client.post("/", data={"username": "a", "password": "secret-value"})
        assert posted.status_code == 200 and "secret-value" not in posted.text
        assert client.get("/nothing-here").status_code == 404
        assert client.request("DELETE", "/").status_code == 405
        head = client.head("/")
        assert head.status_code == 200 and head.content == b""


def test_http_good_redirects_to_https_with_hsts(unit: DemoUnit) -> None:
    with _http(unit.service("http-redirect")) as client:
        r = client.get("/")
        assert r.status_code == 301
        https = unit.service("https-good").port
        assert r.headers["location"] == f"https://good.demo.invalid:{https}/"
        assert r.headers["strict-transport-security"].startswith("max-age=")
        assert r.headers["server"] == "nginx"  # no version on the good host
        login = client.get("/login").headers["location"]
        assert login == f"https://good.demo.invalid:{https}/login"


def test_https_good_serves_the_hardened_site(unit: DemoUnit) -> None:
    svc = unit.service("https-good")
    assert unit.tls is not None
    with httpx.Client(
        base_url=f"https://{svc.address}:{svc.port}",
        verify=ssl.create_default_context(cafile=str(unit.tls.ca_file)),
        trust_env=False,
        timeout=5,
    ) as client:
        r = client.get("/")
        assert r.status_code == 200 and "Staff portal" in r.text
        for name, value in ds.SECURITY_HEADERS:
            assert r.headers[name] == value
        assert r.headers["server"] == "nginx"
        assert client.request("DELETE", "/").status_code == 405


def test_https_weak_serves_the_login_form_over_weak_tls(unit: DemoUnit) -> None:
    svc = unit.service("https-weak")
    with httpx.Client(
        base_url=f"https://{svc.address}:{svc.port}", verify=False, trust_env=False, timeout=5
    ) as client:
        r = client.get("/")
        assert r.status_code == 200 and "<input type=password name=password>" in r.text
        assert r.headers["server"] == "nginx/1.18.0"


def test_demo_inventory_trusts_the_demo_ca(unit: DemoUnit) -> None:
    inv = parse_inventory(unit.inventory_yaml(), "demo.yaml")
    assert unit.tls is not None
    assert [str(p) for p in inv.settings.tls_trust] == [str(unit.tls.ca_file)]
    web = {w.url for w in inv.unit("demo").web}
    for name in ("https-weak", "https-good"):
        svc = unit.service(name)
        assert f"https://{svc.address}:{svc.port}/" in web


def test_http_rejects_malformed_and_oversized_requests(unit: DemoUnit) -> None:
    svc = unit.service("http-login")
    with _conn(svc) as s:
        s.sendall(b"NONSENSE\r\n\r\n")
        assert _read_all(s).startswith(b"HTTP/1.1 400 ")
    with _conn(svc) as s:
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")  # HTTP/1.1 without Host
        assert _read_all(s).startswith(b"HTTP/1.1 400 ")
    with _conn(svc) as s:
        s.sendall(b"GET / HTTP/1.0\r\nX: " + b"a" * (ds.HTTP_MAX_HEAD + 10) + b"\r\n\r\n")
        assert _read_all(s).startswith(b"HTTP/1.1 431 ")
    with _conn(svc) as s:
        s.sendall(b"POST / HTTP/1.0\r\nContent-Length: %d\r\n\r\n" % (ds.HTTP_MAX_BODY + 1))
        assert _read_all(s).startswith(b"HTTP/1.1 413 ")


# ---------------------------------------------------------------------------------------------
# lifecycle


def _refused(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_exit_stops_everything_quickly_even_with_clients_connected(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    with DemoUnit(pick_loopback(), pick_loopback(), workdir=tmp_path) as demo:
        ports = [(s.address, s.port) for s in demo.services]
        idle = [_conn(s) for s in demo.services]  # sessions that never finish
        ftp = ftplib.FTP()
        ftp.connect(demo.service("ftp-weak").address, demo.service("ftp-weak").port, timeout=5)
        ftp.login()
        started = time.monotonic()
    took = time.monotonic() - started
    try:
        assert took < ds.STOP_TIMEOUT, f"stopping took {took:.1f}s"
        assert demo.services == []
        assert not [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
        for address, port in ports:
            assert _refused(address, port), f"{address}:{port} still accepts connections"
    finally:
        for s in idle:
            s.close()
        ftp.close()


def test_two_units_run_at_once(tmp_path: Path) -> None:
    with (
        DemoUnit(workdir=tmp_path / "a") as first,
        DemoUnit(workdir=tmp_path / "b") as second,
    ):
        assert {first.weak_address, first.good_address}.isdisjoint(
            {second.weak_address, second.good_address}
        )
        for demo in (first, second):
            assert _redis(demo.service("redis-open"), b"PING\r\n") == ["PONG"]
            with ftplib.FTP() as ftp:
                ftp.connect(demo.service("ftp-weak").address, demo.service("ftp-weak").port, 5)
                assert ftp.login().startswith("230")


def test_busy_preferred_port_moves_on(tmp_path: Path) -> None:
    weak = pick_loopback()
    good = pick_loopback()
    blocker = socket.socket()
    blocker.bind((weak, ds.PREFERRED_PORTS["ftp"]))
    blocker.listen(1)
    try:
        with DemoUnit(weak, good, workdir=tmp_path) as demo:
            port = demo.service("ftp-weak").port
            assert port != ds.PREFERRED_PORTS["ftp"]
            with ftplib.FTP() as ftp:
                assert ftp.connect(weak, port, timeout=5).startswith("220 pyftpdlib")
    finally:
        blocker.close()


def test_failed_start_releases_what_it_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weak, good = pick_loopback(), pick_loopback()

    def broken(root: Path, password: str, certdir: Path) -> Any:
        raise RuntimeError("cannot build the good FTP handler")

    monkeypatch.setattr(ds, "_good_ftp_handler", broken)
    demo = DemoUnit(weak, good, workdir=tmp_path)
    with pytest.raises(RuntimeError, match="good FTP"), demo:
        pass
    assert _refused(weak, ds.PREFERRED_PORTS["ftp"])
    assert _refused(weak, ds.PREFERRED_PORTS["redis"])
    with pytest.raises(RuntimeError, match="only once"):
        demo.__enter__()


def test_workdir_is_prepared_and_rerun_safe(tmp_path: Path) -> None:
    workdir = tmp_path / "out" / "demo-data"  # does not exist yet, as with `assay demo -o out`
    leftover = workdir / "ftp-weak" / "upload" / "left-behind.txt"
    with DemoUnit(pick_loopback(), pick_loopback(), workdir=workdir):
        assert (workdir / "ftp-weak" / "upload").is_dir()
        leftover.write_text("uploaded during an earlier demo")
    with DemoUnit(pick_loopback(), pick_loopback(), workdir=workdir):
        assert not leftover.exists()
        assert (workdir / "ftp-weak" / "README.txt").is_file()


# ---------------------------------------------------------------------------------------------
# nmap -sV recognises every weak service


@pytest.mark.real
@pytest.mark.timeout(180)
def test_nmap_names_every_weak_service(unit: DemoUnit) -> None:
    nmap = shutil.which("nmap") or (str(NMAP) if NMAP.exists() else None)
    if nmap is None:
        pytest.skip("nmap is not installed (/usr/bin/nmap)")
    weak = [s for s in unit.services if s.weak]
    ports = ",".join(str(s.port) for s in weak)
    run = subprocess.run(
        [nmap, "-n", "-Pn", "-sV", "-p", ports, "-oX", "-", unit.weak_address],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seen: dict[int, str] = {}
    for port in ET.fromstring(run.stdout).iter("port"):
        service = port.find("service")
        name = "" if service is None else service.get("name", "")
        if service is not None and service.get("tunnel") == "ssl" and name != "https":
            name = "https"  # nmap saw TLS; it names what is inside from the port table
        seen[int(port.get("portid", "0"))] = name
    assert {s.port: s.kind for s in weak} == seen
