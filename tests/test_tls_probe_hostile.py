"""Hostile and broken TLS servers: bounded time and memory, an error naming the reason.

Each server here is scripted because no real TLS server misbehaves this way on purpose: a
megabyte of garbage, a cleartext reply, a truncated or malformed ServerHello, a record or
handshake message over the limits, an immediate close, silence. A collector failure is
raised as `TlsProbeError` (the runner records it as the collector's `error` for that target
and goes on with the others); a fault that starts only after the first answers keeps what was
gathered and lists the fault in `errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import struct
import threading
from pathlib import Path

import pytest

from checks.tls.ciphers import (
    CbcTls10,
    NoForwardSecrecy,
    NoServerOrder,
    NullAnonExport,
    Rc4TripleDes,
    WeakDh,
)
from checks.tls.profile import TlsProfile
from checks.tls.protocol import LegacyProtocols, NoTls13
from scanner.collectors.tls import TlsCollector, TlsFacts
from scanner.inventory import parse_inventory
from scanner.model import ServiceInfo, Status, Target, TargetKind
from scanner.plugins import CollectContext, FactsView, Registry
from scanner.runner import Runner, ScanOptions
from scanner.store import Store
from scanner.tlsprobe.endpoint import TlsProbeError
from tests.helpers import collect, evaluate, guard_for, pick_loopback
from tests.tls_scripted import (
    Handler,
    ScriptedTls,
    handshake,
    legacy_server,
    record,
    server_hello,
)

COLLECTOR = TlsCollector()


def target(srv: ScriptedTls) -> Target:
    return Target(
        kind=TargetKind.SERVICE,
        unit="test",
        address=srv.address,
        port=srv.port,
        service=ServiceInfo(name="https"),
    )


def run(handler: Handler, timeout: float = 1.0) -> TlsFacts:
    with ScriptedTls(handler) as srv:
        ctx = CollectContext(scope=guard_for(srv.address), probe_timeout=timeout)
        return asyncio.run(COLLECTOR.collect(target(srv), ctx))


def fails(handler: Handler, match: str, timeout: float = 1.0) -> None:
    with pytest.raises(TlsProbeError, match=match) as exc:
        run(handler, timeout)
    assert "tls 127." in str(exc.value)  # the endpoint is named


def const(reply: bytes | None) -> Handler:
    return lambda _data: reply


def test_megabyte_of_garbage() -> None:
    fails(const(b"\x99" * 1_000_000), "not a TLS record")


def test_cleartext_reply() -> None:
    fails(const(b"HTTP/1.1 400 Bad Request\r\n\r\n"), "cleartext, not TLS")


def test_truncated_server_hello() -> None:
    hello = record(22, server_hello(0x0303, 0x002F))
    fails(const(hello[:20]), "closed inside a record")


def test_malformed_server_hello() -> None:
    body = bytearray(server_hello(0x0303, 0x002F, b"\x00\x10\x00\x05\x00\x03\x02h2"))
    body[-11:-9] = b"\x00\x40"  # extension block longer than the message
    fails(const(record(22, bytes(body))), "malformed answer: .*truncated")


def test_oversized_record() -> None:
    fails(const(struct.pack(">BHH", 22, 0x0303, 0xFFFF)), "record of 65535 bytes refused")


def test_oversized_handshake_message() -> None:
    msg = b"\x02\xff\xff\xff" + b"\x00" * 1000
    fails(const(record(22, msg)), "handshake message 2 of 16777215 bytes refused")


def test_application_data_before_hello() -> None:
    fails(const(record(23, b"\x00" * 32)), "record of type 23 before the ServerHello")


def test_silent_server_is_bounded() -> None:
    fails(const(None), r"no answer to a ClientHello within 0.5s", timeout=0.5)


def test_server_that_closes_at_once_is_an_error_outcome() -> None:
    f = run(const(b""))
    assert f.supported == [] and "refused every protocol" in f.errors[0]
    view = FactsView(
        Target(kind=TargetKind.SERVICE, unit="t", address=f.address), {"service.tls": f}
    )
    [res] = evaluate(LegacyProtocols(), view)
    assert res.status is Status.ERROR and "could not be assessed" in res.message


def test_closed_mid_handshake() -> None:
    # a ServerHello and the start of a Certificate, then the connection drops mid-record
    flight = record(22, server_hello(0x0301, 0x002F) + handshake(11, b"\x00\x00\x00"), 0x0301)
    fails(const(flight[:-2]), "closed inside a record")


def test_fault_after_first_answers_keeps_what_was_gathered() -> None:
    lock = threading.Lock()
    seen = {"n": 0}
    good = legacy_server((0x002F, 0x0035))

    def handler(data: bytes) -> bytes | None:
        with lock:
            seen["n"] += 1
            n = seen["n"]
        return good(data) if n <= 5 else b"\x99" * 64

    with ScriptedTls(handler) as srv:
        view = collect([COLLECTOR], target(srv), timeout=1)
    f = view.get("service.tls", TlsFacts)
    assert "TLSv1.0" in f.supported and "TLSv1.2" in f.supported
    assert any("not a TLS record" in e for e in f.errors)
    assert {r.status for r in evaluate(LegacyProtocols(), view)} == {Status.FAIL}


def test_probe_budget_is_enforced() -> None:
    col = TlsCollector()
    col.max_probes = 7
    with ScriptedTls(legacy_server((0x002F, 0x0035, 0x000A, 0x0005))) as srv:
        ctx = CollectContext(scope=guard_for(srv.address), probe_timeout=1)
        f = asyncio.run(col.collect(target(srv), ctx))
        assert srv.connections <= 7
    assert f.probes == 7 and any("budget of 7" in e for e in f.errors)


@pytest.mark.skipif(os.geteuid() != 0, reason="binds port 443, which needs root")
def test_runner_keeps_scanning_past_broken_tls_servers(tmp_path: Path) -> None:
    """Through the real runner: hostile endpoints give `error` outcomes, a working one is judged."""
    handlers: dict[str, Handler] = {
        "garbage": const(b"\x99" * 100_000),
        "silent": const(None),
        "legacy": legacy_server((0x0005, 0x002F)),
    }
    addrs = {kind: pick_loopback() for kind in handlers}
    hosts = [{"address": a, "ports": "443"} for a in addrs.values()]
    inventory = {
        "version": 1,
        "settings": {"probe_timeout": 1},
        "units": [{"id": "t", "name": "TLS faults", "hosts": hosts}],
    }
    text = json.dumps(inventory)
    reg = Registry()
    reg.add_collector(TlsCollector)
    checks = (LegacyProtocols, NoTls13, NullAnonExport, Rc4TripleDes, NoForwardSecrecy, WeakDh,
              CbcTls10, NoServerOrder, TlsProfile)  # fmt: skip
    for check in checks:
        reg.add_check(check)
    store = Store(f"sqlite:///{tmp_path / 'scan.db'}")
    runner = Runner(
        reg, store, parse_inventory(text), inventory_text=text,
        options=ScanOptions(nmap_path=str(tmp_path / "no-nmap")),
    )  # fmt: skip
    with contextlib.ExitStack() as stack:
        for kind, handler in handlers.items():
            stack.enter_context(ScriptedTls(handler, addrs[kind], port=443))
        summary = asyncio.run(runner.run())
    outcomes = [o for o in store.outcomes(summary.scan_id) if o.check_id.startswith("tls.")]
    by_addr: dict[str, set[Status]] = {}
    for o in outcomes:
        by_addr.setdefault(o.target.address or "", set()).add(o.status)
    assert by_addr[addrs["garbage"]] == {Status.ERROR}
    assert by_addr[addrs["silent"]] == {Status.ERROR}
    assert Status.FAIL in by_addr[addrs["legacy"]]
    silent = [o for o in outcomes if o.target.address == addrs["silent"]]
    assert all("no answer to a ClientHello" in o.message for o in silent)
