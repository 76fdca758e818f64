"""Redis collector and checks against real redis-server instances, plus scripted faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.network.redis import DangerousCommands, NoAuth
from scanner.collectors.redis import (
    RedisCollector,
    RedisFacts,
    RedisProbeError,
    RespLimits,
    RespProtocolError,
    read_reply,
)
from scanner.model import ServiceInfo, Severity, Status, Target, TargetKind
from scanner.plugins import CollectContext, FactsView
from scanner.scope import OutOfScope
from tests.helpers import collect, evaluate, guard_for, pick_loopback, statuses
from tests.servers_redis import (
    HAVE_REDIS,
    RENAMED_LINES,
    WEAK_LINES,
    RedisServer,
    ScriptedServer,
    auth_lines,
    refused_port,
    reply_once,
    silent,
)

needs_redis = pytest.mark.skipif(not HAVE_REDIS, reason="redis-server is not installed")
COLLECTOR = RedisCollector()


def _target(address: str, port: int, name: str = "redis") -> Target:
    return Target(
        kind=TargetKind.SERVICE,
        unit="test",
        address=address,
        port=port,
        service=ServiceInfo(name=name),
    )


def _facts(view: FactsView) -> RedisFacts:
    return view.get("service.redis", RedisFacts)


@pytest.fixture
def weak(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path, pick_loopback(), WEAK_LINES) as srv:
        yield srv


@pytest.fixture
def authed(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path, pick_loopback(), auth_lines()) as srv:
        yield srv


@pytest.fixture
def renamed(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path, pick_loopback(), RENAMED_LINES) as srv:
        yield srv


# -- real servers ----------------------------------------------------------------------------


@pytest.mark.real
@needs_redis
def test_weak_redis_fails_both_checks(weak: RedisServer) -> None:
    view = collect([COLLECTOR], _target(weak.address, weak.port), timeout=3)
    f = _facts(view)
    assert f.access == "open" and not f.auth_required
    assert f.ping_reply == "PONG"
    assert f.version and f.info["redis_version"] == f.version
    assert f.protected_mode is False
    assert f.config["dir"] == str(weak.data)
    assert {"CONFIG", "FLUSHALL", "SHUTDOWN"} <= set(f.available_dangerous)

    assert statuses(NoAuth(), view) == {Status.FAIL}
    [res] = evaluate(DangerousCommands(), view)
    assert res.status is Status.FAIL
    assert "CONFIG" in res.evidence["available"] and "FLUSHALL" in res.evidence["available"]
    assert "CONFIG" in res.message


@pytest.mark.real
@needs_redis
def test_redis_with_password_passes(authed: RedisServer) -> None:
    view = collect([COLLECTOR], _target(authed.address, authed.port), timeout=3)
    f = _facts(view)
    assert f.access == "auth_required" and f.ping_reply.startswith("-NOAUTH")
    assert f.commands == {} and f.password_guesses == 0  # nothing probed behind the login
    assert statuses(NoAuth(), view) == {Status.PASS}
    assert statuses(DangerousCommands(), view) == {Status.NOT_APPLICABLE}


@pytest.mark.real
@needs_redis
def test_renamed_commands_pass_but_no_auth_still_fails(renamed: RedisServer) -> None:
    view = collect([COLLECTOR], _target(renamed.address, renamed.port), timeout=3)
    f = _facts(view)
    assert f.access == "open"
    assert f.available_dangerous == []
    assert f.commands["CONFIG"] == "absent" and f.commands["FLUSHALL"] == "absent"
    assert "unknown command" in f.config_error.lower()
    assert f.config == {} and f.protected_mode is None
    assert statuses(DangerousCommands(), view) == {Status.PASS}
    assert statuses(NoAuth(), view) == {Status.FAIL}


@pytest.mark.real
@needs_redis
def test_acl_restricted_default_user_is_not_called_safe(tmp_path: Path) -> None:
    """-@dangerous for the default user: CONFIG is seen denied, the rest cannot be verified."""
    lines = ("protected-mode no", "user default on nopass ~* &* +@all -@dangerous")
    with RedisServer(tmp_path, pick_loopback(), lines) as srv:
        view = collect([COLLECTOR], _target(srv.address, srv.port), timeout=3)
    f = _facts(view)
    assert f.commands["CONFIG"] == "denied"
    assert f.available_dangerous == []
    assert any("DRYRUN" in e for e in f.errors)
    assert statuses(DangerousCommands(), view) == {Status.NOT_ASSESSED}


@pytest.mark.real
@needs_redis
def test_active_mode_finds_default_password_and_logs_each_attempt(tmp_path: Path) -> None:
    with RedisServer(tmp_path, pick_loopback(), ("requirepass foobared",)) as srv:
        target = _target(srv.address, srv.port)
        ctx = CollectContext(scope=guard_for(srv.address), active=True, probe_timeout=3)
        f = asyncio.run(COLLECTOR.collect(target, ctx))
    assert f.default_password_accepted and f.access == "default_password"
    assert f.password_guesses == 3 and len(ctx.active_log) == 3
    assert all("AUTH attempt" in line for line in ctx.active_log)
    assert not any("foobared" in line for line in ctx.active_log)
    assert "foobared" not in f.model_dump_json()
    [res] = evaluate(NoAuth(), FactsView(target, {"service.redis": f}))
    assert res.status is Status.FAIL and "default password" in res.message


@pytest.mark.real
@needs_redis
def test_passive_mode_never_guesses(tmp_path: Path) -> None:
    with RedisServer(tmp_path, pick_loopback(), ("requirepass foobared",)) as srv:
        target = _target(srv.address, srv.port)
        ctx = CollectContext(scope=guard_for(srv.address), active=False, probe_timeout=3)
        f = asyncio.run(COLLECTOR.collect(target, ctx))
    assert f.password_guesses == 0 and ctx.active_log == []
    assert f.access == "auth_required"


# -- applies / scope -------------------------------------------------------------------------


def test_applies_by_name_then_by_port() -> None:
    col = RedisCollector()
    assert col.applies(_target("127.0.0.2", 7000, "redis"))
    assert not col.applies(_target("127.0.0.2", 6379, "http"))
    assert col.applies(_target("127.0.0.2", 6379, ""))
    assert not col.applies(_target("127.0.0.2", 7000, ""))
    tls = Target(
        kind=TargetKind.SERVICE,
        unit="t",
        address="127.0.0.2",
        port=6380,
        service=ServiceInfo(name="redis", tunnel="ssl"),
    )
    assert not col.applies(tls)


def test_out_of_scope_address_is_refused_before_connecting() -> None:
    ctx = CollectContext(scope=guard_for("127.0.0.2"), probe_timeout=1)
    with pytest.raises(OutOfScope):
        asyncio.run(COLLECTOR.collect(_target("127.0.0.3", 6379), ctx))


# -- bad input -------------------------------------------------------------------------------


def _run(address: str, port: int, timeout: float = 1.0) -> RedisFacts:
    ctx = CollectContext(scope=guard_for(address), probe_timeout=timeout)
    return asyncio.run(COLLECTOR.collect(_target(address, port), ctx))


def test_silent_server_raises_clear_timeout() -> None:
    addr = pick_loopback()
    with ScriptedServer(addr, silent) as srv:
        start = time.monotonic()
        with pytest.raises(RedisProbeError, match=rf"{addr}:{srv.port}.*no reply to PING"):
            _run(addr, srv.port, timeout=0.5)
        assert time.monotonic() - start < 5


def test_connection_refused_is_a_clear_error() -> None:
    addr = pick_loopback()
    port = refused_port(addr)
    with pytest.raises(RedisProbeError, match=rf"{addr}:{port}: cannot connect"):
        _run(addr, port)


def test_huge_bulk_length_is_refused_without_waiting_for_it() -> None:
    addr = pick_loopback()
    with ScriptedServer(addr, reply_once(b"$1073741824\r\nabc")) as srv:
        start = time.monotonic()
        with pytest.raises(RespProtocolError, match="1073741824 bytes refused"):
            _run(addr, srv.port, timeout=3)
        # refused on the header: had it tried to read 1 GB it would have hit the 3 s timeout
        assert time.monotonic() - start < 2


def test_garbage_reply_is_a_protocol_error() -> None:
    addr = pick_loopback()
    with (
        ScriptedServer(addr, reply_once(b"HTTP/1.1 400 Bad Request\r\n\r\n")) as srv,
        pytest.raises(RespProtocolError, match="not a RESP reply"),
    ):
        _run(addr, srv.port)


def test_protected_mode_denied_reply() -> None:
    """A real server only says DENIED to non-loopback clients, so this one is scripted."""
    addr = pick_loopback()
    denied = b"-DENIED Redis is running in protected mode because protected mode is enabled\r\n"
    with ScriptedServer(addr, reply_once(denied)) as srv:
        f = _run(addr, srv.port)
        target = _target(addr, srv.port)
    assert f.access == "protected_mode" and f.auth_required
    view = FactsView(target, {"service.redis": f})
    [res] = evaluate(NoAuth(), view)
    assert res.status is Status.PASS and "protected mode" in res.message
    assert statuses(DangerousCommands(), view) == {Status.NOT_APPLICABLE}


def test_unexpected_ping_reply_becomes_error_outcome() -> None:
    addr = pick_loopback()
    with ScriptedServer(addr, reply_once(b":42\r\n")) as srv:
        f = _run(addr, srv.port)
        view = FactsView(_target(addr, srv.port), {"service.redis": f})
    assert f.access == "unknown" and f.errors
    assert statuses(NoAuth(), view) == {Status.ERROR}
    assert statuses(DangerousCommands(), view) == {Status.ERROR}


async def _parse(data: bytes, limits: RespLimits | None = None) -> object:
    limits = limits or RespLimits()
    reader = asyncio.StreamReader(limit=limits.max_line)
    reader.feed_data(data)
    reader.feed_eof()
    return await read_reply(reader, limits)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"*5000\r\n", "array of 5000 elements refused"),
        (b"*1\r\n" * 20, "nested deeper"),
        (b"$5\r\nabc", "closed inside a bulk"),
        (b"$3\r\nabcXY", "not terminated"),
        (b":12x\r\n", "invalid integer"),
        (b"+" + b"a" * 70_000, "longer than"),
        (b"*3000\r\n" + b"*3000\r\n" + b":1\r\n" * 10, "elements in total"),
    ],
)
def test_reader_limits(data: bytes, match: str) -> None:
    with pytest.raises(RespProtocolError, match=match):
        asyncio.run(_parse(data, RespLimits(max_array=4096, max_elements=5000)))


def test_reader_parses_nested_values() -> None:
    value = asyncio.run(_parse(b"*3\r\n$3\r\nabc\r\n*-1\r\n*2\r\n:7\r\n-ERR no\r\n"))
    assert isinstance(value, list) and value[0] == b"abc" and value[1] is None
    assert value[2][0] == 7 and value[2][1].code == "ERR"  # type: ignore[index]


def test_dangerous_commands_param_narrows_the_list() -> None:
    f = RedisFacts(
        address="127.0.0.2",
        port=6379,
        access="open",
        auth_required=False,
        ping_reply="PONG",
        commands={"CONFIG": "absent", "KEYS": "available"},
        available_dangerous=["KEYS"],
    )
    view = FactsView(_target("127.0.0.2", 6379), {"service.redis": f})
    check = DangerousCommands()
    failing = check.evaluate(view, check.Params())
    assert failing.status is Status.FAIL and failing.evidence["available"] == ["KEYS"]
    assert check.evaluate(view, check.Params(commands=["config"])).status is Status.PASS
    unknown = check.evaluate(view, check.Params(commands=["config", "eval"]))
    assert unknown.status is Status.NOT_ASSESSED and "EVAL" in unknown.message
    assert NoAuth.meta.severity is Severity.CRITICAL
