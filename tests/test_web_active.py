"""Default-credential attempts against FTP, telnet and SSH (only with --active).

FTP runs against real servers: pyftpdlib with a user whose password is a default one (FAIL) and
vsftpd without local logins for the attempted names (PASS). Telnet uses a scripted responder
(a real telnetd logs in system accounts, which the tests must not create). SSH: a real sshd
with password logins refuses the defaults (PASS), a real hardened sshd does not offer password
logins at all (PASS), and a paramiko server that accepts admin/admin stands in for a device
with a default password (FAIL), for the same reason as telnet.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from checks.web.active import DefaultCredentials
from scanner.collectors.web_active import (
    ActiveSettings,
    DefaultCredentialFacts,
    DefaultCredentialsCollector,
)
from scanner.model import ServiceInfo, Status, Target, TargetKind
from scanner.plugins import CollectContext, FactsView
from tests.helpers import evaluate, free_port, guard_for, pick_loopback
from tests.servers_ftp import have_vsftpd, running, vsftpd
from tests.servers_redis import ScriptedServer

FAST = ActiveSettings(interval=0)


def svc(addr: str, port: int, name: str) -> Target:
    return Target(
        kind=TargetKind.SERVICE, unit="t", address=addr, port=port, service=ServiceInfo(name=name)
    )


def attempt(
    target: Target, settings: ActiveSettings = FAST, active: bool = True
) -> tuple[DefaultCredentialFacts, FactsView, CollectContext]:
    assert target.address
    ctx = CollectContext(scope=guard_for(target.address), active=active, probe_timeout=3)
    col = DefaultCredentialsCollector(settings)
    assert col.applies(target)
    facts = asyncio.run(asyncio.wait_for(col.collect(target, ctx), col.timeout))
    return facts, FactsView(target, {"active.credentials": facts}), ctx


# -- FTP ---------------------------------------------------------------------------------------


@pytest.mark.real
def test_ftp_default_password_fails(tmp_path: Path) -> None:
    addr = pick_loopback()
    port = free_port(addr)
    root = tmp_path / "share"
    root.mkdir()
    cmd = [sys.executable, "-m", "pyftpdlib", "-i", addr, "-p", str(port), "-d", str(root),
           "-u", "admin", "-P", "admin"]  # fmt: skip
    with running(cmd, addr, port, tmp_path / "ftpd.log", tmp_path):
        facts, view, ctx = attempt(svc(addr, port, "ftp"))
    [res] = evaluate(DefaultCredentials(), view)
    assert res.status is Status.FAIL and "admin" in res.message
    assert [a.username for a in facts.attempts] == ["admin"]  # stops at the first success
    assert any("ftp " in line and "'admin'" in line for line in ctx.active_log)


@pytest.mark.real
@pytest.mark.skipif(not have_vsftpd(), reason="vsftpd (as root) is not available")
def test_ftp_defaults_rejected_passes(tmp_path: Path) -> None:
    addr = pick_loopback()
    with vsftpd(tmp_path / "v", addr, weak=False) as server:
        facts, view, _ = attempt(svc(addr, server.port, "ftp"))
    assert len(facts.attempts) == 3 and not facts.accepted, facts.attempts  # the limit
    [res] = evaluate(DefaultCredentials(), view)
    assert res.status is Status.PASS, (res.message, facts.attempts)


def test_without_active_ftp_is_not_assessed() -> None:
    addr = pick_loopback()
    facts, view, ctx = attempt(svc(addr, 2121, "ftp"), active=False)
    assert not facts.ran and ctx.active_log == []
    [res] = evaluate(DefaultCredentials(), view)
    assert res.status is Status.NOT_ASSESSED and "--active" in res.message


# -- telnet (scripted) -------------------------------------------------------------------------


def telnet_device(accept: tuple[str, str]) -> object:
    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"\xff\xfd\x18\xff\xfb\x01")  # DO TERMINAL-TYPE, WILL ECHO
        conn.sendall(b"\r\nRouter\r\nlogin: ")
        user = _line(conn)
        conn.sendall(b"Password: ")
        password = _line(conn)
        if (user, password) == accept:
            conn.sendall(b"\r\nWelcome\r\nrouter# ")
        else:
            conn.sendall(b"\r\nLogin incorrect\r\nlogin: ")
        stop.wait(1)

    return handler


def _line(conn: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\n") and len(data) < 256:
        chunk = conn.recv(64)
        if not chunk:
            break
        data += chunk.replace(b"\xff\xfc\x18", b"").replace(b"\xff\xfe\x01", b"")
    return data.strip().decode(errors="replace")


def test_telnet_default_password_fails() -> None:
    addr = pick_loopback()
    with ScriptedServer(addr, telnet_device(("root", "root"))) as srv:  # type: ignore[arg-type]
        facts, view, _ = attempt(svc(addr, srv.port, "telnet"))
    assert [(a.username, a.outcome) for a in facts.attempts] == [
        ("admin", "rejected"), ("root", "accepted")]  # fmt: skip
    assert evaluate(DefaultCredentials(), view)[0].status is Status.FAIL


def test_telnet_defaults_rejected_passes() -> None:
    addr = pick_loopback()
    with ScriptedServer(addr, telnet_device(("ops", "S7rong-pass"))) as srv:  # type: ignore[arg-type]
        facts, view, _ = attempt(svc(addr, srv.port, "telnet"))
    assert [a.outcome for a in facts.attempts] == ["rejected"] * 3
    assert evaluate(DefaultCredentials(), view)[0].status is Status.PASS


def test_telnet_silent_server_is_an_error_not_a_hang() -> None:
    from tests.servers_redis import silent

    addr = pick_loopback()
    with ScriptedServer(addr, silent) as srv:
        ctx = CollectContext(scope=guard_for(addr), active=True, probe_timeout=0.3)
        col = DefaultCredentialsCollector(ActiveSettings(interval=0, max_attempts=2))
        facts = asyncio.run(col.collect(svc(addr, srv.port, "telnet"), ctx))
    assert [a.outcome for a in facts.attempts] == ["error", "error"]
    view = FactsView(svc(addr, srv.port, "telnet"), {"active.credentials": facts})
    [res] = evaluate(DefaultCredentials(), view)
    assert res.status is Status.ERROR and "no login prompt" in res.message


# -- SSH ----------------------------------------------------------------------------------------


class _AcceptAdmin(paramiko.ServerInterface):
    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_auth_password(self, username: str, password: str) -> int:
        if (username, password) == ("admin", "admin"):
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED


@pytest.fixture(scope="module")
def ssh_device() -> Iterator[tuple[str, int]]:
    host_key = paramiko.RSAKey.generate(2048)
    addr = pick_loopback()

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        t = paramiko.Transport(conn)
        t.add_server_key(host_key)
        try:
            t.start_server(server=_AcceptAdmin())
            stop.wait(2)
        finally:
            t.close()

    with ScriptedServer(addr, handler) as srv:
        yield addr, srv.port


def test_ssh_default_password_fails(ssh_device: tuple[str, int]) -> None:
    addr, port = ssh_device
    facts, view, _ = attempt(svc(addr, port, "ssh"))
    assert [(a.username, a.outcome) for a in facts.attempts] == [
        ("root", "rejected"), ("admin", "accepted")]  # fmt: skip
    assert evaluate(DefaultCredentials(), view)[0].status is Status.FAIL


def _sshd() -> object:
    try:
        from tests import servers_sshd
    except ImportError:
        return None
    return servers_sshd if servers_sshd.HAVE_SSHD and servers_sshd.IS_ROOT else None


@pytest.mark.real
@pytest.mark.skipif(_sshd() is None, reason="sshd is not available")
def test_real_sshd_rejects_defaults_or_offers_no_passwords(tmp_path: Path) -> None:
    from tests.servers_sshd import HARDENED_OPTIONS, WEAK_OPTIONS, Sshd, make_key

    key = make_key(tmp_path / "host_ed25519", "ed25519")
    weak = Sshd(tmp_path / "weak", WEAK_OPTIONS, host_keys=(key,))
    hard = Sshd(tmp_path / "hard", HARDENED_OPTIONS, host_keys=(key,))
    with weak, hard:
        weak_facts, weak_view, _ = attempt(svc(weak.addr, weak.port, "ssh"))
        hard_facts, hard_view, _ = attempt(svc(hard.addr, hard.port, "ssh"))
    assert [a.outcome for a in weak_facts.attempts] == ["rejected"] * 3
    assert evaluate(DefaultCredentials(), weak_view)[0].status is Status.PASS
    assert len(hard_facts.attempts) == 1 and "not offered" in hard_facts.attempts[0].detail
    [res] = evaluate(DefaultCredentials(), hard_view)
    assert res.status is Status.PASS and "not offered" in res.message
