"""End to end: inventory -> discovery -> collectors -> checks -> store -> reports.

The demo unit (weak and good services on two loopback addresses) is scanned with real nmap and
with the built-in fallback; failures must appear on the weak host and not on the good one, the
assessment must validate against its published schema, and an interrupted scan must resume
without repeating finished targets.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from reports.build import build_assessment
from scanner.demo_services import DemoUnit
from scanner.inventory import parse_inventory
from scanner.model import Status, TargetKind
from scanner.plugins import load_registry
from scanner.runner import Runner, ScanOptions
from scanner.store import Store

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "reports" / "schema" / "assessment.schema.json").read_text())


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoUnit]:
    with DemoUnit(workdir=tmp_path_factory.mktemp("demo")) as unit:
        yield unit


def _scan(
    demo: DemoUnit, db: Path, nmap_path: str | None, active: bool = False
) -> tuple[Store, str]:
    text = demo.inventory_yaml()
    inv = parse_inventory(text, "demo.yaml")
    store = Store(f"sqlite:///{db}")
    runner = Runner(
        load_registry(),
        store,
        inv,
        inventory_text=text,
        inventory_name="demo.yaml",
        options=ScanOptions(active=active, nmap_path=nmap_path),
    )
    summary = asyncio.run(runner.run())
    assert summary.state == "complete"
    return store, summary.scan_id


def _failures(store: Store, scan_id: str) -> dict[str, set[str]]:
    """address -> check ids that failed on it (service or host)."""
    out: dict[str, set[str]] = {}
    for o in store.outcomes(scan_id):
        if o.status is Status.FAIL:
            out.setdefault(o.target.address or "", set()).add(o.check_id)
    return out


def _assert_weak_fails_good_passes(demo: DemoUnit, store: Store, scan_id: str) -> None:
    fails = _failures(store, scan_id)
    expected_weak = {c for s in demo.services if s.weak for c in s.expect}
    expected_weak.discard("net.ftp.anonymous_write")  # needs --active
    assert expected_weak <= fails.get(demo.weak_address, set())
    expected_good = {c for s in demo.services if not s.weak for c in s.expect}
    # the good host's Redis requires a password but is still reachable: exposure is reported
    expected_good.add("net.exposed.db_admin_ports")
    assert fails.get(demo.good_address, set()) <= expected_good
    for absent in ("net.ftp.anonymous_login", "net.redis.no_auth", "net.http.cleartext"):
        assert absent not in fails.get(demo.good_address, set())
    # the demo's document stores: the weak share holds what must never lie on a networked
    # store; the good one only harmless documents that mention "mật khẩu" and "mật độ"
    by_store: dict[str, dict[str, set[str]]] = {}
    for o in store.outcomes(scan_id):
        if o.target.kind.value == "store":
            by_store.setdefault(o.target.names[0], {}).setdefault(o.status.value, set()).add(
                o.check_id
            )
    for st in demo.stores:
        got = by_store[st.id]
        if st.weak:
            assert set(st.expect) <= got.get("fail", set()), got
        else:
            assert not got.get("fail"), got
            assert {"data.marking.state_secret", "data.pii.exposed"} <= got["pass"]
    # the good host's checks actually ran and passed (not merely absent)
    passed_good = {
        o.check_id
        for o in store.outcomes(scan_id)
        if o.target.address == demo.good_address and o.status is Status.PASS
    }
    assert {"net.ftp.anonymous_login", "net.redis.no_auth", "net.http.cleartext"} <= passed_good


@pytest.mark.real
@pytest.mark.skipif(shutil.which("nmap") is None, reason="nmap is not installed")
def test_demo_unit_with_real_nmap(demo: DemoUnit, tmp_path: Path) -> None:
    store, scan_id = _scan(demo, tmp_path / "a.db", None)
    _assert_weak_fails_good_passes(demo, store, scan_id)
    doc = build_assessment(store, scan_id)
    jsonschema.validate(json.loads(doc.to_json()), SCHEMA)
    [unit] = doc.units
    assert unit.discovery and unit.discovery.engine.startswith("nmap")
    assert not unit.discovery.fallback
    assert unit.pass_rate is not None and 0 < unit.pass_rate < 1
    # facts are stored with the scan, so checks can be judged again without the network
    recs = store.targets(scan_id)
    assert any(r.facts for r in recs if r.target.kind is TargetKind.SERVICE)
    # nmap sees TLS on the weak HTTPS port but names it from its port table
    # ("powerclientcsf" on 2443): Assay asks the service itself and finds HTTP inside
    tls_services = {
        (r.target.address, r.target.service.name)
        for r in recs
        if r.target.kind is TargetKind.SERVICE and r.target.service and r.target.service.tunnel
    }
    assert tls_services == {(demo.weak_address, "https"), (demo.good_address, "https")}


def test_demo_unit_without_nmap_uses_fallback(demo: DemoUnit, tmp_path: Path) -> None:
    store, scan_id = _scan(demo, tmp_path / "b.db", str(tmp_path / "no-such-nmap"))
    _assert_weak_fails_good_passes(demo, store, scan_id)
    doc = build_assessment(store, scan_id)
    [unit] = doc.units
    assert unit.discovery and unit.discovery.fallback and unit.discovery.engine == "connect"
    assert any("nmap" in w for w in unit.discovery.warnings)


def test_active_write_probe_is_recorded_and_cleaned(demo: DemoUnit, tmp_path: Path) -> None:
    store, scan_id = _scan(demo, tmp_path / "c.db", str(tmp_path / "no-such-nmap"), active=True)
    fails = _failures(store, scan_id)
    assert "net.ftp.anonymous_write" in fails.get(demo.weak_address, set())
    rec = store.scan(scan_id)
    assert rec.active_probes, "every active probe is recorded"


def test_interrupted_scan_resumes_without_repeating(demo: DemoUnit, tmp_path: Path) -> None:
    text = demo.inventory_yaml()
    inv = parse_inventory(text, "demo.yaml")
    store = Store(f"sqlite:///{tmp_path / 'd.db'}")
    opts = ScanOptions(nmap_path=str(tmp_path / "no-such-nmap"))
    runner = Runner(load_registry(), store, inv, inventory_text=text, options=opts)

    async def interrupted() -> str:
        task = asyncio.create_task(runner.run("resume-test"))
        for _ in range(600):  # bounded: 60 s
            await asyncio.sleep(0.1)
            if store.finished_keys("resume-test") if _exists(store) else False:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return "resume-test"

    scan_id = asyncio.run(interrupted())
    before = store.finished_keys(scan_id)
    assert before and store.scan(scan_id).state == "interrupted"
    first_ids = {r.target.key: r.id for r in store.targets(scan_id)}

    runner2, sid = Runner.for_resume(load_registry(), store, scan_id, nmap_path=opts.nmap_path)
    summary = asyncio.run(runner2.resume(sid))
    assert summary.state == "complete"
    after = {r.target.key: r.id for r in store.targets(scan_id)}
    assert set(after) > before
    assert all(after[k] == first_ids[k] for k in first_ids), "finished targets were not redone"
    _assert_weak_fails_good_passes(demo, store, scan_id)


def _exists(store: Store) -> bool:
    try:
        store.scan("resume-test")
        return True
    except KeyError:
        return False
