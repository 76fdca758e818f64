"""FTP collector and checks against real vsftpd and pyftpdlib servers, plus scripted faults.

Weak vsftpd (anonymous with a world-writable upload directory, local logins without TLS, the
default banner) must fail every FTP check; hardened vsftpd (no anonymous, TLS required, neutral
banner) must pass every one. The write probe must leave nothing behind. Servers that are silent,
send garbage or a 10 MB line make the collector raise: no facts, so no check can pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.network.ftp import AnonymousLogin, AnonymousWrite, BannerVersion, CleartextAuth
from scanner.collectors.ftp import (
    FtpCollector,
    FtpFacts,
    FtpProtocolError,
    FtpReply,
    parse_listing,
    write_candidates,
)
from scanner.inventory import parse_inventory
from scanner.masking import mask_evidence
from scanner.model import Result, ServiceInfo, Status, Target, TargetKind
from scanner.plugins import Check, CollectContext, FactsView, Registry
from scanner.runner import Runner, ScanOptions
from scanner.store import Store
from tests.helpers import evaluate, free_port, guard_for, pick_loopback
from tests.servers_ftp import (
    FtpServer,
    Handler,
    ScriptedServer,
    have_vsftpd,
    pyftpdlib_server,
    read_command,
    tree,
    vsftpd,
)

needs_vsftpd = pytest.mark.skipif(not have_vsftpd(), reason="needs /usr/sbin/vsftpd, run as root")

LOGIN, WRITE, CLEARTEXT, BANNER = (
    AnonymousLogin(),
    AnonymousWrite(),
    CleartextAuth(),
    BannerVersion(),
)
ALL = (LOGIN, WRITE, CLEARTEXT, BANNER)


def ftp_target(addr: str, port: int, name: str = "ftp", method: str = "probed") -> Target:
    return Target(
        kind=TargetKind.SERVICE,
        unit="test",
        address=addr,
        port=port,
        service=ServiceInfo(name=name, method=method),
    )


def run_ftp(
    target: Target, active: bool = False, timeout: float = 5.0
) -> tuple[FactsView, list[str]]:
    """Collect like the runner does, keeping the context's active-probe log."""
    assert target.address
    col = FtpCollector()
    assert col.applies(target)
    ctx = CollectContext(scope=guard_for(target.address), active=active, probe_timeout=timeout)
    facts = asyncio.run(asyncio.wait_for(col.collect(target, ctx), col.timeout))
    return FactsView(target, {col.id: facts}), ctx.active_log


def one(check: Check, view: FactsView) -> Result:
    results = evaluate(check, view)
    assert len(results) == 1, results
    return results[0]


def ftp_facts(view: FactsView) -> FtpFacts:
    return view.get("service.ftp", FtpFacts)


# -- real servers --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FtpServer]:
    if not have_vsftpd():
        pytest.skip("needs /usr/sbin/vsftpd, run as root")
    with vsftpd(tmp_path_factory.mktemp("vsftpd-weak"), pick_loopback(), weak=True) as srv:
        yield srv


@pytest.fixture(scope="module")
def good_view(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FactsView, list[str]]]:
    """Hardened vsftpd, collected once with --active (its failed-login delay costs ~3 s)."""
    if not have_vsftpd():
        pytest.skip("needs /usr/sbin/vsftpd, run as root")
    with vsftpd(tmp_path_factory.mktemp("vsftpd-good"), pick_loopback(), weak=False) as srv:
        yield run_ftp(ftp_target(srv.address, srv.port), active=True)


@pytest.mark.real
@needs_vsftpd
def test_weak_vsftpd_fails_every_check_and_cleans_up(weak: FtpServer) -> None:
    before = tree(weak.root)
    view, log = run_ftp(ftp_target(weak.address, weak.port), active=True)
    f = ftp_facts(view)
    assert f.greeting.code == 220 and "vsFTPd" in f.greeting.text
    assert f.auth_tls_offered is False and f.cleartext_user_accepted is True

    assert {c.meta.id: one(c, view).status for c in ALL} == {c.meta.id: Status.FAIL for c in ALL}
    login = one(LOGIN, view)
    assert login.evidence["sample"] == ["upload"]
    write = one(WRITE, view)
    assert write.evidence["path"].startswith("upload/assay-write-probe-")
    assert write.evidence["deleted"] is True
    assert [a["reply"][:3] for a in write.evidence["attempts"]] == ["553", "226"]
    assert "3.0.3" in " ".join(one(BANNER, view).evidence["disclosed"])
    assert "without TLS" in one(CLEARTEXT, view).message

    # the probe said what it did, and the server holds exactly what it held before
    assert len(log) == 2 and "refused" in log[0] and "deleted" in log[1]
    assert tree(weak.root) == before == ["upload"]


@pytest.mark.real
@needs_vsftpd
def test_weak_vsftpd_without_active_does_not_write(weak: FtpServer) -> None:
    view, log = run_ftp(ftp_target(weak.address, weak.port), active=False)
    result = one(WRITE, view)
    assert result.status is Status.NOT_ASSESSED
    assert "--active" in result.message
    assert any("upload" in h and "world-writable" in h for h in result.evidence["hints"])
    assert ftp_facts(view).anonymous.write.attempts == []
    assert log == []
    assert one(LOGIN, view).status is Status.FAIL


@pytest.mark.real
@needs_vsftpd
def test_write_probe_reports_a_file_it_could_not_delete(tmp_path: Path) -> None:
    with vsftpd(tmp_path, pick_loopback(), weak=True, can_delete=False) as srv:
        view, log = run_ftp(ftp_target(srv.address, srv.port), active=True)
    result = one(WRITE, view)
    assert result.status is Status.FAIL
    assert result.evidence["deleted"] is False and "NOT be deleted" in result.message
    assert "FILE LEFT ON THE SERVER" in log[-1]
    left = [p for p in tree(srv.root) if p != "upload"]
    assert left == [result.evidence["path"]]


@pytest.mark.real
@needs_vsftpd
def test_hardened_vsftpd_passes_every_check(good_view: tuple[FactsView, list[str]]) -> None:
    view, log = good_view
    f = ftp_facts(view)
    assert f.auth_tls_offered is True
    assert f.user_probe_reply.code == 530
    assert f.anonymous.allowed is False
    assert {c.meta.id: one(c, view).status for c in ALL} == {c.meta.id: Status.PASS for c in ALL}
    assert log == []  # no anonymous session, so nothing was written


@pytest.mark.real
@needs_vsftpd
def test_facts_survive_storage(good_view: tuple[FactsView, list[str]], weak: FtpServer) -> None:
    """Stored facts are masked JSON; re-read, they must give the same results."""
    weak_view, _ = run_ftp(ftp_target(weak.address, weak.port), active=False)
    for view, _log in (good_view, (weak_view, [])):
        stored = mask_evidence(ftp_facts(view).model_dump(mode="json"))
        revived = FactsView(view.target, {"service.ftp": FtpFacts.model_validate(stored)})
        assert [one(c, revived) for c in ALL] == [one(c, view) for c in ALL]


@pytest.mark.real
def test_pyftpdlib_read_only_anonymous(tmp_path: Path) -> None:
    """A second real server: anonymous may read but every upload is refused."""
    with pyftpdlib_server(tmp_path, pick_loopback()) as srv:
        before = tree(srv.root)
        view, log = run_ftp(ftp_target(srv.address, srv.port), active=True)
        assert tree(srv.root) == before
    f = ftp_facts(view)
    assert {e.name for e in f.anonymous.listing} == {"pub", "readme.txt"}
    assert one(LOGIN, view).status is Status.FAIL
    write = one(WRITE, view)
    assert write.status is Status.PASS, write
    assert [a["path"].split("/")[0] for a in write.evidence["attempts"]][1:] == ["pub"]
    assert len(log) == 2 and all("refused" in line for line in log)
    banner = one(BANNER, view)
    assert banner.status is Status.FAIL and "pyftpdlib" in " ".join(banner.evidence["disclosed"])
    assert one(CLEARTEXT, view).status is Status.FAIL


# -- faults no real server produces on purpose ---------------------------------------------


def _silent(conn: socket.socket, index: int, stop: threading.Event) -> None:
    stop.wait(15)


def _garbage(conn: socket.socket, index: int, stop: threading.Event) -> None:
    conn.sendall(b"\x16\x03\x01\x00garbage, not FTP\r\n")
    stop.wait(15)


def _huge_greeting(conn: socket.socket, index: int, stop: threading.Event) -> None:
    conn.sendall(b"220 " + b"A" * (10 * 1024 * 1024))


def _huge_feat(conn: socket.socket, index: int, stop: threading.Event) -> None:
    conn.sendall(b"220 ready\r\n")
    read_command(conn, stop)
    conn.sendall(b"211-" + b"F" * (10 * 1024 * 1024) + b"\r\n211 End\r\n")


def _endless_reply(conn: socket.socket, index: int, stop: threading.Event) -> None:
    for _ in range(100_000):
        if stop.is_set():
            return
        conn.sendall(b"220-still greeting\r\n")


@pytest.mark.parametrize(
    ("handler", "reason"),
    [
        (_silent, "greeting not received within 1s"),
        (_garbage, "greeting is not an FTP reply"),
        (_huge_greeting, "reply line longer than 8192 bytes"),
        (_huge_feat, "reply to FEAT: reply line longer than 8192 bytes"),
        (_endless_reply, "more than 200 lines"),
    ],
    ids=["silent", "garbage", "10MB-greeting", "10MB-FEAT-reply", "endless-multiline"],
)
def test_broken_server_raises(handler: Handler, reason: str) -> None:
    addr = pick_loopback()
    with (
        ScriptedServer(addr, handler) as srv,
        pytest.raises(FtpProtocolError, match=reason) as info,
    ):
        run_ftp(ftp_target(addr, srv.port), timeout=1.0)
    assert str(info.value).startswith(f"{addr}:{srv.port}: ")


@pytest.mark.skipif(os.geteuid() != 0, reason="binds port 21, which needs root")
def test_runner_turns_broken_ftp_into_errors(tmp_path: Path) -> None:
    """Through the real runner (connect-scan discovery): every FTP check is `error`, none pass."""
    handlers = {"silent": _silent, "garbage": _garbage, "10MB": _huge_greeting}
    addrs = {kind: pick_loopback() for kind in handlers}
    hosts = [{"address": a, "ports": "21"} for a in addrs.values()]
    inventory = {
        "version": 1,
        "settings": {"probe_timeout": 1},
        "units": [{"id": "t", "name": "FTP faults", "hosts": hosts}],
    }
    text = json.dumps(inventory)  # JSON is YAML
    reg = Registry()
    reg.add_collector(FtpCollector)
    for check in ALL:
        reg.add_check(type(check))
    store = Store(f"sqlite:///{tmp_path / 'scan.db'}")
    options = ScanOptions(nmap_path=str(tmp_path / "no-nmap"))  # force the connect scan
    runner = Runner(reg, store, parse_inventory(text), inventory_text=text, options=options)
    with contextlib.ExitStack() as stack:
        for kind, handler in handlers.items():
            stack.enter_context(ScriptedServer(addrs[kind], handler, port=21))
        summary = asyncio.run(runner.run())
    outcomes = [o for o in store.outcomes(summary.scan_id) if o.check_id.startswith("net.ftp.")]
    by_addr: dict[str, set[Status]] = {}
    for o in outcomes:
        by_addr.setdefault(o.target.address or "", set()).add(o.status)
        assert "service.ftp: FtpProtocolError" in o.message
    assert by_addr == {a: {Status.ERROR} for a in addrs.values()}
    assert len(outcomes) == len(ALL) * len(addrs)


def test_connection_refused_raises() -> None:
    addr = pick_loopback()
    port = free_port(addr)
    with pytest.raises(FtpProtocolError, match=f"{addr}:{port}: connection refused"):
        run_ftp(ftp_target(addr, port))


def _breaks_after_first_session(conn: socket.socket, index: int, stop: threading.Event) -> None:
    """Connection 1 behaves; the anonymous session then never gets an answer to USER."""
    conn.sendall(b"220 ready\r\n")
    replies = {
        b"FEAT": b"211-Features:\r\n AUTH TLS\r\n PASV\r\n211 End\r\n",
        b"USER": b"331 Password required\r\n",
        b"QUIT": b"221 Bye\r\n",
    }
    while cmd := read_command(conn, stop):
        if index > 0:
            stop.wait(15)
            return
        conn.sendall(replies.get(cmd.split(b" ", 1)[0], b"502 Not implemented\r\n"))


def test_session_that_breaks_later_gives_error_not_pass() -> None:
    addr = pick_loopback()
    with ScriptedServer(addr, _breaks_after_first_session) as srv:
        view, log = run_ftp(ftp_target(addr, srv.port), active=True, timeout=1.0)
    f = ftp_facts(view)
    assert f.anonymous.allowed is None
    assert "reply to USER not received within 1s" in f.anonymous.error
    for check in (LOGIN, WRITE):
        result = one(check, view)
        assert result.status is Status.ERROR and "reply to USER" in result.message
    assert one(CLEARTEXT, view).status is Status.FAIL  # that part was assessed
    assert log == []


def _terse_but_valid(conn: socket.socket, index: int, stop: threading.Event) -> None:
    """Legal replies real servers send: a 120 before the 220, bare codes, a TLS-only policy."""
    conn.sendall(b"120 ready in a moment\r\n220\r\n")
    replies = {
        b"FEAT": b"211-Features:\r\n AUTH TLS\r\n211\r\n",
        b"USER": b"530 Use AUTH TLS first: SSL/TLS required\r\n",
        b"QUIT": b"221\r\n",
    }
    while cmd := read_command(conn, stop):
        conn.sendall(replies.get(cmd.split(b" ", 1)[0], b"502 Not implemented\r\n"))


def test_terse_replies_are_understood() -> None:
    addr = pick_loopback()
    with ScriptedServer(addr, _terse_but_valid) as srv:
        view, _ = run_ftp(ftp_target(addr, srv.port), active=True, timeout=1.0)
        assert srv.connections == 2  # FEAT listed AUTH TLS, so no separate AUTH TLS session
    f = ftp_facts(view)
    assert f.greeting.code == 220 and f.features == ["AUTH TLS"] and f.auth_tls_offered
    assert {c.meta.id: one(c, view).status for c in ALL} == {c.meta.id: Status.PASS for c in ALL}


# -- recorded facts and parsers ------------------------------------------------------------


def _recorded(greeting: str, user_code: int = 331, user_text: str = "") -> FactsView:
    facts = FtpFacts.model_validate(
        {
            "address": "127.0.0.9",
            "port": 21,
            "greeting": {"code": 220, "text": greeting},
            "feat_reply_code": 211,
            "features": ["AUTH TLS"],
            "auth_tls_offered": True,
            "user_probe_reply": {"code": user_code, "text": user_text},
            "cleartext_user_accepted": user_code in (230, 331, 332),
            "anonymous": {"allowed": False, "user_reply": {"code": 530, "text": "no"}},
        }
    )
    return FactsView(ftp_target("127.0.0.9", 21), {"service.ftp": facts})


@pytest.mark.parametrize(
    ("greeting", "status"),
    [
        ("(vsFTPd 3.0.3)", Status.FAIL),
        ("ProFTPD 1.3.5 Server (Debian) [127.0.0.9]", Status.FAIL),
        ("Microsoft FTP Service", Status.FAIL),
        ("pyftpdlib 1.5.9 ready.", Status.FAIL),
        ("FTP server (Version 6.00LS) ready.", Status.FAIL),
        ("Welcome", Status.PASS),
        ("Unit archive - authorised use only", Status.PASS),
    ],
)
def test_banner_version_on_recorded_greetings(greeting: str, status: Status) -> None:
    assert one(BANNER, _recorded(greeting)).status is status


@pytest.mark.parametrize(
    ("code", "text", "status"),
    [
        (331, "Please specify the password.", Status.FAIL),
        (530, "Non-anonymous sessions must use encryption.", Status.PASS),
        (550, "SSL/TLS required on the control channel", Status.PASS),
        (530, "This FTP server is anonymous only.", Status.NOT_ASSESSED),
    ],
)
def test_cleartext_auth_on_recorded_replies(code: int, text: str, status: Status) -> None:
    assert one(CLEARTEXT, _recorded("Welcome", code, text)).status is status


def test_listing_parser_and_write_candidates() -> None:
    listing = (
        b"total 12\r\n"
        b"drwxrwxrwx    2 0        0            4096 Dec 02 20:35 upload\r\n"
        b"drwxr-xr-x    2 0        0            4096 Dec 02 20:35 pub\r\n"
        b"drwxrwxrwx    2 0        0            4096 Dec 02 20:35 bad name\r\n"
        b"-rw-r--r--    1 0        0              12 Jan  5  2024 readme.txt\r\n"
        b"lrwxrwxrwx    1 0        0               6 Jan  5  2024 latest -> pub/v2\r\n"
        b"12-02-26  08:35PM       <DIR>          incoming\r\n"
    )
    entries = parse_listing(listing)
    assert [(e.name, e.kind, e.world_writable) for e in entries] == [
        ("upload", "dir", True),
        ("pub", "dir", False),
        ("bad name", "dir", True),
        ("readme.txt", "file", False),
        ("latest", "link", False),
        ("incoming", "dir", False),
    ]
    # names that are not plain tokens are never sent back to the server
    assert write_candidates(entries, listed=True) == ["upload", "pub", "incoming"]
    assert write_candidates([], listed=False) == ["upload", "incoming", "pub"]


def test_applies_to_ftp_names_and_port_21_only() -> None:
    col = FtpCollector()
    assert col.applies(ftp_target("127.0.0.9", 2121))
    assert col.applies(ftp_target("127.0.0.9", 21, name=""))
    assert not col.applies(ftp_target("127.0.0.9", 2121, name=""))
    assert not col.applies(ftp_target("127.0.0.9", 21, name="http"))
    tls = Target(
        kind=TargetKind.SERVICE,
        unit="test",
        address="127.0.0.9",
        port=990,
        service=ServiceInfo(name="ftp", tunnel="ssl"),
    )
    assert not col.applies(tls)


def test_reply_str_is_code_and_text() -> None:
    assert str(FtpReply(code=230, text="Login successful.")) == "230 Login successful."
