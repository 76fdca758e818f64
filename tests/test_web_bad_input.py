"""Hostile and broken web servers: every case is bounded and ends in an error or partial facts.

Scripted servers here produce what nginx will not: TRACE that echoes, 10 MB of headers, an
endless or drip-fed body, invalid bytes for the declared charset, a path that never answers,
redirect loops and a TLS port that does not speak TLS.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from checks.web.methods import Trace
from scanner.collectors.http import MAX_BODY, HttpProbeError, WebCollector, WebFacts
from scanner.collectors.web_active import ActiveSettings, ActiveSettingsError
from scanner.inventory import ActiveConfig
from scanner.model import Status, Target, TargetKind
from scanner.plugins import CollectContext, FactsView
from tests.helpers import evaluate, guard_for, pick_loopback
from tests.servers_redis import ScriptedServer

Reply = Callable[[str, str, bytes], bytes | None]


def http(reply: Reply) -> Callable[[socket.socket, threading.Event], None]:
    """One request per connection: `reply(method, path, raw)` gives the bytes to send, or None
    to stay silent until the test ends."""

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        raw = b""
        while b"\r\n\r\n" not in raw and len(raw) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                return
            raw += chunk
        method, path = raw.split(b" ", 2)[:2]
        out = reply(method.decode(), path.decode(), raw)
        if out is None:
            stop.wait(10)
            return
        conn.sendall(out)

    return handler


def page(body: bytes, ctype: str = "text/html", status: str = "200 OK", extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
    return (head + extra + "Connection: close\r\n\r\n").encode() + body


def not_found(method: str, path: str, raw: bytes) -> bytes:
    return page(b"nope", status="404 Not Found")


def collect(url: str, address: str, timeout: float = 1.0, **kw: object) -> WebFacts:
    target = Target(kind=TargetKind.WEB, unit="test", url=url)
    ctx = CollectContext(scope=guard_for(address), probe_timeout=timeout)
    col = WebCollector(**kw)  # type: ignore[arg-type]
    return asyncio.run(asyncio.wait_for(col.collect(target, ctx), col.timeout))


@pytest.fixture
def addr() -> str:
    return pick_loopback()


def test_trace_echo_fails(addr: str) -> None:
    def reply(method: str, path: str, raw: bytes) -> bytes:
        if method == "TRACE":
            return page(raw, "message/http")
        return page(b"<html>ok</html>") if path == "/" else not_found(method, path, raw)

    with ScriptedServer(addr, http(reply)) as srv:
        f = collect(f"http://{addr}:{srv.port}/", addr)
    assert f.methods.trace_status == 200 and f.methods.trace_echo
    [res] = evaluate(
        Trace(), FactsView(Target(kind=TargetKind.WEB, unit="t", url=f.start_url), {"web.http": f})
    )
    assert res.status is Status.FAIL and "TRACE is enabled" in res.message


def test_ten_megabyte_headers_are_an_error_not_a_hang(addr: str) -> None:
    big = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (10 * 1024 * 1024) + b"\r\n\r\n"
    with (
        ScriptedServer(addr, http(lambda m, p, r: big)) as srv,
        pytest.raises(
            HttpProbeError, match=rf"GET http://{addr}:{srv.port}/ .*not a valid HTTP response"
        ),
    ):
        collect(f"http://{addr}:{srv.port}/", addr)


def test_endless_body_is_cut_and_the_rest_is_collected(addr: str) -> None:
    def handler(conn: socket.socket, stop: threading.Event) -> None:
        req = conn.recv(4096)
        if not req.startswith(b"GET / "):
            conn.sendall(not_found("", "", b""))
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n")
        while not stop.is_set():
            conn.sendall(b"<p>" + b"x" * 8192 + b"</p>")

    with ScriptedServer(addr, handler) as srv:
        f = collect(f"http://{addr}:{srv.port}/", addr)
    assert f.final is not None and f.final.body_truncated and f.final.body_bytes == MAX_BODY
    assert f.methods.options_status == 404 and len(f.probes) > 5  # the scan went on


def test_slow_drip_is_bounded_by_the_deadline(addr: str) -> None:
    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n")
        while not stop.is_set():
            conn.sendall(b"x")
            time.sleep(0.05)

    with ScriptedServer(addr, handler) as srv:
        started = time.monotonic()
        f = collect(f"http://{addr}:{srv.port}/", addr, timeout=0.3, probe_budget=2)
        elapsed = time.monotonic() - started
    assert f.final is not None and f.final.body_truncated and 0 < f.final.body_bytes < MAX_BODY
    assert elapsed < 20  # bounded: each body has a deadline of twice the probe timeout


def test_invalid_encoding_is_replaced_and_noted(addr: str) -> None:
    body = b'<html><form method="post"><input type="password" name="pw">\xff\xfe\xfd</form>'
    with ScriptedServer(
        addr,
        http(
            lambda m, p, r: (
                page(body, "text/html; charset=utf-8") if p == "/" else not_found(m, p, r)
            )
        ),
    ) as srv:
        f = collect(f"http://{addr}:{srv.port}/", addr)
    assert f.final is not None and "invalid utf-8 bytes" in f.final.encoding_note
    assert f.final.forms and f.final.forms[0].has_password  # the rest of the page still counts


def test_unknown_charset_is_read_as_utf8(addr: str) -> None:
    with ScriptedServer(
        addr, http(lambda m, p, r: page(b"<html>hi</html>", "text/html; charset=x-klingon"))
    ) as srv:
        f = collect(f"http://{addr}:{srv.port}/", addr)
    assert f.final is not None and "unknown charset" in f.final.encoding_note


def test_a_silent_path_costs_one_timeout_and_is_reported(addr: str) -> None:
    def reply(method: str, path: str, raw: bytes) -> bytes | None:
        if path == "/.env":
            return None  # never answers
        return page(b"<html>home</html>") if path == "/" else not_found(method, path, raw)

    with ScriptedServer(addr, http(reply)) as srv:
        f = collect(f"http://{addr}:{srv.port}/", addr, timeout=0.5)
    env = next(p for p in f.probes if p.path == "/.env")
    assert env.status is None and "no response within" in env.error
    assert all(p.status == 404 for p in f.probes if p.path != "/.env")


def test_redirect_loop_is_detected(addr: str) -> None:
    def reply(method: str, path: str, raw: bytes) -> bytes:
        nxt = "/b" if path == "/a" else "/a"
        return page(b"", status="302 Found", extra=f"Location: {nxt}\r\n")

    with ScriptedServer(addr, http(reply)) as srv:
        f = collect(f"http://{addr}:{srv.port}/a", addr)
    assert f.redirect_limit_reached and "loop" in f.not_followed and f.final is None
    assert len(f.hops) == 2


def test_tls_failure_is_a_clear_error(addr: str) -> None:
    def plain(conn: socket.socket, stop: threading.Event) -> None:
        conn.recv(4096)  # a ClientHello, answered the way a cleartext server does
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    with (
        ScriptedServer(addr, plain) as srv,
        pytest.raises(HttpProbeError, match=rf"https://{addr}:{srv.port}/ .*TLS handshake failed"),
    ):
        collect(f"https://{addr}:{srv.port}/", addr)


def test_silent_server_is_a_timeout(addr: str) -> None:
    with (
        ScriptedServer(addr, http(lambda m, p, r: None)) as srv,
        pytest.raises(HttpProbeError, match="no response within"),
    ):
        collect(f"http://{addr}:{srv.port}/", addr, timeout=0.3)


def test_hostile_markup_is_bounded(addr: str) -> None:
    body = b"<html>" + b'<form action="/x"><input type="hidden" name="a">' * 5000 + b"</html>"
    with ScriptedServer(
        addr, http(lambda m, p, r: page(body) if p == "/" else not_found(m, p, r))
    ) as srv:
        f = collect(f"http://{addr}:{srv.port}/", addr)
    assert f.final is not None and len(f.final.forms) <= 16
    assert f.final.body_truncated or f.final.body_bytes <= MAX_BODY


def test_bad_credential_file_names_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "creds.txt"
    bad.write_text("# unit appliances\nssh root S3cret-pass\nhtp admin Adm1n-Secret\n")
    config = ActiveConfig(credentials=bad)
    with pytest.raises(ActiveSettingsError, match=r"creds\.txt:3 .*'htp' is not a service") as e:
        ActiveSettings.from_config(config)
    assert "Adm1n-Secret" not in str(e.value)  # a line's password is never echoed
    bad.write_text("ssh\n")
    with pytest.raises(ActiveSettingsError, match=r"creds\.txt:1 .*no user name"):
        ActiveSettings.from_config(config)
    bad.write_bytes(b"ssh root \xff\n")
    with pytest.raises(ActiveSettingsError, match=r"creds\.txt: not UTF-8"):
        ActiveSettings.from_config(config)
    with pytest.raises(ActiveSettingsError, match=r"missing\.txt: file not found"):
        ActiveSettings.from_config(ActiveConfig(credentials=tmp_path / "missing.txt"))
    bad.write_text("ssh root two words\nhttp admin\n")
    got = ActiveSettings.from_config(ActiveConfig(credentials=bad, max_attempts=2))
    assert got.pairs("ssh") == [("root", "two words")] and got.pairs("http") == [("admin", "")]
    assert got.pairs("ftp") == ActiveSettings().pairs("ftp")[:2]  # not named: built-in list
