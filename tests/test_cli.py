"""The command line as a user runs it: a separate process, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import free_port, pick_loopback


def assay(*args: str, db: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ASSAY_DB=f"sqlite:///{db}", COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "scanner.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def test_bad_inventory_is_one_line_and_exit_1(tmp_path: Path) -> None:
    inv = tmp_path / "unit.yaml"
    inv.write_text(
        "units:\n  - id: u1\n    name: One\n    networks:\n      - cidr: 10.0.0.300/24\n"
    )
    r = assay("scan", str(inv), db=tmp_path / "a.db")
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines == [
        f"assay: error: {inv}:5 units[0].networks[0].cidr: '10.0.0.300/24' is not a valid network"
    ]


def test_unknown_unit_and_unknown_scan(tmp_path: Path) -> None:
    inv = tmp_path / "unit.yaml"
    inv.write_text("units:\n  - {id: u1, name: One, hosts: [{address: 127.0.0.9}]}\n")
    r = assay("scan", str(inv), "--unit", "u2", db=tmp_path / "a.db")
    assert r.returncode == 1 and "unit 'u2' is not in the inventory (known: u1)" in r.stderr
    r = assay("report", "20990101", db=tmp_path / "a.db")
    assert r.returncode == 1 and "is not in the store" in r.stderr


def test_checks_list_and_show(tmp_path: Path) -> None:
    r = assay("checks", "list", "--json", db=tmp_path / "a.db")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    ids = {c["id"] for c in data["checks"]}
    assert {"net.telnet.present", "net.redis.no_auth", "net.ftp.anonymous_login"} <= ids
    r = assay("checks", "show", "net.redis.no_auth", db=tmp_path / "a.db")
    assert r.returncode == 0 and "requirepass" in r.stdout
    r = assay("checks", "show", "net.redis.nope", db=tmp_path / "a.db")
    assert r.returncode == 1 and "did you mean" in r.stderr


def test_scan_of_a_closed_host_is_clean_and_report_regenerates(tmp_path: Path) -> None:
    addr = pick_loopback()
    port = free_port(addr)  # nothing listens there
    inv = tmp_path / "unit.yaml"
    inv.write_text(
        f"units:\n  - id: u1\n    name: One\n    hosts:\n      - address: {addr}\n"
        f'        ports: "{port}"\n'
    )
    out = tmp_path / "out"
    r = assay(
        "scan", str(inv), "--out", str(out), "--nmap", "/nonexistent/nmap", db=tmp_path / "b.db"
    )
    # nmap missing is a warning (exit 2); the host-level checks pass on a host with no services
    assert r.returncode == 2, r.stdout + r.stderr
    assert "nmap" in r.stderr
    assert (out / "assessment.html").is_file() and (out / "assessment.json").is_file()
    scan_id = json.loads((out / "assessment.json").read_text())["scan_id"]
    again = tmp_path / "again"
    r = assay(
        "report", scan_id[:12], "--format", "md,json", "--out", str(again), db=tmp_path / "b.db"
    )
    assert r.returncode == 0, r.stderr
    assert (again / "assessment.md").is_file()
    r = assay("report", scan_id, "--format", "pdf", db=tmp_path / "b.db")
    assert r.returncode == 1 and "unknown report format pdf" in r.stderr


def test_out_of_scope_web_url_is_refused_before_scanning(tmp_path: Path) -> None:
    inv = tmp_path / "unit.yaml"
    inv.write_text(
        "units:\n  - id: u1\n    name: One\n    hosts: [{address: 127.0.0.9}]\n"
        '    web: [{url: "http://127.0.0.10/"}]\n'
    )
    r = assay("scan", str(inv), db=tmp_path / "c.db")
    assert r.returncode == 1
    assert "units[0].web[0].url" in r.stderr and "outside the inventory" in r.stderr


@pytest.mark.timeout(400)
def test_demo_writes_a_report(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    r = assay("demo", "--out", str(out), db=tmp_path / "d.db", timeout=360)
    assert r.returncode == 0, r.stdout + r.stderr
    html = (out / "assessment.html").read_text()
    assert "net.redis.no_auth" in html or "Redis" in html
    doc = json.loads((out / "assessment.json").read_text())
    assert any(o["status"] == "fail" for o in doc["outcomes"])
    assert "open " in r.stdout and "assessment.html" in r.stdout
