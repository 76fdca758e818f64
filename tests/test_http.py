"""HTTP collector and the cleartext check against a real nginx, plus scripted faults."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.network.http import CleartextHttp
from scanner.collectors.http import MAX_BODY, HttpCollector, HttpFacts, HttpProbeError
from scanner.model import ServiceInfo, Severity, Status, Target, TargetKind
from scanner.plugins import CollectContext, FactsView
from scanner.scope import ScopeGuard
from tests.helpers import collect, evaluate, free_port, guard_for, pick_loopback
from tests.servers_nginx import (
    HAVE_NGINX,
    NginxServer,
    content_server,
    plain_server,
    redirect_server,
)
from tests.servers_redis import Handler, ScriptedServer, refused_port, reply_once, silent

needs_nginx = pytest.mark.skipif(not HAVE_NGINX, reason="nginx is not installed")
COLLECTOR = HttpCollector()
CHECK = CleartextHttp()


def _target(address: str, port: int, name: str = "http", tunnel: str = "") -> Target:
    return Target(
        kind=TargetKind.SERVICE,
        unit="test",
        address=address,
        port=port,
        service=ServiceInfo(name=name, tunnel=tunnel),
    )


def _facts(view: FactsView) -> HttpFacts:
    return view.get("service.http", HttpFacts)


def _run(target: Target, guard: ScopeGuard, timeout: float = 3.0) -> FactsView:
    ctx = CollectContext(scope=guard, probe_timeout=timeout)
    facts = asyncio.run(COLLECTOR.collect(target, ctx))
    return FactsView(target, {"service.http": facts})


class Site:
    """One nginx with several server blocks on one loopback address."""

    def __init__(self, nginx: NginxServer, ports: dict[str, int]) -> None:
        self.nginx, self.ports, self.address = nginx, ports, nginx.address


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if not HAVE_NGINX:
        pytest.skip("nginx is not installed")
    addr = pick_loopback()
    names = ["weak", "plain", "good", "hop", "loop", "named_from", "named", "basic"]
    ports: dict[str, int] = {}
    for n in names:
        port = free_port(addr)
        while port in ports.values():
            port = free_port(addr)
        ports[n] = port
    blocks = [
        content_server(addr, ports["weak"]),
        plain_server(addr, ports["plain"]),
        redirect_server(addr, ports["good"]),
        redirect_server(addr, ports["hop"], f"http://{addr}:{ports['good']}$request_uri"),
        redirect_server(addr, ports["loop"], f"http://{addr}:{ports['loop']}/again"),
        redirect_server(addr, ports["named_from"], f"http://portal.unit.test:{ports['named']}/"),
        f"""    server {{
        listen {addr}:{ports["named"]};
        server_name portal.unit.test;
        root {{root}};
        if ($host != "portal.unit.test") {{ return 421; }}
        location / {{ index index.html; }}
    }}""",
        f"""    server {{
        listen {addr}:{ports["basic"]};
        location / {{ add_header WWW-Authenticate 'Basic realm="staff"' always; return 401; }}
    }}""",
    ]
    with NginxServer(tmp_path_factory.mktemp("nginx"), addr, blocks) as nginx:
        nginx.wait(*ports.values())
        yield Site(nginx, ports)


# -- real nginx ------------------------------------------------------------------------------


@pytest.mark.real
@needs_nginx
def test_login_form_over_cleartext_fails_high(site: Site) -> None:
    view = collect([COLLECTOR], _target(site.address, site.ports["weak"]), timeout=3)
    f = _facts(view)
    assert f.status == 200 and f.final_status == 200 and not f.ends_at_https
    assert f.password_form and f.body_bytes > 0 and not f.body_truncated
    assert f.hops[0].server.startswith("nginx")
    [res] = evaluate(CHECK, view)
    assert res.status is Status.FAIL
    assert res.severity is Severity.HIGH
    assert res.evidence["password_form"] is True


@pytest.mark.real
@needs_nginx
def test_plain_content_over_cleartext_fails_medium(site: Site) -> None:
    view = collect([COLLECTOR], _target(site.address, site.ports["plain"]), timeout=3)
    assert not _facts(view).password_form
    [res] = evaluate(CHECK, view)
    assert res.status is Status.FAIL and res.severity is None  # the check's default: medium
    assert CHECK.meta.severity is Severity.MEDIUM


@pytest.mark.real
@needs_nginx
def test_redirect_to_https_passes(site: Site) -> None:
    view = collect([COLLECTOR], _target(site.address, site.ports["good"]), timeout=3)
    f = _facts(view)
    assert f.status == 301 and f.ends_at_https
    assert f.final_url == f"https://{site.address}/"
    assert f.final_status is None and len(f.hops) == 1  # the https hop is not requested
    [res] = evaluate(CHECK, view)
    assert res.status is Status.PASS


@pytest.mark.real
@needs_nginx
def test_in_scope_cleartext_hop_is_followed(site: Site) -> None:
    view = collect([COLLECTOR], _target(site.address, site.ports["hop"]), timeout=3)
    f = _facts(view)
    assert [h.status for h in f.hops] == [301, 301]
    assert f.redirect_chain[1] == f"http://{site.address}:{site.ports['good']}/"
    assert f.ends_at_https
    assert evaluate(CHECK, view)[0].status is Status.PASS
    strict = CHECK.evaluate(view, CHECK.Params(permanent_only=True))
    assert strict.status is Status.PASS  # both hops are 301


@pytest.mark.real
@needs_nginx
def test_redirect_to_unbound_name_is_recorded_not_followed(site: Site) -> None:
    # portal.unit.test is not bound by this guard: out of scope, and never resolved (the
    # test-wide guard would fail the test on any name look-up)
    view = _run(_target(site.address, site.ports["named_from"]), guard_for(site.address))
    f = _facts(view)
    assert f.out_of_scope_redirect == f"http://portal.unit.test:{site.ports['named']}/"
    assert "not bound" in f.not_followed and len(f.hops) == 1
    [res] = evaluate(CHECK, view)
    assert res.status is Status.FAIL and "outside the scope" in res.message


@pytest.mark.real
@needs_nginx
def test_redirect_to_out_of_scope_address_is_not_contacted(tmp_path: Path) -> None:
    addr, outside = pick_loopback(), pick_loopback()
    with ScriptedServer(outside, reply_once(b"HTTP/1.0 200 OK\r\n\r\nhi")) as trap:
        port = free_port(addr)
        block = redirect_server(addr, port, f"http://{outside}:{trap.port}/")
        with NginxServer(tmp_path, addr, [block]) as nginx:
            nginx.wait(port)
            view = _run(_target(addr, port), guard_for(addr))
        time.sleep(0.2)
        assert trap.accepted == 0
    f = _facts(view)
    assert f.out_of_scope_redirect == f"http://{outside}:{trap.port}/"
    assert "outside" in f.not_followed
    assert evaluate(CHECK, view)[0].status is Status.FAIL


@pytest.mark.real
@needs_nginx
def test_inventory_name_is_sent_as_host_without_resolving(site: Site) -> None:
    guard = ScopeGuard.of(hosts=[(site.address, "test")], names={"portal.unit.test": site.address})
    view = _run(_target(site.address, site.ports["named_from"]), guard)
    f = _facts(view)
    assert [h.status for h in f.hops] == [301, 200]  # 421 if the Host header were wrong
    assert f.password_form
    [res] = evaluate(CHECK, view)
    assert res.status is Status.FAIL and res.severity is Severity.HIGH


@pytest.mark.real
@needs_nginx
def test_redirect_loop_stops_at_the_limit(site: Site) -> None:
    view = collect([COLLECTOR], _target(site.address, site.ports["loop"]), timeout=3)
    f = _facts(view)
    assert f.redirect_limit_reached and len(f.hops) == 6
    assert evaluate(CHECK, view)[0].status is Status.FAIL


@pytest.mark.real
@needs_nginx
def test_basic_auth_challenge_over_cleartext_is_high(site: Site) -> None:
    view = collect([COLLECTOR], _target(site.address, site.ports["basic"]), timeout=3)
    assert _facts(view).hops[0].www_authenticate.startswith("Basic")
    [res] = evaluate(CHECK, view)
    assert res.status is Status.FAIL and res.severity is Severity.HIGH


@pytest.mark.real
@needs_nginx
def test_web_target_uses_its_url(site: Site) -> None:
    url = f"http://portal.unit.test:{site.ports['named']}/"
    target = Target(kind=TargetKind.WEB, unit="test", url=url)
    assert COLLECTOR.applies(target)
    guard = ScopeGuard.of(hosts=[(site.address, "test")], names={"portal.unit.test": site.address})
    f = _facts(_run(target, guard))
    assert f.url == url and f.status == 200 and f.password_form


# -- applies ---------------------------------------------------------------------------------


def test_applies() -> None:
    assert COLLECTOR.applies(_target("127.0.0.2", 8123, "http"))
    assert COLLECTOR.applies(_target("127.0.0.2", 8080, "http-proxy"))
    assert not COLLECTOR.applies(_target("127.0.0.2", 443, "http", tunnel="ssl"))
    assert not COLLECTOR.applies(_target("127.0.0.2", 443, "https"))
    assert not COLLECTOR.applies(_target("127.0.0.2", 8080, "redis"))
    assert COLLECTOR.applies(_target("127.0.0.2", 8080, ""))
    assert not COLLECTOR.applies(_target("127.0.0.2", 9999, ""))
    https = Target(kind=TargetKind.WEB, unit="t", url="https://127.0.0.2/")
    assert not COLLECTOR.applies(https)


# -- bad input -------------------------------------------------------------------------------


def test_silent_server_raises_clear_timeout() -> None:
    addr = pick_loopback()
    with ScriptedServer(addr, silent) as srv:
        start = time.monotonic()
        with pytest.raises(HttpProbeError, match=rf"{addr}:{srv.port}\): no response within"):
            _run(_target(addr, srv.port), guard_for(addr), timeout=0.5)
        assert time.monotonic() - start < 5


def test_connection_refused() -> None:
    addr = pick_loopback()
    port = refused_port(addr)
    with pytest.raises(HttpProbeError, match=rf"{addr}:{port}\): cannot connect"):
        _run(_target(addr, port), guard_for(addr))


def test_garbage_reply() -> None:
    addr = pick_loopback()
    with (
        ScriptedServer(addr, reply_once(b"\x00\x01garbage\r\n\r\n")) as srv,
        pytest.raises(HttpProbeError, match="not a valid HTTP response"),
    ):
        _run(_target(addr, srv.port), guard_for(addr))


def _endless(delay: float) -> Handler:
    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n")
        chunk = b"<p>" + b"x" * 8192 + b"</p>"
        while not stop.is_set():
            conn.sendall(chunk)
            if delay:
                time.sleep(delay)

    return handler


def test_endless_body_is_read_bounded() -> None:
    addr = pick_loopback()
    with ScriptedServer(addr, _endless(0)) as srv:
        f = _facts(_run(_target(addr, srv.port), guard_for(addr)))
    assert f.status == 200
    assert f.body_bytes == MAX_BODY and f.body_truncated


def test_drip_fed_body_is_cut_by_the_deadline() -> None:
    addr = pick_loopback()
    with ScriptedServer(addr, _endless(0.05)) as srv:
        start = time.monotonic()
        f = _facts(_run(_target(addr, srv.port), guard_for(addr), timeout=0.5))
        elapsed = time.monotonic() - start
    assert f.body_truncated and 0 < f.body_bytes < MAX_BODY
    assert elapsed < 3


def test_compressed_body_is_inflated_bounded() -> None:
    """A gzip bomb (64 MiB of zeros after a login form) costs at most MAX_DECODED."""
    addr = pick_loopback()
    body = gzip.compress(b'<input type="password">' + b"\0" * (64 * 1024 * 1024))
    head = f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(body)}\r\n\r\n"
    with ScriptedServer(addr, reply_once(head.encode() + body)) as srv:
        f = _facts(_run(_target(addr, srv.port), guard_for(addr)))
    assert f.password_form and f.body_bytes == len(body)


def test_tls_only_port_is_not_applicable() -> None:
    addr = pick_loopback()
    page = b"<html><center>The plain HTTP request was sent to HTTPS port</center></html>"
    reply = b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s" % (len(page), page)
    with ScriptedServer(addr, reply_once(reply)) as srv:
        view = _run(_target(addr, srv.port), guard_for(addr))
    assert evaluate(CHECK, view)[0].status is Status.NOT_APPLICABLE
