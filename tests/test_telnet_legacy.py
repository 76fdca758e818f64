"""Banner collector, telnet and small-service checks against inetutils-inetd.

inetd runs telnetd on a free port and its internal echo/discard/daytime/chargen/time services
on their well-known ports of a loopback address of the test's own (inetd cannot move internal
services to other ports; see tests/servers_inetd.py). Targets carry no service name, the way the
connect-only discovery leaves them, so the checks must recognise each service by behaviour; the
nmap-named case is tested too. Ordinary services (pyftpdlib) must pass both checks.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.network.legacy import SmallServices
from checks.network.telnet import TelnetPresent
from scanner.collectors.banner import (
    BannerCollector,
    BannerFacts,
    looks_like_daytime,
    looks_like_time,
)
from scanner.model import Result, ServiceInfo, Status, Target, TargetKind
from scanner.plugins import Check, FactsView
from tests.helpers import collect, evaluate, free_port, pick_loopback
from tests.servers_ftp import ScriptedServer, pyftpdlib_server
from tests.servers_inetd import (
    SMALL,
    have_inetd,
    inetd,
    ports_free,
    small_service_entries,
    telnet_entry,
)

TELNET, SMALL_SERVICES = TelnetPresent(), SmallServices()


def target(addr: str, port: int, name: str = "", method: str = "") -> Target:
    service = ServiceInfo(name=name, method=method) if name or method else None
    return Target(kind=TargetKind.SERVICE, unit="test", address=addr, port=port, service=service)


def banner(t: Target, timeout: float = 2.0) -> FactsView:
    """2 s: inetd sometimes takes a second before it serves a connection."""
    return collect([BannerCollector()], t, timeout=timeout)


def facts(view: FactsView) -> BannerFacts:
    return view.get("service.banner", BannerFacts)


def one(check: Check, view: FactsView) -> Result:
    results = evaluate(check, view)
    assert len(results) == 1, results
    return results[0]


class Inetd:
    def __init__(self, address: str, telnet_port: int) -> None:
        self.address, self.telnet_port = address, telnet_port


@pytest.fixture(scope="module")
def inetd_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inetd]:
    if not have_inetd():
        pytest.skip("needs /usr/sbin/inetutils-inetd and root")
    addr = pick_loopback()
    telnet_port = free_port(addr)
    if not ports_free(addr, [*SMALL.values(), telnet_port]):
        pytest.skip(f"the small-service ports are taken on {addr}")
    entries = [*small_service_entries(), telnet_entry(telnet_port)]
    with inetd(tmp_path_factory.mktemp("inetd"), addr, entries, [telnet_port, *SMALL.values()]):
        yield Inetd(addr, telnet_port)


@pytest.mark.real
@pytest.mark.parametrize(("name", "method"), [("", ""), ("telnet", "probed")])
def test_telnetd_fails(inetd_host: Inetd, name: str, method: str) -> None:
    view = banner(target(inetd_host.address, inetd_host.telnet_port, name, method))
    b = facts(view)
    assert b.telnet_iac and "DO TTYPE" in b.telnet_options
    result = one(TELNET, view)
    assert result.status is Status.FAIL
    assert "negotiation" in result.message  # the strongest evidence is named first
    assert one(SMALL_SERVICES, view).status is Status.PASS


@pytest.mark.real
@pytest.mark.parametrize("name", list(SMALL))
def test_small_service_recognised_by_behaviour(inetd_host: Inetd, name: str) -> None:
    view = banner(target(inetd_host.address, SMALL[name]))
    assert facts(view).behaviour == name
    result = one(SMALL_SERVICES, view)
    assert result.status is Status.FAIL
    assert result.message == f"the service behaves like {name}"
    assert one(TELNET, view).status is Status.PASS


@pytest.mark.real
def test_small_service_named_by_nmap(inetd_host: Inetd) -> None:
    view = banner(target(inetd_host.address, SMALL["echo"], "echo", "probed"))
    b = facts(view)
    assert b.probe_sent and b.behaviour == "echo" and "assay-probe-" in b.probe_reply
    assert one(SMALL_SERVICES, view).status is Status.FAIL


@pytest.mark.real
def test_chargen_read_is_bounded(inetd_host: Inetd) -> None:
    b = facts(banner(target(inetd_host.address, SMALL["chargen"])))
    assert b.bytes_read == 4096 and b.read_limit_reached and not b.probe_sent


@pytest.mark.real
@pytest.mark.parametrize(
    ("port", "name"),
    [(0, "ftp"), (23, "telnet"), (7, "echo")],
    ids=["ftp", "port-23-guess", "port-7-guess"],
)
def test_ordinary_service_passes(tmp_path: Path, port: int, name: str) -> None:
    """pyftpdlib on its own port, and on the telnet and echo ports under a port-table guess."""
    addr = pick_loopback()
    if port and not (os.geteuid() == 0 and ports_free(addr, [port])):
        pytest.skip("binding a well-known port needs root")
    with pyftpdlib_server(tmp_path, addr, port or None) as srv:
        view = banner(target(addr, srv.port, name, "probed" if name == "ftp" else "table"))
    assert facts(view).banner.startswith("220 pyftpdlib")
    for check in (TELNET, SMALL_SERVICES):
        result = one(check, view)
        assert result.status is Status.PASS, result


# -- faults --------------------------------------------------------------------------------


def _silent(conn: socket.socket, index: int, stop: threading.Event) -> None:
    stop.wait(15)


def _flood(conn: socket.socket, index: int, stop: threading.Event) -> None:
    conn.sendall(b"X" * (10 * 1024 * 1024))


def test_silent_service_is_not_telnet() -> None:
    addr = pick_loopback()
    with ScriptedServer(addr, _silent) as srv:
        view = banner(target(addr, srv.port), timeout=1.0)
    b = facts(view)
    assert b.connected and b.bytes_read == 0 and not b.closed_by_server and not b.probe_sent
    assert one(TELNET, view).status is Status.PASS
    assert one(SMALL_SERVICES, view).status is Status.PASS


def test_flood_is_read_to_the_limit_only() -> None:
    addr = pick_loopback()
    with ScriptedServer(addr, _flood) as srv:
        b = facts(banner(target(addr, srv.port)))
    assert b.bytes_read == 4096 and b.read_limit_reached
    assert len(b.banner) <= 1024 and b.banner_truncated and b.behaviour == ""


def test_refused_is_a_fact_and_never_a_pass() -> None:
    addr = pick_loopback()
    view = banner(target(addr, free_port(addr)))
    b = facts(view)
    assert not b.connected and b.connect_error == "refused"
    for check in (TELNET, SMALL_SERVICES):
        result = one(check, view)
        assert result.status is Status.ERROR and "refused" in result.message


def test_refused_port_named_by_nmap_still_counts() -> None:
    addr = pick_loopback()
    view = banner(target(addr, free_port(addr), "telnet", "probed"))
    assert one(TELNET, view).status is Status.FAIL


# -- recorded facts ------------------------------------------------------------------------


def _recorded(port: int, name: str, method: str, **fields: object) -> FactsView:
    t = target("127.0.0.9", port, name, method)
    data = {"address": "127.0.0.9", "port": port, "connected": True, **fields}
    return FactsView(t, {"service.banner": BannerFacts.model_validate(data)})


def test_guessed_telnet_port_with_login_prompt_fails() -> None:
    view = _recorded(23, "telnet", "table", banner="\\r\\nrouter login: ", bytes_read=16)
    assert one(TELNET, view).status is Status.FAIL


def test_guessed_telnet_port_that_stays_silent_is_not_assessed() -> None:
    view = _recorded(23, "telnet", "table")
    assert one(TELNET, view).status is Status.NOT_ASSESSED


def test_small_services_param_limits_the_list() -> None:
    view = _recorded(13, "", "", behaviour="daytime", closed_by_server=True, bytes_read=26)
    only_chargen = SmallServices.Params(services=["chargen"])
    assert SMALL_SERVICES.evaluate(view, SmallServices.Params()).status is Status.FAIL
    assert SMALL_SERVICES.evaluate(view, only_chargen).status is Status.PASS


def test_time_reply_forms() -> None:
    now_1900 = (3_995_000_000).to_bytes(4, "big")  # 2026
    assert looks_like_time(now_1900, closed=True)
    assert looks_like_time(now_1900 + bytes(4), closed=True)  # 64-bit writers
    assert not looks_like_time(now_1900, closed=False)
    assert not looks_like_time(b"\x00\x00\x00\x01", closed=True)


@pytest.mark.parametrize(
    ("data", "closed", "expected"),
    [
        (b"Wed Dec  2 20:35:05 2026\r\n", True, True),  # inetutils
        (b"Wednesday, December 2, 2026 20:35:05-UTC\r\n", True, True),  # RFC 867 style
        (b"Wed Dec  2 20:35:05 2026\r\n", False, False),  # still open: not daytime
        (b"421 Closing at 20:35 2026\r\n", True, False),  # a reply code: some other protocol
        (b"SSH-2.0-OpenSSH_9.2\r\n", True, False),
    ],
)
def test_daytime_reply_forms(data: bytes, closed: bool, expected: bool) -> None:
    assert looks_like_daytime(data, closed) is expected
