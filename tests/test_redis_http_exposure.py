"""Redis, cleartext HTTP and exposed-port checks against real redis-server and nginx."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.network.exposure import DbAdminPorts, ExposureParams
from checks.network.http import CleartextHttp
from checks.network.redis import DangerousCommands, NoAuth
from scanner.collectors.hostsvc import HostServices, ServiceEntry
from scanner.collectors.http import HttpCollector
from scanner.collectors.redis import RedisCollector
from scanner.model import ServiceInfo, Severity, Status, Target, TargetKind
from scanner.plugins import FactsView
from tests.helpers import collect, evaluate, free_port, pick_loopback, statuses, wait_port

REDIS = shutil.which("redis-server")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def svc(addr: str, port: int, name: str) -> Target:
    return Target(
        kind=TargetKind.SERVICE, unit="t", address=addr, port=port, service=ServiceInfo(name=name)
    )


@pytest.fixture
def addr() -> str:
    return pick_loopback()


def start_redis(addr: str, tmp: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    if REDIS is None:
        pytest.skip("redis-server is not installed")
    port = free_port(addr)
    conf = tmp / f"redis-{port}.conf"
    conf.write_text("\n".join(extra) + "\n")
    proc = subprocess.Popen(
        [REDIS, str(conf), "--bind", addr, "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(tmp), "--protected-mode", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_port(addr, port)
    return proc, port


@pytest.fixture
def redis_factory(addr: str, tmp_path: Path) -> Iterator[object]:
    procs: list[subprocess.Popen[bytes]] = []

    def make(*extra: str) -> int:
        proc, port = start_redis(addr, tmp_path, *extra)
        procs.append(proc)
        return port

    yield make
    for p in procs:
        p.terminate()
        p.wait(10)


@pytest.mark.real
def test_open_redis_fails_both_checks(addr: str, redis_factory) -> None:  # type: ignore[no-untyped-def]
    port = redis_factory()
    facts = collect([RedisCollector()], svc(addr, port, "redis"))
    assert statuses(NoAuth(), facts) == {Status.FAIL}
    [r] = evaluate(DangerousCommands(), facts)
    assert r.status is Status.FAIL and "CONFIG" in r.message and "FLUSHALL" in r.message


@pytest.mark.real
def test_password_protected_redis_passes(addr: str, redis_factory) -> None:  # type: ignore[no-untyped-def]
    port = redis_factory(f"requirepass {secrets.token_hex(16)}")
    facts = collect([RedisCollector()], svc(addr, port, "redis"))
    assert statuses(NoAuth(), facts) == {Status.PASS}
    assert statuses(DangerousCommands(), facts) == {Status.NOT_APPLICABLE}


@pytest.mark.real
def test_open_redis_with_dangerous_commands_renamed_passes(addr: str, redis_factory) -> None:  # type: ignore[no-untyped-def]
    names = ["CONFIG", "FLUSHALL", "FLUSHDB", "DEBUG", "MODULE", "SLAVEOF", "REPLICAOF", "EVAL",
             "EVALSHA", "KEYS", "SCRIPT", "SAVE", "BGSAVE", "BGREWRITEAOF", "SHUTDOWN", "MIGRATE",
             "CLIENT", "FUNCTION", "FCALL", "ACL", "SYNC", "PSYNC", "MONITOR", "CLUSTER",
             "RESTORE", "SWAPDB", "LATENCY", "PUBSUB", "SORT", "OBJECT", "MEMORY"]  # fmt: skip
    port = redis_factory(*(f'rename-command {n} ""' for n in names))
    facts = collect([RedisCollector()], svc(addr, port, "redis"))
    assert statuses(NoAuth(), facts) == {Status.FAIL}
    [r] = evaluate(DangerousCommands(), facts)
    assert r.status is Status.PASS, r.message


class _SilentServer:
    """Accepts, optionally sends `payload`, then holds every connection open until closed."""

    def __init__(self, addr: str, payload: bytes = b"") -> None:
        self.srv = socket.socket()
        self.srv.bind((addr, 0))
        self.srv.listen(8)
        self.port: int = self.srv.getsockname()[1]
        self.payload = payload
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            if self.payload:
                with contextlib.suppress(OSError):
                    conn.sendall(self.payload)
            self.held.append(conn)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.srv.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.srv.close()
        self.thread.join(5)
        for c in self.held:  # closed here, not left to the garbage collector
            c.close()


def _silent_server(addr: str, payload: bytes = b"") -> tuple[_SilentServer, int]:
    srv = _SilentServer(addr, payload)
    return srv, srv.port


def test_redis_hostile_replies_never_pass(addr: str) -> None:
    for payload in (b"", b"$1073741824\r\n", b"\x00\xffgarbage\r\n"):
        srv, port = _silent_server(addr, payload)
        # silent, a 1 GiB bulk header, garbage: the collector refuses, so checks give `error`
        with pytest.raises(Exception, match=r"\S"):
            collect([RedisCollector()], svc(addr, port, "redis"), timeout=1.0)
        srv.close()


NGINX_CONF = """
daemon off;
master_process off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  server {{
    listen {addr}:{weak};
    location / {{ default_type text/html;
      return 200 '<form method=post><input type=password name=pw></form>'; }}
  }}
  server {{
    listen {addr}:{good};
    return 301 https://{addr}$request_uri;
  }}
  server {{
    listen {addr}:{away};
    return 302 http://192.0.2.10/elsewhere;
  }}
}}
"""


@pytest.fixture
def nginx(addr: str, tmp_path: Path) -> Iterator[dict[str, int]]:
    if NGINX is None:
        pytest.skip("nginx is not installed")
    ports = {k: free_port(addr) for k in ("weak", "good", "away")}
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp_path, addr=addr, **ports))
    proc = subprocess.Popen(
        [NGINX, "-c", str(conf), "-p", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for p in ports.values():
            wait_port(addr, p)
        yield ports
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.real
def test_cleartext_http_fails_and_redirect_passes(addr: str, nginx: dict[str, int]) -> None:
    weak = collect([HttpCollector()], svc(addr, nginx["weak"], "http"))
    [r] = evaluate(CleartextHttp(), weak)
    assert r.status is Status.FAIL and r.severity is Severity.HIGH  # password form in clear
    good = collect([HttpCollector()], svc(addr, nginx["good"], "http"))
    assert statuses(CleartextHttp(), good) == {Status.PASS}


@pytest.mark.real
def test_redirect_out_of_scope_is_not_followed(addr: str, nginx: dict[str, int]) -> None:
    facts = collect([HttpCollector()], svc(addr, nginx["away"], "http"))
    from scanner.collectors.http import HttpFacts

    f = facts.get("service.http", HttpFacts)
    assert f.out_of_scope_redirect and "192.0.2.10" in f.out_of_scope_redirect
    assert statuses(CleartextHttp(), facts) == {Status.FAIL}


def test_endless_http_body_is_bounded(addr: str) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + b"A" * (4 * 1024 * 1024)
    srv, port = _silent_server(addr, head)
    facts = collect([HttpCollector()], svc(addr, port, "http"), timeout=3.0)
    srv.close()
    from scanner.collectors.http import HttpFacts

    hop = facts.get("service.http", HttpFacts).hops[0]
    assert hop.body_truncated and hop.body_bytes < 4 * 1024 * 1024


def _host(addr: str, services: list[ServiceEntry]) -> FactsView:
    t = Target(kind=TargetKind.HOST, unit="t", address=addr)
    return FactsView(t, {"host.services": HostServices(address=addr, services=services)})


@pytest.mark.real
def test_exposed_redis_fails_allowed_or_absent_passes(addr: str, redis_factory) -> None:  # type: ignore[no-untyped-def]
    port = redis_factory()
    # the service name comes from talking to the real server, as discovery does
    import asyncio

    from scanner.identify import identify

    info = asyncio.run(identify(addr, port, 3))
    assert info.name == "redis"
    view = _host(addr, [ServiceEntry(port=port, name=info.name), ServiceEntry(port=22, name="ssh")])
    results = evaluate(DbAdminPorts(), view)
    assert [r.status for r in results] == [Status.FAIL] and results[0].detail == f"{port}/tcp"
    allowed = DbAdminPorts().evaluate(view, ExposureParams(allowed=[f"{port}/tcp"]))
    allowed_list = [allowed] if not isinstance(allowed, list) else allowed
    assert {r.status for r in allowed_list} == {Status.PASS}
    plain = _host(addr, [ServiceEntry(port=22, name="ssh"), ServiceEntry(port=80, name="http")])
    assert statuses(DbAdminPorts(), plain) == {Status.PASS}
