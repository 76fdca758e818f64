"""The plugin contract: built-ins and third-party packs load the same way; broken ones are
reported and skipped."""

from __future__ import annotations

import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from pydantic import BaseModel

from scanner.collectors.hostsvc import HostServices, ServiceEntry
from scanner.model import Status, Target, TargetKind
from scanner.plugins import (
    GROUP_CHECKS,
    Check,
    FactsView,
    Registry,
    _load_group,
    load_registry,
)
from tests.helpers import statuses

ROOT = Path(__file__).resolve().parent.parent


def builtin_entry_points() -> dict[str, dict[str, str]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data["project"]["entry-points"]


def test_every_builtin_plugin_loads() -> None:
    reg = load_registry()
    eps = builtin_entry_points()
    broken = {b.name: b.reason for b in reg.broken if b.name != "example.broken"}
    assert broken == {}
    assert set(eps["assay.checks"]) <= set(reg.checks)
    assert set(eps["assay.collectors"]) <= set(reg.collectors)
    assert set(eps["assay.reporters"]) <= set(reg.reporters)


@pytest.mark.parametrize("check_id", sorted(builtin_entry_points()["assay.checks"]))
def test_builtin_check_metadata(check_id: str) -> None:
    check = load_registry().checks[check_id]
    m = check.meta
    assert m.id == check_id, "entry-point name and meta.id must agree"
    assert m.remediation.text and m.references
    assert isinstance(check.Params(), BaseModel)
    assert type(check).__module__.startswith("checks."), "built-in checks live in checks/"


def _host(n: int) -> FactsView:
    t = Target(kind=TargetKind.HOST, unit="u", address="127.60.0.2")
    services = [ServiceEntry(port=1000 + i) for i in range(n)]
    return FactsView(t, {"host.services": HostServices(address="127.60.0.2", services=services)})


def test_example_third_party_pack_is_installed_and_runs() -> None:
    reg = load_registry()
    assert "example.host.service_count" in reg.checks, (
        "the example pack is not installed: pip install ./tests/example_pack"
    )
    check = reg.checks["example.host.service_count"]
    assert statuses(check, _host(12)) == {Status.FAIL}
    assert statuses(check, _host(3)) == {Status.PASS}
    # its deliberately broken entry point is reported, and did not stop the good one
    assert any(b.name == "example.broken" and "missing_module" in b.reason for b in reg.broken)


def test_broken_plugins_are_reported_and_skipped() -> None:
    reg = Registry()
    eps = [
        EntryPoint("x.missing", "no_such_module:Check", GROUP_CHECKS),
        EntryPoint("x.notacheck", "pathlib:Path", GROUP_CHECKS),
        EntryPoint("example.host.service_count", "assay_example_pack:ServiceCount", GROUP_CHECKS),
    ]
    _load_group(GROUP_CHECKS, reg.add_check, reg, eps)
    assert list(reg.checks) == ["example.host.service_count"]
    reasons = {b.name: b.reason for b in reg.broken}
    assert "ModuleNotFoundError" in reasons["x.missing"]
    assert "not a Check subclass" in reasons["x.notacheck"]


def test_check_without_param_defaults_is_refused() -> None:
    from assay_example_pack import ServiceCount

    class NeedsValue(BaseModel):
        value: int

    class Bad(ServiceCount):
        Params = NeedsValue

    with pytest.raises(TypeError, match="defaults"):
        Registry().add_check(Bad)


def test_check_whose_facts_nobody_collects_is_dropped() -> None:
    from assay_example_pack import ServiceCount

    reg = Registry()
    reg.add_check(ServiceCount)
    reg.validate()  # no collector for host.services registered in this registry
    assert not reg.checks and "host.services" in reg.broken[0].reason


def test_checks_are_pure() -> None:
    """No check module imports socket-level or HTTP libraries: all I/O lives in collectors."""
    for path in (ROOT / "checks").rglob("*.py"):
        text = path.read_text()
        for lib in ("import socket", "import httpx", "import asyncio", "import paramiko"):
            assert lib not in text, f"{path.relative_to(ROOT)} does I/O ({lib})"


def test_check_type_is_the_contract() -> None:
    for check in load_registry().checks.values():
        assert isinstance(check, Check)
