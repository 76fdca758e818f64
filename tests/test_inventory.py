"""Inventory validation: every mistake is one located line naming file, line and field."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from scanner.credentials import CredentialError, resolve
from scanner.inventory import CredentialRef, InventoryError, load_inventory, parse_inventory

GOOD = """\
version: 1
settings:
  probe_timeout: 3
units:
  - id: so-tttt
    name: "Sở Thông tin và Truyền thông"
    contact: {name: "Nguyễn Văn A", email: it@so-tttt.example}
    networks:
      - cidr: 127.20.0.0/29
        exclude: [127.20.0.7]
        ports: "21-23,80,6379"
    hosts:
      - address: 127.21.0.5
        names: [files.so-tttt.example]
        tags: [fileserver]
        ssh: {user: audit, key: {file: ~/.ssh/assay_audit}}
    web:
      - url: http://files.so-tttt.example:8080/
    stores:
      - id: shared
        kind: local
        location: /srv/shared
"""


def error_of(text: str, name: str = "unit.yaml") -> str:
    with pytest.raises(InventoryError) as exc:
        parse_inventory(textwrap.dedent(text), name)
    return str(exc.value)


def test_good_inventory_parses_and_builds_scope() -> None:
    inv = parse_inventory(GOOD, "unit.yaml")
    unit = inv.unit("so-tttt")
    assert unit.networks[0].exclude == ["127.20.0.7/32"]
    assert unit.hosts[0].ssh and unit.hosts[0].ssh.key
    guard = inv.scope()
    assert guard.unit_of("127.20.0.3") == "so-tttt"
    assert guard.unit_of("127.20.0.7") is None  # excluded
    assert guard.resolve_url_host(unit.web[0].url) == "127.21.0.5"


def test_bad_network_names_file_line_and_field() -> None:
    msg = error_of(
        """\
        units:
          - id: u1
            name: Unit one
            networks:
              - cidr: 10.0.0.0/24
              - cidr: 10.0.0.300/24
        """
    )
    assert msg == "unit.yaml:6 units[0].networks[1].cidr: '10.0.0.300/24' is not a valid network"


def test_unknown_key_is_a_typo() -> None:
    msg = error_of(
        """\
        units:
          - id: u1
            name: Unit one
            hosts:
              - address: 127.0.0.9
                tgas: [web]
        """
    )
    assert msg.startswith("unit.yaml:6 units[0].hosts[0].tgas: unknown key")


def test_wrong_type_is_named() -> None:
    msg = error_of(
        """\
        settings:
          concurrency: many
        units:
          - {id: u1, name: U, hosts: [{address: 127.0.0.9}]}
        """
    )
    assert msg.startswith("unit.yaml:2 settings.concurrency: expected an integer, got 'many'")


def test_literal_password_is_refused_without_echoing_it() -> None:
    msg = error_of(
        """\
        units:
          - id: u1
            name: Unit one
            hosts:
              - address: 127.0.0.9
                ssh: {user: root, password: hunter2}
        """
    )
    assert "unit.yaml:6 units[0].hosts[0].ssh.password: a literal secret is not allowed" in msg
    assert "hunter2" not in msg


def test_password_in_url_is_refused() -> None:
    msg = error_of(
        """\
        units:
          - id: u1
            name: Unit one
            hosts: [{address: 127.0.0.9}]
            web: [{url: "http://admin:s3cret@127.0.0.9/"}]
        """
    )
    assert "units[0].web[0].url" in msg and "s3cret" not in msg


def test_overlapping_networks_are_refused() -> None:
    msg = error_of(
        """\
        units:
          - id: u1
            name: One
            networks: [{cidr: 127.30.0.0/24}]
          - id: u2
            name: Two
            networks: [{cidr: 127.30.0.128/25}]
        """
    )
    assert msg == (
        "unit.yaml:7 units[1].networks[0].cidr: 127.30.0.128/25 overlaps 127.30.0.0/24 "
        "declared at units[0].networks[0]"
    )


def test_exclusion_that_empties_a_network_is_refused() -> None:
    msg = error_of(
        """\
        units:
          - id: u1
            name: One
            networks: [{cidr: 127.30.0.0/30, exclude: [127.30.0.0/29]}]
        """
    )
    assert "removes every address of 127.30.0.0/30" in msg


def test_unit_with_nothing_to_assess() -> None:
    msg = error_of("units:\n  - {id: u1, name: Empty}\n")
    assert "unit.yaml:2 units[0]: unit declares nothing to assess" in msg


def test_empty_units_and_not_a_mapping() -> None:
    assert "units" in error_of("units: []\n")
    assert "must be a mapping" in error_of("- just a list\n")


def test_bad_yaml_has_a_line() -> None:
    msg = error_of("units:\n  - id: u1\n    name: [unclosed\n")
    assert msg.startswith("unit.yaml:") and "not valid YAML" in msg


def test_web_url_host_must_be_in_scope_without_dns() -> None:
    msg = error_of(
        """\
        units:
          - id: u1
            name: One
            hosts: [{address: 127.0.0.9}]
            web: [{url: "http://portal.example.org/"}]
        """
    )
    assert "units[0].web[0].url" in msg and "names are never resolved" in msg


def test_bad_port_list() -> None:
    msg = error_of(
        """\
        units:
          - id: u1
            name: One
            hosts: [{address: 127.0.0.9, ports: "22,70000"}]
        """
    )
    assert "units[0].hosts[0].ports" in msg and "outside 1-65535" in msg


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(InventoryError, match="file not found"):
        load_inventory(missing)
    with pytest.raises(InventoryError, match="is a directory"):
        load_inventory(tmp_path)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InventoryError, match="not UTF-8"):
        load_inventory(binary)
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.yaml"
        locked.write_text(GOOD)
        locked.chmod(0)
        with pytest.raises(InventoryError, match="permission denied"):
            load_inventory(locked)


def test_credential_references_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSAY_TEST_SECRET", "from-env")
    assert resolve(CredentialRef(env="ASSAY_TEST_SECRET")) == "from-env"
    f = tmp_path / "secret"
    f.write_text("from-file\n")
    assert resolve(CredentialRef(file=f)) == "from-file"
    monkeypatch.delenv("ASSAY_TEST_SECRET")
    with pytest.raises(CredentialError, match="ASSAY_TEST_SECRET is not set"):
        resolve(CredentialRef(env="ASSAY_TEST_SECRET"), "ssh key")
    with pytest.raises(CredentialError, match="cannot read"):
        resolve(CredentialRef(file=tmp_path / "missing"))
