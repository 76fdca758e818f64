"""The store keeps scans, facts and outcomes; each finished target is durable on its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.model import Outcome, Severity, Status, Target, TargetKind, fingerprint
from scanner.store import Store, StoreError


def _outcome(scan_id: str, target: Target, status: Status) -> Outcome:
    return Outcome(
        scan_id=scan_id,
        unit=target.unit,
        check_id="net.telnet.present",
        title="Telnet is not offered",
        status=status,
        severity=Severity.HIGH,
        target=target,
        message="telnet answered",
        fingerprint=fingerprint("net.telnet.present", target.key),
    )


def test_roundtrip_and_prefix_lookup(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    store = Store(url)
    store.create_scan(
        "20261202T100000Z-abcdef",
        inventory_name="unit.yaml",
        inventory_sha256="0" * 64,
        inventory_text="units: []",
        units=["u1"],
        options={"active": False},
        tool_version="0.1.0",
    )
    t = Target(kind=TargetKind.SERVICE, unit="u1", address="127.50.0.2", port=23)
    store.save_target(
        "20261202T100000Z-abcdef",
        t,
        state="done",
        errors=[],
        target_facts={"service.banner": {"banner": "login:"}},
        results=[_outcome("20261202T100000Z-abcdef", t, Status.FAIL)],
    )
    store.finish_scan("20261202T100000Z-abcdef", "complete", active_probes=["probe one"])

    again = Store(url)  # a second process opening the same file; migrations are idempotent
    rec = again.scan("20261202T100000Z-ab")
    assert rec.state == "complete" and rec.active_probes == ["probe one"]
    assert again.finished_keys(rec.id) == {t.key}
    [trec] = again.targets(rec.id)
    assert trec.facts == {"service.banner": {"banner": "login:"}}
    [o] = again.outcomes(rec.id)
    assert o.status is Status.FAIL and o.target == t
    with pytest.raises(KeyError, match="not in the store"):
        again.scan("1999")


def test_same_target_cannot_be_stored_twice(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'b.db'}")
    store.create_scan(
        "s1",
        inventory_name="",
        inventory_sha256="",
        inventory_text="",
        units=["u1"],
        options={},
        tool_version="0",
    )
    t = Target(kind=TargetKind.HOST, unit="u1", address="127.50.0.3")
    store.save_target("s1", t, state="done", errors=[], target_facts={}, results=[])
    with pytest.raises(StoreError):
        store.save_target("s1", t, state="done", errors=[], target_facts={}, results=[])
    assert len(store.targets("s1")) == 1  # the failed write left nothing half-done


def test_unopenable_database_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot"):
        Store(f"sqlite:///{blocker / 'sub' / 'x.db'}")
    with pytest.raises(StoreError, match="cannot open database"):
        Store("nosuchdialect://user:pw@127.0.0.1/db")


def test_password_is_hidden_in_errors() -> None:
    with pytest.raises(StoreError) as exc:
        Store("nosuchdialect://user:hunter2@127.0.0.1/db")
    assert "hunter2" not in str(exc.value)
