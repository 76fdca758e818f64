"""Declaring credentialed hosts and the local machine in the inventory, with located errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.collectors.hostconfig import GRACE, LOCAL_BUDGET, HostConfigCollector
from scanner.gather.facts import HostConfigFacts
from scanner.inventory import InventoryError, parse_inventory
from scanner.model import Status, Target, TargetKind
from scanner.plugins import CollectContext, Collector, Registry, load_registry
from scanner.remote.access import lookup
from scanner.runner import Runner, _ssh_targets
from scanner.store import Store
from tests.helpers import guard_for, pick_loopback

GOOD = """\
version: 1
units:
  - id: u1
    name: Unit
    local: true
    hosts:
      - address: 10.0.0.5
        ssh:
          user: audit
          port: 2222
          key: {file: ~/.ssh/assay_audit}
          sudo: true
          sudo_password: {env: AUDIT_SUDO}
          known_hosts: /etc/assay/known_hosts
          budget: 30
          jump: {address: 10.0.0.1, user: jump, key: {file: ~/.ssh/jump}}
"""


def test_local_and_ssh_hosts_become_ssh_targets_with_their_access_bound() -> None:
    inv = parse_inventory(GOOD, "unit.yaml")
    targets = _ssh_targets(inv.units[0])
    assert [t.key for t in targets] == ["ssh:10.0.0.5", "ssh:local"]
    assert all(t.kind is TargetKind.SSH for t in targets)
    access = lookup(targets[0])
    assert access and access.ssh and access.ssh.jump and access.ssh.jump.address == "10.0.0.1"
    local = lookup(targets[1])
    assert local is not None and local.ssh is None
    # the target itself carries no credential reference (targets are stored and reported)
    assert "assay_audit" not in targets[0].model_dump_json()


def test_a_unit_with_only_the_local_machine_is_valid() -> None:
    inv = parse_inventory("version: 1\nunits:\n  - {id: me, name: Me, local: true}\n")
    assert inv.units[0].local


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("  - {id: me, name: Me, locl: true}\n", "unit.yaml:3 units[0].locl", "unknown key"),
        ("  - {id: me, name: Me, local: maybe}\n", "unit.yaml:3 units[0].local", "bool"),
        (
            "  - id: me\n    name: Me\n    hosts:\n      - address: 10.0.0.5\n"
            "        ssh: {user: audit}\n",
            "unit.yaml:7 units[0].hosts[0].ssh",
            "give a key or a password reference",
        ),
        (
            "  - id: me\n    name: Me\n    hosts:\n      - address: 10.0.0.5\n"
            "        ssh: {user: audit, key: {file: k}, jump: {address: bastion, user: j}}\n",
            "units[0].hosts[0].ssh.jump.address",
            "not an IP address",
        ),
        (
            "  - id: me\n    name: Me\n    hosts:\n      - address: 10.0.0.5\n"
            "        ssh: {user: audit, key: {file: k}, sudo_password: hunter2}\n",
            "units[0].hosts[0].ssh.sudo_password",
            "literal secret is not allowed",
        ),
    ],
)
def test_typos_and_missing_credentials_are_located(text: str, where: str, message: str) -> None:
    with pytest.raises(InventoryError) as exc:
        parse_inventory("version: 1\nunits:\n" + text, "unit.yaml")
    assert where in str(exc.value)
    assert message in str(exc.value)
    assert "hunter2" not in str(exc.value)


# -- the host's time budget and the runner ------------------------------------------------------


def test_the_host_collector_bounds_each_host_by_its_own_budget() -> None:
    inv = parse_inventory(GOOD, "unit.yaml")
    ssh_target, local_target = _ssh_targets(inv.units[0])
    col = HostConfigCollector()
    ctx = CollectContext(scope=guard_for("10.0.0.5"), probe_timeout=5)
    # 30 s of budget, two logins (jump host) of up to 4 waits of 5 s each, then the grace
    assert col.bound_for(ssh_target, ctx) == 30 + 2 * 4 * 5 + GRACE
    assert col.bound_for(local_target, ctx) == LOCAL_BUDGET + GRACE
    unbound = Target(kind=TargetKind.SSH, unit="u1", address="10.9.9.9")
    assert col.bound_for(unbound, ctx) is None


class _Hung(Collector):
    """Stands in for a host collector whose host never answers, with a hook as given."""

    id = "host.config"
    target_kind = TargetKind.SSH
    facts_model = HostConfigFacts
    timeout = 3600.0

    def __init__(self, hook: Callable[[Target, CollectContext], float | None]) -> None:
        self.hook = hook

    def bound_for(self, target: Target, ctx: CollectContext) -> float | None:
        return self.hook(target, ctx)

    async def collect(self, target: Target, ctx: CollectContext) -> HostConfigFacts:
        await asyncio.Event().wait()  # never set: only the runner's bound ends this
        raise AssertionError("unreachable")


def _explode(target: Target, ctx: CollectContext) -> float | None:
    raise RuntimeError("broken hook")


@pytest.mark.parametrize(
    ("hook", "collector_timeout", "message"),
    [
        # a host's own bound replaces a collector_timeout that is longer ...
        (lambda t, c: 0.3, 3600, "no answer within the target's own time bound of 0.3s"),
        # ... and one that is shorter; either way the runner still stops the host
        (lambda t, c: 0.4, 0.01, "no answer within the target's own time bound of 0.4s"),
        # no bound, an unusable one or a broken hook: the scan's collector_timeout holds
        (lambda t, c: None, 0.2, "no answer within the collector budget of 0.2s"),
        (lambda t, c: float("inf"), 0.2, "no answer within the collector budget of 0.2s"),
        (_explode, 0.2, "no answer within the collector budget of 0.2s"),
    ],
)
def test_the_runner_bounds_a_host_by_its_own_budget(
    hook: Callable[[Target, CollectContext], float | None],
    collector_timeout: float,
    message: str,
    tmp_path: Path,
) -> None:
    addr = pick_loopback()
    text = (
        f"version: 1\nsettings: {{collector_timeout: {collector_timeout}}}\n"
        f"units:\n  - id: u1\n    name: Unit\n    hosts:\n      - address: {addr}\n"
        "        ssh: {user: audit, key: {file: k}, budget: 0.1}\n"
    )
    inv = parse_inventory(text, "unit.yaml")
    full = load_registry()
    reg = Registry(
        collectors={"host.config": _Hung(hook)},
        checks={"host.gather.complete": full.checks["host.gather.complete"]},
    )
    store = Store(f"sqlite:///{tmp_path / 'assay.db'}")
    summary = asyncio.run(Runner(reg, store, inv, inventory_text=text).run())
    (outcome,) = [
        o for o in store.outcomes(summary.scan_id) if o.check_id == "host.gather.complete"
    ]
    assert outcome.status is Status.ERROR and message in outcome.message, outcome.message
