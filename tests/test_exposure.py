"""Database/admin exposure: host facts built from real listening sockets, and the match rules."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.network.exposure import DbAdminPorts
from scanner.collectors.hostsvc import HostServices, HostServicesCollector, ServiceEntry
from scanner.collectors.redis import RedisCollector, RedisProbeError
from scanner.model import ServiceInfo, Severity, Status, Target, TargetKind, fingerprint
from scanner.plugins import CollectContext, FactsView
from tests.helpers import evaluate, guard_for, pick_loopback
from tests.servers_redis import HAVE_REDIS, WEAK_LINES, RedisServer

CHECK = DbAdminPorts()


@contextlib.contextmanager
def listening(address: str, *ports: int) -> Iterator[list[int]]:
    """Plain TCP listeners (they accept and say nothing), closed at the end."""
    socks = []
    try:
        for port in ports:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((address, port))
            s.listen(4)
            socks.append(s)
        yield [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


async def _identify(address: str, port: int) -> ServiceInfo:
    """What a connect-only discovery learns: 'redis' if it answers PING, else nothing."""
    target = Target(kind=TargetKind.SERVICE, unit="test", address=address, port=port)
    ctx = CollectContext(scope=guard_for(address), probe_timeout=0.5)
    try:
        facts = await RedisCollector().collect(target, ctx)
    except RedisProbeError:
        return ServiceInfo(method="")
    if facts.access != "unknown":
        return ServiceInfo(name="redis", method="banner")
    return ServiceInfo(method="")


def host_facts(address: str, ports: list[int]) -> FactsView:
    """Run the real host.services collector over service targets found on `ports`."""

    async def go() -> FactsView:
        related = {}
        for port in ports:
            info = await _identify(address, port)
            svc = Target(
                kind=TargetKind.SERVICE, unit="test", address=address, port=port, service=info
            )
            related[svc.key] = FactsView(svc)
        host = Target(kind=TargetKind.HOST, unit="test", address=address)
        ctx = CollectContext(scope=guard_for(address), related=related, discovery_engine="connect")
        facts = await HostServicesCollector().collect(host, ctx)
        return FactsView(host, {"host.services": facts})

    return asyncio.run(go())


@pytest.mark.real
@pytest.mark.skipif(not HAVE_REDIS, reason="redis-server is not installed")
def test_real_redis_and_postgres_port_fail_once_each(tmp_path: Path) -> None:
    addr = pick_loopback()
    with (
        RedisServer(tmp_path, addr, WEAK_LINES) as redis,
        listening(addr, 5432, 0) as (pg, other),
    ):
        view = host_facts(addr, [redis.port, pg, other])
    host = view.get("host.services", HostServices)
    assert {s.name for s in host.services} == {"redis", ""}

    results = evaluate(CHECK, view)
    assert {r.status for r in results} == {Status.FAIL}
    by_detail = {r.detail: r for r in results}
    assert set(by_detail) == {f"{redis.port}/tcp", "5432/tcp"}  # not the anonymous port
    assert by_detail[f"{redis.port}/tcp"].evidence["recognised_by"] == "name"
    assert by_detail["5432/tcp"].evidence["recognised_by"] == "port"
    assert by_detail["5432/tcp"].evidence["service"] == "PostgreSQL"
    assert all("reachable from the scanner's network position" in r.message for r in results)
    target_key = view.target.key
    prints = {fingerprint(CHECK.meta.id, target_key, r.detail) for r in results}
    assert len(prints) == 2

    allowed = CHECK.evaluate(view, CHECK.Params(allowed=["redis", "5432/tcp"]))
    assert [r.status for r in allowed] == [Status.PASS]
    assert len(allowed[0].evidence["accepted"]) == 2
    partly = CHECK.evaluate(view, CHECK.Params(allowed=["PostgreSQL"]))
    assert [r.detail for r in partly] == [f"{redis.port}/tcp"]


def test_host_with_only_ssh_and_http_passes() -> None:
    addr = pick_loopback()
    with listening(addr, 22, 80) as ports:
        view = host_facts(addr, ports)
    results = evaluate(CHECK, view)
    assert [r.status for r in results] == [Status.PASS]
    assert results[0].evidence["open"] == ["22/tcp", "80/tcp"]


def _view(*entries: ServiceEntry) -> FactsView:
    host = Target(kind=TargetKind.HOST, unit="test", address="127.0.0.2")
    facts = HostServices(address="127.0.0.2", services=list(entries))
    return FactsView(host, {"host.services": facts})


def test_positive_identification_overrides_the_port_guess() -> None:
    view = _view(
        ServiceEntry(port=5432, name="ssh", product="OpenSSH", method="probed"),
        ServiceEntry(port=10000, name="http", product="Apache httpd", method="probed"),
    )
    assert [r.status for r in evaluate(CHECK, view)] == [Status.PASS]


def test_products_behind_generic_http_and_odd_ports() -> None:
    view = _view(
        ServiceEntry(port=9201, name="http", product="Elasticsearch REST API", method="probed"),
        ServiceEntry(port=10000, name="http", product="MiniServ", method="probed"),
        ServiceEntry(port=10250, name="http", method="probed"),
        ServiceEntry(port=2375, name="docker", method="probed"),
        ServiceEntry(port=13306, name="mysql", method="probed"),
        ServiceEntry(port=5900, name="", method="table"),
        ServiceEntry(port=11211, protocol="udp", name="memcache", method="table"),
    )
    results = {r.detail: r for r in evaluate(CHECK, view)}
    assert set(results) == {
        "9201/tcp",
        "10000/tcp",
        "10250/tcp",
        "2375/tcp",
        "13306/tcp",
        "5900/tcp",
    }  # memcached over UDP is not in the (tcp) table row
    assert results["9201/tcp"].evidence["service"] == "Elasticsearch"
    assert results["10000/tcp"].evidence["service"] == "Webmin"
    assert results["2375/tcp"].severity is Severity.CRITICAL
    assert results["13306/tcp"].evidence["recognised_by"] == "name"


def test_table_is_a_parameter() -> None:
    view = _view(ServiceEntry(port=6379, name="redis", method="probed"))
    assert evaluate(CHECK, view)[0].status is Status.FAIL
    empty = CHECK.evaluate(view, CHECK.Params(table=[]))
    assert [r.status for r in empty] == [Status.PASS]
