"""Declaring credentialed hosts and the local machine in the inventory, with located errors."""

from __future__ import annotations

import pytest

from scanner.inventory import InventoryError, parse_inventory
from scanner.model import TargetKind
from scanner.remote.access import lookup
from scanner.runner import _ssh_targets

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
